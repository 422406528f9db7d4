"""Build the server: one object, features wired in order (jobs, streaming, review)."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

from lsprotocol import types
from pygls.uris import to_fs_path

from logist_server.lsp import job_actions, offload
from logist_server.lsp.app import LogistServer
from logist_server.lsp.hub import Hub
from logist_server.lsp.jobs import register_jobs
from logist_server.lsp.review import Review
from logist_server.lsp.streaming import EventPump

log = logging.getLogger(__name__)


def create_server(hub: Hub | None = None, token: str | None = None) -> LogistServer:
    """One client's server over `hub`'s engines; `token`: what its `initialize` must carry."""
    server = LogistServer(hub, token)
    pump = EventPump(server)
    review = Review(server)
    server.on_engine_added.append(pump.watch)
    pump.on_status.append(review.job_changed)
    server.hub.listeners.add(pump.committed)
    server.on_closed.append(lambda: server.hub.listeners.discard(pump.committed))
    register_jobs(server, pump, review)  # the job requests (jobs.py)
    job_actions.register(server, pump, review)  # the job actions (job_actions.py)

    def folders() -> list[Path]:
        roots: list[Path] = []
        for folder in server.workspace.folders.values():
            fs = to_fs_path(folder.uri)
            if fs:
                roots.append(Path(fs))
        if not roots and server.workspace.root_path:
            roots.append(Path(server.workspace.root_path))
        return roots

    @server.feature(types.INITIALIZED)
    def initialized(params: types.InitializedParams) -> None:
        server.set_workspace_roots(folders())
        for engine in list(server.engines.values()):
            engine.warm_up()  # before the first request: the first job starts as fast as any
        server.run_task(pump.run(), "event pump")
        server.run_task(_resume_orphans(server), "resume jobs")

    @server.feature(types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS)
    def folders_changed(params: types.DidChangeWorkspaceFoldersParams) -> None:
        server.set_workspace_roots(folders())  # pygls has updated workspace.folders
        review.refresh_all()

    @server.feature(types.WORKSPACE_DID_CHANGE_CONFIGURATION)
    def configuration_changed(params: types.DidChangeConfigurationParams) -> None:
        server.hub.invalidate()

    @server.feature(types.WORKSPACE_DID_CHANGE_WATCHED_FILES)
    def watched_files_changed(params: types.DidChangeWatchedFilesParams) -> None:
        server.hub.invalidate()  # whichever file: reading configuration again is cheap

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(params: types.DidOpenTextDocumentParams) -> None:
        server.forget_path(params.text_document.uri)
        review.publish_soon(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(params: types.DidCloseTextDocumentParams) -> None:
        server.forget_path(params.text_document.uri)

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(params: types.DidChangeTextDocumentParams) -> None:
        review.schedule_publish(params.text_document.uri)

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(code_action_kinds=[types.CodeActionKind.QuickFix]),
    )
    def code_action(params: types.CodeActionParams) -> list[types.CodeAction]:
        # Answered at once from the caches `warm` filled when the document was opened or a
        # job changed (a request that pipelines `shutdown` behind it is still answered).
        return review.code_actions(params)

    @server.feature(types.TEXT_DOCUMENT_CODE_LENS)
    def code_lens(params: types.CodeLensParams) -> list[types.CodeLens]:
        return review.code_lenses(params)

    return server


async def _resume_orphans(server: LogistServer) -> None:
    """Drive jobs that nobody drives any more (their driver died): re-attach or settle."""
    from logist_server.domain.states import ACTIVE
    from logist_server.support.locks import is_locked

    for engine in list(server.engines.values()):
        if not engine.has_store():
            continue
        for job in await offload.read(engine.store.list_jobs, ACTIVE):
            if not job.paused and not is_locked(engine.store.lock_path(job.id)):
                server.hub.submit(engine, job.id)


def serve(tcp: str | None = None, token_file: str | None = None) -> int:
    """Run the server over stdio, or TCP when `tcp` is HOST:PORT; the exit status."""
    logging.basicConfig(level=logging.WARNING, format="logist-server: %(levelname)s %(message)s")
    if tcp is not None:
        from logist_server.lsp.tcp import serve_tcp

        return serve_tcp(tcp, token_file, create_server)
    return serve_stdio()


def serve_stdio() -> int:
    """One client on stdin/stdout, no token: the editor started this process. Exits at the
    end of stdin, or on `exit` (status 0 after `shutdown`, else 1)."""
    import asyncio
    import sys

    from pygls.io_ import StdoutWriter

    from logist_server.lsp.framing import serve_stream
    from logist_server.lsp.stdin_reader import stdin_reader
    from logist_server.support.pipesize import grow_pipe

    grow_pipe(sys.stdout.fileno())  # a flood of notifications wakes the client less often
    server = create_server()
    server.protocol.set_writer(StdoutWriter(sys.stdout.buffer))

    async def run() -> None:
        reader = await stdin_reader(sys.stdin.buffer, sys.stdout.buffer, server.thread_pool)
        await serve_stream(server.protocol, reader, strict=False)
        server.close()

    with contextlib.suppress(KeyboardInterrupt, BrokenPipeError):
        asyncio.run(run())
    status = server.protocol.exit_status
    return 0 if status is None else status
