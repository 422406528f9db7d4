"""Limit and policy fields are declared once (domain/knobs.py): the configuration schema, the
settings, the job's copy, the createJob params, the CLI flags and the docs all follow.

Each check introspects the declared knobs and looks for every one of them in each place, so
a field added in one place and not the others fails here (the derived places by
construction, the docs and the job's `JobPolicy` by these tests)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Annotated, Any

import msgspec
import pytest

from logist_server.cli.run_cmd import add_request_arguments, overrides_from_args
from logist_server.config.loader import load
from logist_server.config.schema import ConfigLayer
from logist_server.domain.knobs import knob, section_knobs
from logist_server.domain.model import JobPolicy, Limits
from logist_server.domain.requests import validate_limits
from logist_server.domain.settings import KNOB_SECTIONS, LIMITS, Settings, knobs
from logist_server.lsp import protocol as p

DOC = Path(__file__).resolve().parents[1] / "doc"
KNOBS = knobs()
IDS = [k.path for k in KNOBS]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_request_arguments(parser)
    return parser


def test_every_settings_section_field_is_a_knob_and_every_knob_a_settings_field() -> None:
    for section, struct in KNOB_SECTIONS.items():
        declared = {k.key for k in KNOBS if k.section == section}
        assert declared == set(struct.__struct_fields__), section
        assert isinstance(getattr(Settings(), section), struct)
    assert set(KNOB_SECTIONS) == {"limits", "retries", "review"}


def test_a_field_without_its_knob_declaration_is_refused() -> None:
    class Sneaky(msgspec.Struct):
        max_widgets: int = 3

    with pytest.raises(TypeError, match=r"Sneaky\.max_widgets: every field of a section is a knob"):
        section_knobs("widgets", Sneaky, limits=False)

    class Unkept(msgspec.Struct):
        max_widgets: Annotated[int, knob(help="x", flag="--max-widgets")] = 3

    with pytest.raises(TypeError, match="names its JobPolicy field"):
        section_knobs("widgets", Unkept, limits=False)


def test_the_jobs_copy_holds_every_knob_and_nothing_else() -> None:
    assert {k.key for k in KNOBS if k.section == LIMITS} == set(Limits.__struct_fields__)
    policy = [k.job for k in KNOBS if k.section != LIMITS]
    assert sorted(policy) == sorted(JobPolicy.__struct_fields__), "JobPolicy and knobs differ"
    # Non-default settings reach the job's policy field by field.
    settings = msgspec.convert(
        {
            "retries": {"max_retries": 7, "backoff_s": 0.5, "max_backoff_s": 9.0,
                        "fallback_agent": "other"},
            "review": {"supervisor": True, "max_rounds": 5, "role": "strict"},
        },
        Settings,
    )  # fmt: skip
    kept = settings.policy()
    for k in KNOBS:
        if k.section != LIMITS:
            assert getattr(kept, k.job) == getattr(getattr(settings, k.section), k.key), k.path


@pytest.mark.parametrize("k", KNOBS, ids=IDS)
def test_the_configuration_schema_has_each_knob_with_its_bounds(k: Any) -> None:
    section: Any = ConfigLayer.model_fields[k.section].annotation
    layer = next(a for a in section.__args__ if a is not type(None))
    assert k.key in layer.model_fields
    example = {"str": "name", "bool": True, "int": 3, "float": 2.5}[k.type.__name__]
    assert layer.model_validate({k.key: example})
    for bound, outside in (("gt", 0), ("ge", -1), ("le", 1)):  # the first value out of bounds
        limit = getattr(k, bound)
        if limit is not None:
            with pytest.raises(Exception, match=k.key):
                layer.model_validate({k.key: k.type(limit + outside)})


@pytest.mark.parametrize("k", [k for k in KNOBS if k.flag], ids=[k.path for k in KNOBS if k.flag])
def test_each_flag_sets_its_knob(k: Any) -> None:
    example = {"str": "mock", "int": "3", "float": "2.5"}.get(k.type.__name__)
    argv = [k.flag] if example is None else [k.flag, example]
    overrides = overrides_from_args(_parser().parse_args(argv))
    expected = True if example is None else k.type(example)
    assert overrides[k.section][k.key] == expected
    if k.gt is not None or k.ge is not None:
        with pytest.raises(argparse.ArgumentError):
            _parser().parse_args([k.flag, "-1"])


def test_the_cli_has_no_limit_flag_that_is_not_a_knob() -> None:
    flags = {opt for action in _parser()._actions for opt in action.option_strings}
    limitish = {f for f in flags if re.match(r"--(max|min|no-)?-?(cost|time|turns|rounds|retr)", f)}
    declared = {k.flag for k in KNOBS} | {"--no-supervisor"}
    assert limitish <= declared, limitish - declared


@pytest.mark.parametrize("k", [k for k in KNOBS if k.wire], ids=[k.path for k in KNOBS if k.wire])
def test_each_create_job_param_sets_its_knob(k: Any) -> None:
    example: Any = {"str": "mock", "bool": True, "int": 3, "float": 2.5}[k.type.__name__]
    head, _, tail = k.wire.partition(".")
    raw: dict[str, Any] = {"prompt": "p", head: {tail: example} if tail else example}
    params = p.convert_params(p.CREATE_JOB, raw, p.CreateJobParams)
    assert p.settings_overrides(params)[k.section][k.key] == example
    if k.gt is not None:
        bad = {"prompt": "p", head: {tail: k.gt} if tail else k.gt}
        with pytest.raises(Exception, match=re.escape(k.wire.split(".")[-1])):
            p.convert_params(p.CREATE_JOB, bad, p.CreateJobParams)


def test_limits_params_and_validate_limits_cover_every_limit() -> None:
    limits = {k.key for k in KNOBS if k.section == LIMITS}
    assert set(p.LimitsParams.__struct_fields__) == limits
    for name in limits:
        with pytest.raises(Exception, match=name):
            validate_limits(msgspec.structs.replace(Limits(), **{name: -1}))


def test_a_knob_from_the_flags_reaches_the_effective_settings(tmp_path: Path) -> None:
    args = _parser().parse_args(["--max-rounds", "4", "--max-cost", "1.5", "--retries", "0"])
    settings = load(None, overrides_from_args(args), environ={}).settings
    assert settings.review.max_rounds == 4
    assert settings.limits.max_cost_usd == 1.5
    assert settings.retries.max_retries == 0


def _table_rows(text: str, heading: str) -> list[list[str]]:
    """The rows of the first table after `heading` in a markdown text."""
    section = text.split(heading, 1)[1]
    rows: list[list[str]] = []
    for line in section.splitlines():
        if line.startswith("|"):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
        elif rows:
            break
    return rows


@pytest.mark.parametrize("k", KNOBS, ids=IDS)
def test_configuration_md_lists_each_knob_with_its_flag_and_param(k: Any) -> None:
    text = (DOC / "configuration.md").read_text()
    keys = {row[0] for row in _table_rows(text, "| Key | Type | Default | Meaning |")}
    assert f"`{k.path}`" in keys, f"{k.path} is not in the table of keys"
    flags = {row[0]: row for row in _table_rows(text, "## Flags and request params")}
    if k.flag is None and k.wire is None:
        assert f"`{k.path}`" not in flags
        return
    row = flags.get(f"`{k.path}`")
    assert row is not None, f"{k.path} is not in the table of flags and params"
    if k.flag:
        assert f"`{k.flag}" in row[1], row
    if k.wire:
        assert row[2] == f"`{k.wire}`", row


@pytest.mark.parametrize("k", [k for k in KNOBS if k.wire], ids=[k.path for k in KNOBS if k.wire])
def test_protocol_md_documents_each_create_job_param(k: Any) -> None:
    rows = _table_rows((DOC / "protocol.md").read_text(), "### `logist/createJob`")
    params = {row[0].strip("`"): row for row in rows}
    head, _, tail = k.wire.partition(".")
    assert head in params, f"createJob param {head} is not documented"
    if tail:
        assert tail in params[head][1], params[head]


@pytest.mark.parametrize("k", KNOBS, ids=IDS)
def test_the_starter_logist_yml_shows_each_knob_in_its_section(k: Any) -> None:
    """`logist init` writes every key, set or commented out, under its section; a
    user-only key (a repository's logist.yml cannot set it) only in the note saying so."""
    from logist_server.config.loader import USER_ONLY_KEYS
    from logist_server.config.starter import STARTER

    if k.path in USER_ONLY_KEYS:
        assert k.path in STARTER.replace("\n# ", " ")
        assert not re.search(rf"^\s+(# )?{k.key}:", STARTER, re.MULTILINE)
        return
    section = STARTER.split(f"\n{k.section}:\n", 1)[1].split("\n\n", 1)[0]
    assert re.search(rf"^\s+(# )?{k.key}:", section, re.MULTILINE), (k.path, section)
