"""Build the server: one object, features wired in order (jobs, streaming, review)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.uris import to_fs_path

from .app import LogistServer
from .jobs import register
from .review import Review
from .streaming import EventPump

log = logging.getLogger(__name__)


def create_server() -> LogistServer:
    server = LogistServer()
    pump = EventPump(server)
    review = Review(server)
    server.on_engine_added.append(pump.watch)
    pump.on_status.append(review.job_changed)
    register(server, pump, review)

    @server.feature(types.INITIALIZED)
    def initialized(params: types.InitializedParams) -> None:
        roots: list[Path] = []
        for folder in server.workspace.folders.values():
            fs = to_fs_path(folder.uri)
            if fs:
                roots.append(Path(fs))
        if not roots and server.workspace.root_path:
            roots.append(Path(server.workspace.root_path))
        server.set_workspace_roots(roots)
        for engine in list(server.engines.values()):
            engine.warm_up()  # before the first request: the first job starts as fast as any
        server.run_task(pump.run(), "event pump")
        server.run_task(_resume_orphans(server, pump), "resume jobs")

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(params: types.DidOpenTextDocumentParams) -> None:
        review.publish(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(params: types.DidChangeTextDocumentParams) -> None:
        review.schedule_publish(params.text_document.uri)

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]),
    )
    def code_action(params: types.CodeActionParams) -> list[types.CodeAction]:
        return review.code_actions(params)

    @server.feature(types.TEXT_DOCUMENT_CODE_LENS)
    def code_lens(params: types.CodeLensParams) -> list[types.CodeLens]:
        return review.code_lenses(params)

    return server


async def _resume_orphans(server: LogistServer, pump: EventPump) -> None:
    """Drive jobs that nobody drives any more (their driver died): re-attach or settle."""
    from ..locks import is_locked
    from ..states import ACTIVE

    for engine in list(server.engines.values()):
        if not engine.has_store():
            continue
        for job in engine.store.list_jobs(ACTIVE):
            if not job.paused and not is_locked(engine.store.lock_path(job.id)):
                server.submit(engine, job.id, pump.wake)


def serve(tcp: str | None = None, **_: Any) -> None:
    """Run the server over stdio, or TCP when `tcp` is HOST:PORT."""
    logging.basicConfig(level=logging.WARNING, format="logist-server: %(levelname)s %(message)s")
    server = create_server()
    if tcp:
        host, _sep, port = tcp.rpartition(":")
        server.start_tcp(host or "127.0.0.1", int(port))
    else:
        import sys

        from ..pipesize import grow_pipe

        grow_pipe(sys.stdout.fileno())  # a flood of notifications wakes the client less often
        server.start_io()
