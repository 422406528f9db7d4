"""Options shared by the aider, cline and opencode providers (`--agent-opt key=value`).

`model` (the agent's own model name), `base_url` (an OpenAI-compatible endpoint), `api_key_env`
(the NAME of the variable holding the key: passed to the agent and masked, never its value
on a command line or in a file) and `args` (extra arguments, shell-split). Without them the
agent runs with the user's own installation, login and configuration.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable
from urllib.parse import urlsplit

from logist_server.domain.errors import UsageError
from logist_server.domain.model import Job
from logist_server.support import redaction

COMMON_KEYS: tuple[str, ...] = ("model", "base_url", "api_key_env", "args")
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}\Z")
_MODEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}\Z")


def check_options(agent: str, options: dict[str, str], keys: Iterable[str] = COMMON_KEYS) -> None:
    """UsageError (one line) for an unknown key or a value that cannot work."""
    known = tuple(keys)
    for key in sorted(options):
        if key not in known:
            raise UsageError(f"{agent} has no option '{key}' (known: {', '.join(known)})")
    model = options.get("model")
    if model is not None and not _MODEL.match(model):
        raise UsageError(f"{agent} option model must be a model name, got '{model}'")
    url = options.get("base_url")
    if url is not None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise UsageError(f"{agent} option base_url must be an http(s) URL, got '{url}'")
    name = options.get("api_key_env")
    if name is not None and not _ENV_NAME.match(name):
        raise UsageError(f"{agent} option api_key_env must name a variable, got '{name}'")
    extra = options.get("args")
    if extra is not None:
        try:
            shlex.split(extra)
        except ValueError as exc:
            raise UsageError(f"{agent} option args cannot be split: {exc}") from None


def model_of(job: Job) -> str | None:
    """The model the job asks for: the `model` option, else the job's `--model`."""
    return job.agent.options.get("model") or job.agent.model


def extra_args(job: Job) -> list[str]:
    """The `args` option, shell-split (checked by `check_options`)."""
    return shlex.split(job.agent.options.get("args", ""))


def key_variable(job: Job) -> str | None:
    """The variable named by `api_key_env`, declared secret at once (masked from now on)."""
    name = job.agent.options.get("api_key_env")
    if name:
        redaction.declare((name,))
    return name or None
