"""The `logist/*` requests (and the same as `workspace/executeCommand` commands)."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from pygls.exceptions import JsonRpcException, JsonRpcInvalidParams

from logist_server.domain.errors import LogistError, UsageError
from logist_server.domain.model import JobStatus, LineRange
from logist_server.domain.requests import JobRequest, request_from_settings
from logist_server.domain.states import SETTLED
from logist_server.engine.facade import CANCEL_WAIT_S, Engine
from logist_server.engine.hunks import split_lines
from logist_server.lsp import offload, wire
from logist_server.lsp import protocol as p
from logist_server.lsp.app import LogistServer
from logist_server.lsp.review import Review
from logist_server.lsp.streaming import EventPump
from logist_server.providers.catalog import describe_agents, describe_runtimes
from logist_server.store.job_store import SummaryRow

REQUEST_FAILED = -32803
INTERNAL_ERROR = -32603
log = logging.getLogger(__name__)
P = TypeVar("P")
Handler = Callable[[Any], Awaitable[Any]]


def rpc(
    server: LogistServer, method: str, kind: type[P]
) -> Callable[[Callable[[P], Awaitable[Any]]], None]:
    """Register `fn` as request `method` and command `logist.X`, with validated params."""

    def decorator(fn: Callable[[P], Awaitable[Any]]) -> None:
        async def handle(raw: Any) -> Any:
            params = p.convert_params(method, raw, kind)
            try:
                return await fn(params)
            except UsageError as exc:
                raise JsonRpcInvalidParams(f"{method}: {exc}") from None
            except LogistError as exc:
                raise JsonRpcException(f"{method}: {exc}", code=REQUEST_FAILED) from None
            except wire.ShapeError as exc:
                log.error("%s: %s", method, exc)
                raise JsonRpcException(f"{method}: {exc}", code=INTERNAL_ERROR) from None

        @functools.wraps(fn)
        async def request(params: Any) -> Any:
            return await handle(params)

        async def command(*args: Any) -> Any:
            if len(args) != 1:
                raise JsonRpcInvalidParams(
                    f"{p.command_name(method)}: expected one argument (the params object), "
                    f"got {len(args)}"
                )
            return await handle(args[0])

        server.feature(method)(request)
        server.command(p.command_name(method))(command)

    return decorator


def register_jobs(server: LogistServer, pump: EventPump, review: Review) -> None:
    @rpc(server, p.CREATE_JOB, p.CreateJobParams)
    async def create_job(params: p.CreateJobParams) -> Any:
        engine, request = await job_request(server, params, p.CREATE_JOB)
        job = await offload.work(engine.create_job, request)
        pump.watch(engine)
        pump.wake()
        server.hub.submit(engine, job.id)
        return wire.out(wire.JobRef(job_id=job.id, status=job.status.value))

    @rpc(server, p.LIST_JOBS, p.ListJobsParams)
    async def list_jobs(params: p.ListJobsParams) -> list[Any]:
        try:
            statuses = [JobStatus(s) for s in params.status] if params.status else None
        except ValueError as exc:
            raise JsonRpcInvalidParams(f"{p.LIST_JOBS}: {exc}") from None
        rows: list[SummaryRow] = []
        for engine in list(server.engines.values()):
            if engine.has_store():  # SQLite and the store's lock: off the loop
                rows += await offload.read(engine.store.summaries, statuses)
        rows.sort(key=lambda row: (row[2], row[0]))  # oldest first across repositories
        return [wire.out(wire.JobSummary(*row)) for row in rows]

    @rpc(server, p.GET_JOB, p.JobIdParams)
    async def get_job(params: p.JobIdParams) -> Any:
        _engine, job = await offload.read(server.find_job, params.job_id)
        return wire.job_record(job)

    @rpc(server, p.GET_JOB_DIFF, p.JobIdParams)
    async def get_job_diff(params: p.JobIdParams) -> Any:
        engine, job = await offload.read(server.find_job, params.job_id)
        if job.result.result_commit is None:
            raise JsonRpcInvalidParams(f"job {job.id} has no diff yet (it is {job.status.phrase})")
        return wire.encode(wire.JobDiff, await review.diff_off_loop(engine, job))

    @rpc(server, p.ACCEPT_JOB, p.AcceptJobParams)
    async def accept_job(params: p.AcceptJobParams) -> Any:
        engine, job = await offload.read(server.find_job, params.job_id)
        if job.status != JobStatus.REVIEW:
            raise JsonRpcInvalidParams(
                f"job {job.id} is {job.status.phrase}, not in review: "
                "only a job in review can be accepted"
            )
        return wire.encode(wire.AcceptResult, await review.accept(engine, job, params.hunk_ids))

    @rpc(server, p.REJECT_JOB, p.JobIdParams)
    async def reject_job(params: p.JobIdParams) -> Any:
        engine, job = await offload.read(server.find_job, params.job_id)
        job = await offload.work(engine.reject, job.id)  # kills, rmtree, git: seconds
        review.job_changed(engine, job.id, job.status)
        return wire.out(wire.JobRef(job_id=job.id, status=job.status.value))

    @rpc(server, p.CANCEL_JOB, p.JobIdParams)
    async def cancel_job(params: p.JobIdParams) -> Any:
        engine, job = await offload.read(server.find_job, params.job_id)
        job = await offload.work(engine.request_cancel, job.id)
        pump.wake()
        deadline = asyncio.get_running_loop().time() + CANCEL_WAIT_S
        while job.status not in SETTLED:  # waits here, not in a worker thread the driver needs
            if asyncio.get_running_loop().time() > deadline:
                raise engine.cancel_timeout(job.id, CANCEL_WAIT_S)
            await asyncio.sleep(0.05)
            job = await offload.read(engine.store.get, job.id)
        return wire.out(wire.JobRef(job_id=job.id, status=job.status.value))

    @rpc(server, p.LIST_AGENTS, p.Empty)
    async def list_agents(params: p.Empty) -> Any:
        from logist_server.engine.facade import default_agents

        return wire.encode_list(wire.AgentInfo, describe_agents(default_agents()))

    @rpc(server, p.LIST_RUNTIMES, p.Empty)
    async def list_runtimes(params: p.Empty) -> Any:
        from logist_server.engine.facade import default_runtimes

        return wire.encode_list(wire.RuntimeInfo, describe_runtimes(default_runtimes()))


async def job_request(
    server: LogistServer, params: p.CreateJobParams, method: str
) -> tuple[Engine, JobRequest]:
    """The engine and the job request createJob's params describe (previewJob's too): the
    prompt checked, the target taken from the buffer as shown, the configuration layered."""
    if not params.prompt.strip():
        raise JsonRpcInvalidParams(f"{method}: prompt is empty")
    size = len(params.prompt.encode("utf-8", "surrogatepass"))
    if size > p.MAX_PROMPT_BYTES:
        raise JsonRpcInvalidParams(
            f"{method}: the prompt is {size} bytes, over the limit of "
            f"{p.MAX_PROMPT_BYTES // 1024} KiB ({p.MAX_PROMPT_BYTES} bytes)"
        )
    file: str | None = None
    line_range: LineRange | None = None
    selected: str | None = None
    if params.uri is not None:
        path = server.path_of(params.uri)
        engine = await server.engine_for_path_async(path)
        file = str(path)
        if params.range is not None:
            line_range, selected = _selection(server, path, params.range)
    else:
        if params.range is not None:
            raise JsonRpcInvalidParams(f"{method}: range needs a uri")
        engine = server.default_engine()
    overrides = p.settings_overrides(params)
    effective = await offload.work(engine.configure, overrides, "request")
    request = request_from_settings(
        effective.settings,
        params.prompt,
        file=file,
        range=line_range,
        selected_text=selected,
        overlays=server.overlays(engine),
        cwd=str(engine.repo),
    )
    return engine, request


def _selection(server: LogistServer, path: Path, rng: p.Range) -> tuple[LineRange, str]:
    """The 1-based line range and the exact selected text, from the buffer as shown."""
    text = server.open_text(path)
    if text is None:
        try:
            text = path.read_text(errors="replace")
        except OSError as exc:
            raise JsonRpcInvalidParams(f"cannot read {path}: {exc.strerror}") from None
    lines = split_lines(text)  # numbered as the editor numbers them
    start, end = rng.start, rng.end
    if start.line < 0 or end.line < start.line or start.character < 0 or end.character < 0:
        raise JsonRpcInvalidParams(f"{p.CREATE_JOB}: invalid range")
    if start.line > len(lines):
        raise JsonRpcInvalidParams(
            f"{p.CREATE_JOB}: range starts at line {start.line}, past the end ({len(lines)} lines)"
        )
    last = end.line if end.character > 0 or end.line == start.line else end.line - 1
    last = min(max(last, start.line), max(len(lines) - 1, 0))

    def offset(line: int, character: int) -> int:
        before = sum(len(x) for x in lines[:line])
        return before + (_code_points(lines[line], character) if line < len(lines) else 0)

    selected = (
        text[offset(start.line, start.character) : offset(end.line, end.character)]
        if end.line < len(lines)
        else text[offset(start.line, start.character) :]
    )
    return LineRange(start.line + 1, last + 1), selected


def _code_points(line: str, utf16_units: int) -> int:
    """How many characters of `line` the first `utf16_units` UTF-16 code units cover (LSP
    columns count UTF-16 units: an emoji is two)."""
    units = 0
    for index, char in enumerate(line):
        if units >= utf16_units:
            return index
        units += 2 if ord(char) > 0xFFFF else 1
    return len(line)
