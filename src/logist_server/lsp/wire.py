"""Result shapes of the `logist/*` protocol: what leaves the server, beside the params
(protocol.py). Every key on the wire is camelCase.

Each handler's result goes out through `encode(Shape, value)`: it is converted into the
Struct (a missing key, a wrong type or a key the Struct does not know is an error here, in
the server, not a surprise in the editor) and then to JSON builtins. The job record is
`JobRecord`, a camelCase mirror of the stored `Job` built from its fields (`camel_mirror`),
so a field added to the job is on the wire without a second declaration; the keys of
mappings inside it (agent options, a runtime's identity, event data values) are data and
stay as they are. The stored record and `logist job show --json` keep the snake_case
shape: they are the store's format, read back by every older Logist and by scripts.
"""

from __future__ import annotations

import functools
import types
import typing
from typing import Any, TypeVar

import msgspec

from logist_server.domain.knobs import camel
from logist_server.domain.model import Job, JobEvent
from logist_server.lsp import protocol as p

S = TypeVar("S", bound=msgspec.Struct)


class _Wire(msgspec.Struct, frozen=True, rename="camel", forbid_unknown_fields=True):
    pass


class JobRef(_Wire, frozen=True):
    """createJob, rejectJob, cancelJob, answerJob, restepJob, requestChanges: the job and
    its status now."""

    job_id: str
    status: str


class JobSummary(_Wire, frozen=True):
    """One row of listJobs (control characters escaped as in `job list`)."""

    id: str
    status: str
    created_at: float
    agent: str
    file: str | None
    headline: str
    cost_usd: float  # so far
    started_at: float | None  # the first step's start (None: not started yet)
    updated_at: float  # the last change (for a settled job: when it settled)


class Hunk(_Wire, frozen=True):
    id: str
    range: p.Range  # LSP positions, the same shape as the params'
    old_text: str
    new_text: str
    conflict: bool
    accepted: bool


class DiffFile(_Wire, frozen=True):
    uri: str
    path: str
    kind: str  # modify, create, delete, binary
    hunks: list[Hunk]


class JobDiff(_Wire, frozen=True):
    """getJobDiff."""

    job_id: str
    status: str
    files: list[DiffFile]


class Conflict(_Wire, frozen=True):
    hunk_id: str
    path: str
    reason: str


class AcceptResult(_Wire, frozen=True):
    """acceptJob."""

    job_id: str
    status: str
    applied: list[str]
    conflicts: list[Conflict]


class AgentInfo(_Wire, frozen=True):
    """One row of listAgents."""

    name: str
    description: str
    program: str | None
    version: str | None
    installed: bool
    # Where its credentials come from; None: none configured; "unknown": cannot tell.
    credentials: str | None = None
    install_hint: str = ""
    login_hint: str = ""
    presets: list[PresetInfo] | None = None  # an agent of several programs (acp)


class PresetInfo(_Wire, frozen=True):
    """One program of an agent of several (the acp presets): installed or not."""

    name: str
    program: str
    installed: bool
    version: str | None = None


class RuntimeInfo(_Wire, frozen=True):
    """One row of listRuntimes."""

    name: str
    description: str
    available: bool
    detail: str
    supports_reattach: bool


class JobEventParams(msgspec.Struct, frozen=True, rename="camel", omit_defaults=True):
    """The `logist/jobEvent` notification. `data` is the event's data with camelCase keys
    (see `event_data`); `status` is set for a status event, `first_seq` for a coalesced run
    of messages."""

    job_id: str
    seq: int
    kind: str
    data: dict[str, Any]
    status: str | None = None
    first_seq: int | None = None


class RerunRef(_Wire, frozen=True):
    """rerunJob: the new job, and the one it reruns."""

    job_id: str
    status: str
    rerun_of: str


class JobDeleted(_Wire, frozen=True):
    """deleteJob."""

    job_id: str
    deleted: bool


class JobEventsPage(_Wire, frozen=True):
    """getJobEvents: the job's events after `afterSeq`, as `logist/jobEvent` sends them;
    `next` is the `afterSeq` of the next page (None: nothing more stored yet)."""

    job_id: str
    status: str
    last_seq: int
    events: list[JobEventParams]
    next: int | None


class RoleInfo(_Wire, frozen=True):
    """One row of listRoles."""

    name: str
    kind: str
    description: str
    agent: str | None
    model: str | None
    source: str


class JobPreview(_Wire, frozen=True):
    """previewJob: what the job's first step would run (nothing runs, nothing is stored;
    declared secrets are `***`)."""

    step: int
    role: str
    agent: str
    model: str | None
    runtime: str
    cwd: str
    argv: list[str]
    env: dict[str, str]
    prompt: str


class ShapeError(Exception):
    """A result that does not fit its shape: the server's own bug, reported in one line."""


def encode(shape: type[S], value: Any) -> Any:
    """`value` (camelCase builtins or a Struct) checked against `shape`, as JSON builtins."""
    if isinstance(value, msgspec.Struct):
        value = msgspec.to_builtins(value)
    try:
        return msgspec.to_builtins(msgspec.convert(value, shape, strict=True))
    except msgspec.ValidationError as exc:
        raise ShapeError(f"the result does not fit wire.{shape.__name__}: {exc}") from None


