"""Layered configuration: defaults < user file < `logist.yml` < environment < job/flags.

Each layer is validated on its own, so an error names the file and the key it came from;
the merged result becomes `Settings`, and every value remembers which layer set it.
pydantic and pyyaml are imported only when a layer actually has something in it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import msgspec

from logist_server.domain.errors import ConfigError
from logist_server.domain.settings import KNOB_SECTIONS, Settings

REPO_CONFIG = "logist.yml"
DEFAULT_SOURCE = "default"
DEFAULTS = Settings()
# Sections whose keys merge one by one (the others are replaced whole).
NESTED = frozenset(KNOB_SECTIONS) | {
    "observer", "agent_options", "runtime_options", "fallback_agent_options", "permissions",
    "pricing",
}  # fmt: skip
ENVIRONMENT = {
    "LOGIST_AGENT": "agent",
    "LOGIST_MODEL": "model",
    "LOGIST_RUNTIME": "runtime",
    "LOGIST_CONCURRENCY": "concurrency",
    "LOGIST_WORKSPACE_ROOT": "workspace_root",
}


class Effective(msgspec.Struct, frozen=True):
    """Settings and, for every key a layer set, the name of that layer."""

    settings: Settings
    sources: dict[str, str]
    files: list[str]

    def source_of(self, key: str) -> str:
        return self.sources.get(key, DEFAULT_SOURCE)


def user_config_path() -> Path:
    """`$XDG_CONFIG_HOME/logist/config.yml` (`~/.config/logist/config.yml`)."""
    from platformdirs import user_config_path as config_dir

    return config_dir("logist") / "config.yml"


def load(
    repo: Path | None,
    overrides: Mapping[str, Any] | None = None,
    overrides_source: str = "command line",
    environ: Mapping[str, str] | None = None,
    role: tuple[str, dict[str, Any]] | None = None,
) -> Effective:
    """The effective settings for `repo` with `overrides` (flags, request params) on top.

    `role` is (source, layer): a role's defaults, just below the overrides."""
    layers: list[tuple[str, dict[str, Any]]] = []
    files: list[str] = []
    candidates: list[tuple[Path, Path | None]] = [(user_config_path(), None)]
    if repo is not None:
        candidates.append((repo / REPO_CONFIG, repo))
    for path, inside in candidates:
        data = read_file_layer(path, inside)
        if data is not None:
            files.append(str(path))
            layer = _validated(data, str(path))
            if inside is not None:
                _refuse_user_only_keys(layer, str(path))
                _refuse_looser_permissions(layer, layers, str(path))
                _refuse_looser_budgets(layer, layers, str(path))
            layers.append((str(path), layer))
    layers += _environment_layer(os.environ if environ is None else environ)
    if role is not None:
        layers.append((role[0], _without_none(role[1])))
    if overrides:  # typed and checked by the caller (argparse, the request's schema)
        layers.append((overrides_source, _without_none(overrides)))
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for source, layer in layers:
        _forget_options_of_replaced_providers(merged, layer, sources)
        _merge(merged, layer, source, sources, "")
    try:
        settings = msgspec.convert(merged, Settings)
    except msgspec.ValidationError as exc:  # the layers are valid; only a bug lands here
        raise ConfigError(f"configuration: {exc}") from None
    if "observer" in merged:
        _check_observer(merged["observer"], sources)
    declare_env_secrets(settings)
    return Effective(settings=settings, sources=sources, files=files)


# Keys a repository (which may be hostile) cannot set, only the user's own file, environment
# or flags: where Logist writes outside the repository, what of the user's machine the agent
# sees (`runtime_options` env/mounts/network/image) and which agent runs instead of the one
# the user chose (`retries.fallback_agent`). Each with why, for the one-line error.
USER_ONLY_KEYS: dict[str, str] = {
    "workspace_root": "a repository cannot choose where Logist writes outside it",
    "runtime_options.env": "a repository cannot pass your environment variables to the agent",
    "runtime_options.mounts": "a repository cannot mount your files into the agent's runtime",
    "runtime_options.network": "a repository cannot choose the agent's network",
    "runtime_options.image": "a repository cannot choose the image the agent runs in",
    "retries.fallback_agent": "a repository cannot choose an agent to run instead of yours",
    "retries.fallback_model": "a repository cannot choose the model of your fallback agent",
    "fallback_agent_options": "a repository cannot set your fallback agent's options",
    "pricing": "a repository cannot set the prices a job's cost (and --max-cost) is reckoned by",
    "agent_options.base_url": "a repository cannot send the agent's requests (and your key) "
    "elsewhere",
    "agent_options.api_key_env": "a repository cannot choose which of your variables the agent "
    "gets",
    "agent_options.args": "a repository cannot add arguments to the agent's command line",
    "agent_options.command": "a repository cannot choose the program Logist runs as the agent",
}
#: allow < ask < deny: a repository's `permissions` may only move a kind to the right.
STRICTNESS = {"allow": 0, "ask": 1, "deny": 2}


