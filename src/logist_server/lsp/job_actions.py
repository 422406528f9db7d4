"""The job actions beyond create/accept/reject/cancel (jobs.py): answer, history, roles,
preview, rerun, restep, delete and request changes; each also a workspace command."""

from __future__ import annotations

from typing import Any

from logist_server.domain.model import JobStatus
from logist_server.engine.change_requests import ChangeComment
from logist_server.lsp import offload, wire
from logist_server.lsp import protocol as p
from logist_server.lsp.app import LogistServer
from logist_server.lsp.event_history import events_page
from logist_server.lsp.jobs import job_request, rpc
from logist_server.lsp.review import Review
from logist_server.lsp.streaming import EventPump
from logist_server.support.redaction import redact_text


def register(server: LogistServer, pump: EventPump, review: Review) -> None:
    def drive(engine: Any, job_id: str) -> None:
        """Drive the job here (a driver elsewhere keeps it: the hub follows its events)."""
        pump.watch(engine)
        pump.wake()
        server.hub.submit(engine, job_id)

    @rpc(server, p.ANSWER_JOB, p.AnswerJobParams)
    async def answer_job(params: p.AnswerJobParams) -> Any:
        engine, job = await offload.read(server.find_job, params.job_id)
        job = await offload.work(engine.answer, job.id, params.text)
        drive(engine, job.id)  # a driver waiting for the answer goes on; else one starts
        return wire.out(wire.JobRef(job_id=job.id, status=job.status.value))

    @rpc(server, p.GET_JOB_EVENTS, p.GetJobEventsParams)
    async def get_job_events(params: p.GetJobEventsParams) -> Any:
        engine, job = await offload.read(server.find_job, params.job_id)
        page = await offload.read(events_page, engine.store, job.id, params.after_seq, params.limit)
        return wire.encode(
            wire.JobEventsPage, {"jobId": job.id, "status": job.status.value, **page}
        )

    @rpc(server, p.LIST_ROLES, p.ListRolesParams)
    async def list_roles(params: p.ListRolesParams) -> Any:
        if params.uri is not None:
            engine = await server.engine_for_path_async(server.path_of(params.uri))
        else:
            engine = server.default_engine()
        roles = await offload.work(engine.roles)
        return [
            wire.out(
                wire.RoleInfo(
                    name=role.name,
                    kind=role.kind,
                    description=redact_text(role.description),
                    agent=role.agent,
                    model=role.model,
                    source=role.source,
                )
            )
            for role in sorted(roles.values(), key=lambda r: r.name)
        ]

    @rpc(server, p.PREVIEW_JOB, p.CreateJobParams)
    async def preview_job(params: p.CreateJobParams) -> Any:
        engine, request = await job_request(server, params, p.PREVIEW_JOB)
        preview = await offload.work(engine.preview_request, request)
        shown = wire.JobPreview(
            step=preview.step,
            role=preview.role,
            agent=preview.agent,
            model=preview.model,
            runtime=preview.runtime,
            cwd=preview.cwd,
            argv=[redact_text(arg) for arg in preview.argv],
            env={key: redact_text(value) for key, value in preview.env.items()},
            prompt=redact_text(preview.prompt),
        )
        return wire.out(shown)

    @rpc(server, p.RERUN_JOB, p.JobIdParams)
    async def rerun_job(params: p.JobIdParams) -> Any:
        engine, job = await offload.read(server.find_job, params.job_id)
        new = await offload.work(engine.rerun, job.id)
        drive(engine, new.id)
        return wire.out(wire.RerunRef(job_id=new.id, status=new.status.value, rerun_of=job.id))

    @rpc(server, p.RESTEP_JOB, p.JobIdParams)
    async def restep_job(params: p.JobIdParams) -> Any:
        engine, job = await offload.read(server.find_job, params.job_id)
        was_review = job.status == JobStatus.REVIEW
        job = await offload.work(engine.restep, job.id)  # git reset: seconds at worst
        if was_review:
            review.job_changed(engine, job.id, job.status)
        drive(engine, job.id)
        return wire.out(wire.JobRef(job_id=job.id, status=job.status.value))

    @rpc(server, p.DELETE_JOB, p.JobIdParams)
    async def delete_job(params: p.JobIdParams) -> Any:
        engine, job = await offload.read(server.find_job, params.job_id)
        job_id = await offload.work(engine.delete, job.id)  # rmtree, git: off the loop
        review.job_changed(engine, job_id, JobStatus.REJECTED)  # its markers go
        return wire.out(wire.JobDeleted(job_id=job_id, deleted=True))

    @rpc(server, p.REQUEST_CHANGES, p.RequestChangesParams)
    async def request_changes(params: p.RequestChangesParams) -> Any:
        engine, job = await offload.read(server.find_job, params.job_id)
        comments = [ChangeComment(c.text, c.hunk_id) for c in params.comments]
        job = await offload.work(engine.request_changes, job.id, comments)
        review.job_changed(engine, job.id, job.status)  # its hunks are no longer proposed
        drive(engine, job.id)
        return wire.out(wire.JobRef(job_id=job.id, status=job.status.value))
