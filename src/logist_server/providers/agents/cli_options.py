"""Options shared by the real-CLI providers (codex, gemini): `args`, `api_key_env`,
`base_url`, `model`, checked before a job is created."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Mapping

from logist_server.domain.errors import UsageError
from logist_server.support import redaction

_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}\Z")


def check_known(agent: str, options: Mapping[str, str], known: Iterable[str]) -> None:
    """UsageError for an option the agent does not take."""
    names = sorted(known)
    for key in sorted(options):
        if key not in names:
            raise UsageError(
                f"{agent} does not take the option '{key}' (known: {', '.join(names)})"
            )


def split_args(agent: str, options: Mapping[str, str]) -> list[str]:
    """The `args` option, split as a shell would (without running one)."""
    text = options.get("args", "")
    try:
        return shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"{agent} option args: cannot split {text!r}: {exc}") from None


def key_env(agent: str, options: Mapping[str, str]) -> str | None:
    """The `api_key_env` option: the NAME of a variable holding the key; declared secret,
    so its value is passed on to the agent and masked wherever Logist writes text."""
    name = options.get("api_key_env")
    if name is None:
        return None
    if not _ENV_NAME.match(name):
        raise UsageError(
            f"{agent} option api_key_env must name an environment variable, got {name!r}"
        )
    redaction.declare((name,))
    return name


def base_url(agent: str, options: Mapping[str, str]) -> str | None:
    """The `base_url` option: an http(s) URL without spaces or quotes."""
    url = options.get("base_url")
    if url is None:
        return None
    if not re.match(r"https?://[^\s\"'\\]+\Z", url):
        raise UsageError(f"{agent} option base_url must be an http(s) URL, got {url!r}")
    return url


def model(agent: str, job_model: str | None, options: Mapping[str, str]) -> str | None:
    """The job's model (`--model`), else the `model` option; a plain name."""
    name = job_model or options.get("model")
    if name is None:
        return None
    if not _MODEL.match(name):
        raise UsageError(f"{agent}: {name!r} is not a model name")
    return name