def out(value: msgspec.Struct) -> Any:
    """A result the handler built as its Struct, as JSON builtins."""
    return msgspec.to_builtins(value)


def encode_list(shape: type[S], values: list[Any]) -> list[Any]:
    return [encode(shape, value) for value in values]


def job_record(job: Job) -> Any:
    """The job as `JobRecord`: the stored record with camelCase keys."""
    return msgspec.to_builtins(msgspec.convert(job, JobRecord, from_attributes=True))


def event_data(data: dict[str, Any]) -> dict[str, Any]:
    """An event's data for the wire: its keys camelCase (one level: values are the agent's
    or the engine's data, e.g. a tool call's input, and keep their keys)."""
    return {camel(key): value for key, value in data.items()}


def job_event(event: JobEvent) -> Any:
    """The `logist/jobEvent` params of one stored event."""
    status = event.data.get("to") if event.kind == "status" else None
    params = JobEventParams(
        job_id=event.job_id,
        seq=event.seq,
        kind=event.kind,
        data=event_data(event.data),
        status=status,
    )
    return msgspec.to_builtins(params)


def message_run(job_id: str, first: int, texts: list[str]) -> Any:
    """The `logist/jobEvent` params of a run of messages, seq `first` on: one text as is,
    more joined by newlines with their `count` and `firstSeq`."""
    last = first + len(texts) - 1
    if len(texts) == 1:
        params = JobEventParams(job_id, last, "message", {"text": texts[0]})
    else:
        data = {"text": "\n".join(texts), "count": len(texts)}
        params = JobEventParams(job_id, last, "message", data, first_seq=first)
    return msgspec.to_builtins(params)


@functools.cache
def camel_mirror(struct: type[msgspec.Struct]) -> type[msgspec.Struct]:
    """A Struct with `struct`'s fields, types (Structs inside mirrored too) and defaults,
    encoded with camelCase names."""
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for field in msgspec.structs.fields(struct):
        kind = _mirror_type(field.type)
        if field.default is not msgspec.NODEFAULT:
            fields.append((field.name, kind, field.default))
        elif field.default_factory is not msgspec.NODEFAULT:
            fields.append((field.name, kind, msgspec.field(default_factory=field.default_factory)))
        else:
            fields.append((field.name, kind))
    return msgspec.defstruct(
        f"{struct.__name__}Record", fields, kw_only=True, rename="camel", module=__name__
    )


def _mirror_type(kind: Any) -> Any:
    if isinstance(kind, type) and issubclass(kind, msgspec.Struct):
        return camel_mirror(kind)
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if origin is typing.Annotated:
        return _mirror_type(args[0])  # bounds are the store's business
    if origin is None or origin is typing.Literal or not args:
        return kind
    mirrored = tuple(_mirror_type(arg) for arg in args)
    if origin in (typing.Union, types.UnionType):
        return functools.reduce(lambda a, b: a | b, mirrored)
    return origin[mirrored if len(mirrored) > 1 else mirrored[0]]


if typing.TYPE_CHECKING:
    JobRecord = msgspec.Struct
else:
    JobRecord = camel_mirror(Job)


#: The result of every request, and the params of every notification.
RESULTS: dict[str, Any] = {
    p.CREATE_JOB: JobRef,
    p.LIST_JOBS: list[JobSummary],
    p.GET_JOB: JobRecord,
    p.GET_JOB_DIFF: JobDiff,
    p.ACCEPT_JOB: AcceptResult,
    p.REJECT_JOB: JobRef,
    p.CANCEL_JOB: JobRef,
    p.LIST_AGENTS: list[AgentInfo],
    p.LIST_RUNTIMES: list[RuntimeInfo],
    p.ANSWER_JOB: JobRef,
    p.GET_JOB_EVENTS: JobEventsPage,
    p.LIST_ROLES: list[RoleInfo],
    p.PREVIEW_JOB: JobPreview,
    p.RERUN_JOB: RerunRef,
    p.RESTEP_JOB: JobRef,
    p.DELETE_JOB: JobDeleted,
    p.REQUEST_CHANGES: JobRef,
}
NOTIFICATIONS: dict[str, Any] = {p.JOB_EVENT: JobEventParams}


def json_schema() -> dict[str, Any]:
    """The `logist/*` protocol as JSON Schema: each request's params and result, each
    notification's params (`python -m logist_server.lsp.wire`; an editor extension can
    generate its types from it)."""
    methods = [*p.REQUESTS, *NOTIFICATIONS]
    kinds = [p.PARAMS[m] for m in p.REQUESTS] + [RESULTS[m] for m in p.REQUESTS]
    kinds += [NOTIFICATIONS[m] for m in NOTIFICATIONS]
    refs, defs = msgspec.json.schema_components(kinds, ref_template="#/$defs/{name}")
    count = len(p.REQUESTS)
    requests = {
        method: {"params": refs[i], "result": refs[count + i]}
        for i, method in enumerate(p.REQUESTS)
    }
    notifications = {m: {"params": refs[2 * count + i]} for i, m in enumerate(NOTIFICATIONS)}
    assert len(requests) + len(notifications) == len(methods)
    return {"requests": requests, "notifications": notifications, "$defs": defs}


if __name__ == "__main__":
    import json

    print(json.dumps(json_schema(), indent=2))
