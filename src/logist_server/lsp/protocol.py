"""Method names and payload shapes of the `logist/*` protocol: the one wire boundary.

Params arrive as plain JSON and are converted here, strictly, into msgspec structs; a
mismatch becomes an InvalidParams error naming the field. Results leave as builtins.
"""

from __future__ import annotations

import typing
from typing import TYPE_CHECKING, Annotated, Any, Literal, TypeVar

import msgspec
from pygls.exceptions import JsonRpcInvalidParams

from logist_server.domain.settings import LIMITS, knobs

CREATE_JOB = "logist/createJob"
LIST_JOBS = "logist/listJobs"
GET_JOB = "logist/getJob"
GET_JOB_DIFF = "logist/getJobDiff"
ACCEPT_JOB = "logist/acceptJob"
REJECT_JOB = "logist/rejectJob"
CANCEL_JOB = "logist/cancelJob"
LIST_AGENTS = "logist/listAgents"
LIST_RUNTIMES = "logist/listRuntimes"
ANSWER_JOB = "logist/answerJob"
GET_JOB_EVENTS = "logist/getJobEvents"
LIST_ROLES = "logist/listRoles"
PREVIEW_JOB = "logist/previewJob"
RERUN_JOB = "logist/rerunJob"
RESTEP_JOB = "logist/restepJob"
DELETE_JOB = "logist/deleteJob"
REQUEST_CHANGES = "logist/requestChanges"
JOB_EVENT = "logist/jobEvent"
MAX_PROMPT_BYTES = 256 * 1024  # a prompt is a request, not a file: larger ones are refused

REQUESTS = (
    CREATE_JOB,
    LIST_JOBS,
    GET_JOB,
    GET_JOB_DIFF,
    ACCEPT_JOB,
    REJECT_JOB,
    CANCEL_JOB,
    LIST_AGENTS,
    LIST_RUNTIMES,
    ANSWER_JOB,
    GET_JOB_EVENTS,
    LIST_ROLES,
    PREVIEW_JOB,
    RERUN_JOB,
    RESTEP_JOB,
    DELETE_JOB,
    REQUEST_CHANGES,
)


def command_name(method: str) -> str:
    """`logist/createJob` -> `logist.createJob`: the same request as a workspace command."""
    return method.replace("/", ".")


class Position(msgspec.Struct, frozen=True):
    line: int
    character: int


class Range(msgspec.Struct, frozen=True):
    start: Position
    end: Position


def _limits_params() -> type[msgspec.Struct]:
    """`{maxCostUsd?, ...}`: one optional member per field of `Limits` (knobs.py)."""
    fields = [(k.key, k.checked_type() | None, None) for k in knobs() if k.section == LIMITS]
    return msgspec.defstruct("LimitsParams", fields, frozen=True, rename="camel")


Decision = Literal["allow", "ask", "deny"]