def _refuse_user_only_keys(layer: dict[str, Any], source: str) -> None:
    for key, why in USER_ONLY_KEYS.items():
        section, _, name = key.rpartition(".")
        holder = layer.get(section) if section else layer
        if isinstance(holder, dict) and name in holder:
            variable = _variable_of(key)
            where = f" or ${variable}" if variable else " or on the command line"
            raise ConfigError(f"{source}: {key}: {why}; set it in {user_config_path()}{where}")
    for name, role in (layer.get("roles") or {}).items():
        if isinstance(role, dict):
            refuse_repo_role_options(role, source, f"roles.{name}.")


def refuse_repo_role_options(role: dict[str, Any], source: str, prefix: str = "") -> None:
    """A role from a repository (`roles:` in logist.yml, `.logist/roles/*.yml`) cannot set
    the user-only agent options either (`base_url`, `api_key_env`, `args`)."""
    options = role.get("agent_options") or {}
    for key, why in USER_ONLY_KEYS.items():
        section, _, name = key.rpartition(".")
        if section == "agent_options" and name in options:
            raise ConfigError(
                f"{source}: {prefix}{key}: {why}; set it in {user_config_path()} "
                "or on the command line"
            )


def _refuse_looser_permissions(
    layer: dict[str, Any], below: list[tuple[str, dict[str, Any]]], source: str
) -> None:
    """A repository may tighten the permissions the user's own file gives (allow -> ask ->
    deny), never loosen them: a hostile repository must not grant its agent a shell."""
    asked = layer.get("permissions") or {}
    for kind, decision in asked.items():
        given = getattr(DEFAULTS.permissions, kind)
        for _source, lower in below:
            given = (lower.get("permissions") or {}).get(kind, given)
        if STRICTNESS[decision] < STRICTNESS[given]:
            raise ConfigError(
                f"{source}: permissions.{kind}: a repository can only tighten permissions "
                f"('{given}' here, not '{decision}'); set it in {user_config_path()} or "
                f"with --{decision} {kind}"
            )


#: Budgets a repository may lower, never raise above what the user's own file gives.
BUDGET_KEYS = ("max_cost_usd", "max_time_s", "max_turns")


def _refuse_looser_budgets(
    layer: dict[str, Any], below: list[tuple[str, dict[str, Any]]], source: str
) -> None:
    """A repository may set a budget where the user's file sets none, or a lower one; a
    higher one is refused: a hostile repository must not lift the user's spending limit."""
    asked = layer.get("limits") or {}
    for key in BUDGET_KEYS:
        wanted = asked.get(key)
        if wanted is None:
            continue
        given = None
        for _source, lower in below:
            given = (lower.get("limits") or {}).get(key, given)
        if given is not None and wanted > given:
            raise ConfigError(
                f"{source}: limits.{key}: a repository can only lower the limits your "
                f"configuration sets ({given} there, not {wanted}); raise it in "
                f"{user_config_path()} or on the command line"
            )


def declare_env_secrets(settings: Settings) -> None:
    """Every variable the user lets through to the agent (`runtime_options.env`) is a
    credential: its value is masked wherever Logist writes (`redaction`)."""
    from logist_server.domain.runtime import RuntimeOptionsError, parse_runtime_options
    from logist_server.support import redaction

    try:
        names = parse_runtime_options(settings.runtime_options).env_allow
    except RuntimeOptionsError:
        return  # refused where the options are used, with its own message
    redaction.declare(names)


def _variable_of(key: str) -> str | None:
    return next((name for name, target in ENVIRONMENT.items() if target == key), None)


def _check_observer(section: dict[str, Any], sources: dict[str, str]) -> None:
    """The merged observer section builds a table (e.g. `disable` names known patterns)."""
    from logist_server.domain.observer import Observer

    try:
        Observer.from_config(section)
    except ValueError as exc:
        key = "observer.disable" if "disable" in str(exc) else "observer.patterns"
        raise ConfigError(f"{sources.get(key, 'configuration')}: {key}: {exc}") from None


def read_file_layer(path: Path, repo: Path | None = None) -> dict[str, Any] | None:
    """The mapping in a YAML file, None when the file does not exist or is empty.

    With `repo`, `path` is a file in that repository, read as `repo_files` reads what a
    repository controls (no symlink on the way, a regular file, at most 1 MiB); without,
    it is the user's own file (a symlink is followed; still a regular file of at most 1 MiB).
    """
    from logist_server.config.repo_files import read_repo_text, read_user_text

    if repo is not None:
        text = read_repo_text(repo, path.relative_to(repo).as_posix())
    else:
        text = read_user_text(path)
    if text is None or not text.strip():
        return None
    import yaml

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}: {where}invalid YAML: {problem}") from None
    if data is None:
        return None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(data).__name__}")
    return data


