"""A request to create a job, validated before anything is created."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from logist_server.domain.errors import UsageError
from logist_server.domain.model import JobPolicy, Limits, LineRange, Target
from logist_server.domain.permissions import Permissions

if TYPE_CHECKING:
    from logist_server.domain.settings import Settings


class JobRequest(msgspec.Struct):
    """What a user (CLI or editor) asks for; paths may be absolute or relative to `cwd`."""

    prompt: str
    agent: str = "mock"
    agent_options: dict[str, str] = msgspec.field(default_factory=dict)
    model: str | None = None
    runtime: str = "host"
    runtime_options: dict[str, str] = msgspec.field(default_factory=dict)
    file: str | None = None
    range: LineRange | None = None
    selected_text: str | None = None
    limits: Limits = msgspec.field(default_factory=Limits)
    policy: JobPolicy = msgspec.field(default_factory=JobPolicy)
    role: str = "worker"
    draft: bool = False
    cwd: str = "."
    # Repository-relative path -> text: unsaved editor buffers that replace the disk content.
    overlays: dict[str, str] = msgspec.field(default_factory=dict)
    permissions: Permissions = msgspec.field(default_factory=Permissions)
    # The fallback agent's options (`policy.fallback_agent`, `policy.fallback_model`).
    fallback_options: dict[str, str] = msgspec.field(default_factory=dict)
    # The user's price overrides (`pricing:`), kept on the job.
    pricing: dict[str, dict[str, float]] = msgspec.field(default_factory=dict)


def parse_range(text: str) -> LineRange:
    """`L1-L2` (or a single `L`) into a LineRange; UsageError when malformed."""
    start_s, sep, end_s = text.partition("-")
    try:
        start = int(start_s)
        end = int(end_s) if sep else start
    except ValueError:
        raise UsageError(f"bad range '{text}': expected L1-L2, e.g. 10-20") from None
    if start < 1 or end < start:
        raise UsageError(f"bad range '{text}': lines start at 1 and L2 must be >= L1")
    return LineRange(start, end)


def resolve_target(request: JobRequest, repo: Path) -> Target | None:
    """The request's file as a repository-relative Target, with its selected text."""
    if request.file is None:
        if request.range is not None:
            raise UsageError("--range needs --file")
        return None
    raw = Path(request.file)
    full = raw if raw.is_absolute() else Path(request.cwd) / raw
    real = Path(os.path.realpath(full))
    root = Path(os.path.realpath(repo))
    if real != root and root not in real.parents:
        raise UsageError(f"file is outside the repository {repo}: {request.file}")
    relative = real.relative_to(root).as_posix()
    if relative.split("/")[0] in (".git", ".logist"):
        raise UsageError(f"file is inside git's or logist's own data: {request.file}")
    if not real.is_file():
        raise UsageError(f"no such file: {request.file}")
    nested = nested_repository(root, real)
    if nested is not None:
        raise UsageError(
            f"file {request.file} is inside the submodule {nested} (a repository of its own, "
            f"whose files a job cannot change): run logist in it, e.g. logist -C {nested} ..."
        )
    text = request.selected_text
    if request.range is not None:
        lines = real.read_text(errors="replace").splitlines(keepends=True)
        if request.range.start > max(len(lines), 1):
            raise UsageError(
                f"range {request.range.start}-{request.range.end} is past the end of "
                f"{relative} ({len(lines)} lines)"
            )
        if text is None:
            text = "".join(lines[request.range.start - 1 : request.range.end])
    return Target(file=relative, range=request.range, text=text)


def nested_repository(root: Path, path: Path) -> str | None:
    """The submodule (or other nested repository) below `root` holding `path`, if any.

    Its directory has its own `.git` (a file for a submodule, a directory for a nested
    clone); the outer repository records it as one commit, never its files."""
    for parent in reversed(path.relative_to(root).parents[:-1]):
        if os.path.lexists(root / parent / ".git"):
            return parent.as_posix()
    return None


def validate_limits(limits: Limits) -> None:
    """Every limit (each field of `Limits`) unset or a positive finite number."""
    for name in limits.__struct_fields__:
        value = getattr(limits, name)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise UsageError(f"limit {name} must be a positive finite number, got {value}")


def request_from_settings(settings: Settings, prompt: str, **fields: Any) -> JobRequest:
    """A request carrying the effective settings; `fields` are the job's own (file, range...)."""
    return JobRequest(
        prompt=prompt,
        agent=settings.agent,
        agent_options=dict(settings.agent_options),
        model=settings.model,
        runtime=settings.runtime,
        runtime_options=dict(settings.runtime_options),
        limits=settings.limits,
        policy=settings.policy(),
        role=settings.role,
        permissions=settings.permissions,
        fallback_options=dict(settings.fallback_agent_options),
        pricing={name: dict(entry) for name, entry in settings.pricing.items()},
        **fields,
    )