class PermissionsParams(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """createJob's `permissions`: allow / ask / deny per ACP tool kind (permissions.py)."""

    read: Decision | None = None
    search: Decision | None = None
    think: Decision | None = None
    edit: Decision | None = None
    delete: Decision | None = None
    move: Decision | None = None
    execute: Decision | None = None
    fetch: Decision | None = None
    other: Decision | None = None


class _CreateJobParams(msgspec.Struct, frozen=True, rename="camel"):
    prompt: str
    uri: str | None = None
    range: Range | None = None
    agent: str | None = None
    agent_options: dict[str, str] | None = None
    model: str | None = None
    runtime: str | None = None
    role: str | None = None
    limits: LimitsParams | None = None
    permissions: PermissionsParams | None = None
    fallback_agent_options: dict[str, str] | None = None


def _create_job_params() -> type[_CreateJobParams]:
    """The hand-written params plus one optional member per policy knob that names a
    createJob param (`supervisor`, `retries`, ...)."""
    fields = [
        (k.wire, k.checked_type() | None, None)
        for k in knobs()
        if k.section != LIMITS and k.wire is not None
    ]
    made = msgspec.defstruct("CreateJobParams", fields, bases=(_CreateJobParams,), frozen=True)
    return typing.cast(type[_CreateJobParams], made)


if TYPE_CHECKING:
    LimitsParams = msgspec.Struct
    CreateJobParams = _CreateJobParams
else:  # derived from the knobs (domain/knobs.py): a new limit is a new param by itself
    LimitsParams = _limits_params()
    CreateJobParams = _create_job_params()


def settings_overrides(params: _CreateJobParams) -> dict[str, Any]:
    """The configuration layer createJob's params make (None where a param is left out)."""
    overrides: dict[str, Any] = {
        "agent": params.agent,
        "agent_options": params.agent_options,
        "model": params.model,
        "runtime": params.runtime,
        "role": params.role,
        "fallback_agent_options": params.fallback_agent_options,
        "permissions": msgspec.to_builtins(params.permissions) if params.permissions else None,
    }
    for k in knobs():
        if k.section == LIMITS:
            value = getattr(params.limits, k.key, None)
        elif k.wire is not None:
            value = getattr(params, k.wire)
        else:
            continue
        overrides.setdefault(k.section, {})[k.key] = value
    return overrides


class ListJobsParams(msgspec.Struct, frozen=True, rename="camel"):
    status: list[str] | None = None


class JobIdParams(msgspec.Struct, frozen=True, rename="camel"):
    job_id: str


class AcceptJobParams(msgspec.Struct, frozen=True, rename="camel"):
    job_id: str
    hunk_ids: list[str] | None = None


class Empty(msgspec.Struct, frozen=True):
    pass


class AnswerJobParams(msgspec.Struct, frozen=True, rename="camel"):
    job_id: str
    text: str


#: Events per page of getJobEvents at most (and the default).
MAX_EVENTS_PAGE = 2_000


class GetJobEventsParams(msgspec.Struct, frozen=True, rename="camel"):
    job_id: str
    after_seq: Annotated[int, msgspec.Meta(ge=0)] = 0
    limit: Annotated[int, msgspec.Meta(ge=1, le=MAX_EVENTS_PAGE)] = MAX_EVENTS_PAGE


class ListRolesParams(msgspec.Struct, frozen=True, rename="camel"):
    uri: str | None = None


#: requestChanges' bounds: a comment is a review note, not a file.
MAX_COMMENTS = 100
MAX_COMMENT_CHARS = 64 * 1024


class ChangeComment(msgspec.Struct, frozen=True, rename="camel"):
    text: Annotated[str, msgspec.Meta(max_length=MAX_COMMENT_CHARS)]
    hunk_id: str | None = None


class RequestChangesParams(msgspec.Struct, frozen=True, rename="camel"):
    job_id: str
    comments: Annotated[list[ChangeComment], msgspec.Meta(min_length=1, max_length=MAX_COMMENTS)]


#: The params of every request (jobs.py registers each handler with its own).
PARAMS: dict[str, type[msgspec.Struct]] = {
    CREATE_JOB: CreateJobParams,
    LIST_JOBS: ListJobsParams,
    GET_JOB: JobIdParams,
    GET_JOB_DIFF: JobIdParams,
    ACCEPT_JOB: AcceptJobParams,
    REJECT_JOB: JobIdParams,
    CANCEL_JOB: JobIdParams,
    LIST_AGENTS: Empty,
    LIST_RUNTIMES: Empty,
    ANSWER_JOB: AnswerJobParams,
    GET_JOB_EVENTS: GetJobEventsParams,
    LIST_ROLES: ListRolesParams,
    PREVIEW_JOB: CreateJobParams,
    RERUN_JOB: JobIdParams,
    RESTEP_JOB: JobIdParams,
    DELETE_JOB: JobIdParams,
    REQUEST_CHANGES: RequestChangesParams,
}

P = TypeVar("P")


def convert_params(method: str, raw: Any, kind: type[P]) -> P:
    """Strictly convert raw JSON params to `kind`, or raise InvalidParams naming the problem."""
    if raw is None or raw == []:  # Neovim sends an empty Lua table `{}` as `[]`
        raw = {}
    if not isinstance(raw, dict):
        raise JsonRpcInvalidParams(f"{method}: params must be an object, got {_json_type(raw)}")
    try:
        return msgspec.convert(raw, kind, strict=True)
    except msgspec.ValidationError as exc:
        raise JsonRpcInvalidParams(f"{method}: invalid params: {exc}") from None


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    return type(value).__name__