def _environment_layer(environ: Mapping[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """Variables are plain text, checked here without pydantic (it is slow to import)."""
    layers: list[tuple[str, dict[str, Any]]] = []
    for variable, key in ENVIRONMENT.items():
        value = environ.get(variable, "").strip()
        if not value:
            continue
        if key == "concurrency":
            if not value.isdigit() or not 0 < int(value) <= 64:
                raise ConfigError(
                    f"${variable}: expected a whole number from 1 to 64, got {value!r}"
                )
            layers.append((f"${variable}", {key: int(value)}))
        else:
            layers.append((f"${variable}", {key: value}))
    return layers


def _without_none(data: Mapping[str, Any]) -> dict[str, Any]:
    return {
        k: _without_none(v) if isinstance(v, Mapping) else v
        for k, v in data.items()
        if v is not None
    }


def _validated(data: dict[str, Any], source: str) -> dict[str, Any]:
    from pydantic import ValidationError

    from logist_server.config.schema import validate_layer

    try:
        return validate_layer(data)
    except ValidationError as exc:
        raise ConfigError(f"{source}: {describe_errors(exc.errors())}") from None


def _forget_options_of_replaced_providers(
    merged: dict[str, Any], layer: dict[str, Any], sources: dict[str, str]
) -> None:
    """Options configured for one agent (runtime) do not carry over to another one."""
    for provider, options in (("agent", "agent_options"), ("runtime", "runtime_options")):
        current = merged.get(provider, getattr(DEFAULTS, provider))
        if provider in layer and layer[provider] != current and options in merged:
            _forget(merged, sources, options)
    fallback = (layer.get("retries") or {}).get("fallback_agent")
    current = (merged.get("retries") or {}).get("fallback_agent")
    if fallback is not None and fallback != current and "fallback_agent_options" in merged:
        _forget(merged, sources, "fallback_agent_options")


def _forget(merged: dict[str, Any], sources: dict[str, str], options: str) -> None:
    del merged[options]
    for key in [k for k in sources if k.startswith(f"{options}.")]:
        del sources[key]


def _merge(
    into: dict[str, Any], layer: dict[str, Any], source: str, sources: dict[str, str], prefix: str
) -> None:
    for key, value in layer.items():
        dotted = f"{prefix}{key}"
        mergeable = key in NESTED or key == "roles" or prefix == "roles."
        if isinstance(value, dict) and mergeable:
            _merge(into.setdefault(key, {}), value, source, sources, f"{dotted}.")
        else:
            into[key] = value
            sources[dotted] = source


_EXPECTED = {
    "float_parsing": "expected a number",
    "float_type": "expected a number",
    "int_parsing": "expected a whole number",
    "int_type": "expected a whole number",
    "int_from_float": "expected a whole number",
    "bool_parsing": "expected true or false",
    "bool_type": "expected true or false",
    "string_type": "expected text",
    "dict_type": "expected a mapping",
    "model_type": "expected a mapping",
    "list_type": "expected a list",
    "greater_than": "expected a number greater than {gt}",
    "greater_than_equal": "expected a number of at least {ge}",
    "less_than_equal": "expected a number of at most {le}",
    "string_too_short": "expected a non-empty text",
    "literal_error": "expected {expected}",
}


def describe_errors(errors: list[Any], root: Any = None) -> str:
    """pydantic's errors as `key: expected ..., got ...`, joined by `; `."""
    parts = []
    for error in errors[:3]:
        loc = ".".join(str(part) for part in error["loc"])
        kind = error["type"]
        if kind == "extra_forbidden":
            parts.append(f"unknown key '{loc}'{_did_you_mean(error['loc'], root)}")
            continue
        template = _EXPECTED.get(kind)
        if template is not None:
            expected = template.format(**(error.get("ctx") or {}))
        else:
            expected = str(error["msg"]).removeprefix("Value error, ")
        got = error.get("input")
        shown = "" if isinstance(got, dict | list) or got is None else f", got {got!r}"
        parts.append(f"{loc}: {expected}{shown}")
    if len(errors) > 3:
        parts.append(f"and {len(errors) - 3} more")
    return "; ".join(parts)


def _did_you_mean(loc: tuple[Any, ...], root: Any = None) -> str:
    import difflib

    from logist_server.config.schema import known_keys

    known = known_keys(loc, root)
    close = difflib.get_close_matches(str(loc[-1]), known, n=1)
    if close:
        return f" (did you mean '{close[0]}'?)"
    return f" (known: {', '.join(known)})" if known else ""


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Dotted keys and leaf values of settings, in declaration order."""
    if isinstance(value, msgspec.Struct):
        value = {f: getattr(value, f) for f in value.__struct_fields__}
    if isinstance(value, dict) and value:
        for key, item in value.items():
            yield from flatten(item, f"{prefix}{key}.")
    else:
        yield prefix.rstrip("."), value
