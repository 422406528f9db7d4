"""The server object: engines per repository, owned background tasks, open documents."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from logist_server import __version__
from logist_server.domain.errors import JobNotFoundError, NotInRepositoryError
from logist_server.domain.model import Job
from logist_server.domain.requests import nested_repository
from logist_server.engine.facade import Engine
from logist_server.lsp import offload
from logist_server.lsp.hub import Hub
from logist_server.lsp.jsonrpc import LogistProtocol, raw_json_converter
from logist_server.vcs.git import find_repo

log = logging.getLogger(__name__)
MAX_CACHED_PATHS = 1024


class LogistServer(LanguageServer):
    """One client's language server over the job engines of its workspace's repositories."""

    protocol: LogistProtocol

    def __init__(self, hub: Hub | None = None, token: str | None = None) -> None:
        super().__init__(
            "logist-server",
            __version__,
            protocol_cls=LogistProtocol,
            converter_factory=raw_json_converter,
        )
        self.hub = hub or Hub()
        self.protocol.token = token
        self.engines: dict[Path, Engine] = {}  # this client's: its workspace's repositories
        self.workspace_roots: list[Path] = []
        self.tasks: set[asyncio.Task[Any]] = set()
        self.on_engine_added: list[Callable[[Engine, dict[str, int] | None], None]] = []
        self.on_closed: list[Callable[[], None]] = []
        self._real_paths: dict[str, Path] = {}  # uri -> realpath, while the roots stay

    # -- background work -------------------------------------------------------------------
    def run_task(self, coro: Coroutine[Any, Any, Any], name: str) -> asyncio.Task[Any]:
        """Run `coro` as an owned task: kept referenced, its failure logged, never lost."""
        task = asyncio.get_running_loop().create_task(coro, name=name)
        self.tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self.tasks.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("task %s failed", task.get_name(), exc_info=exc)
            self.window_log_message(
                types.LogMessageParams(types.MessageType.Error, f"{task.get_name()} failed: {exc}")
            )

    def close(self) -> None:
        """The client is gone: stop this client's tasks, and fail what the server asked of
        it (an accept waiting for its `workspace/applyEdit` answer reports a conflict and
        releases the lock). Its own requests run to the end (a job being created is still
        driven); the jobs go on in the hub."""
        for callback in self.on_closed:
            callback()
        for task in list(self.tasks):
            task.cancel()
        protocol = self.protocol
        for msg_id in list(protocol._result_types):  # the server's requests still unanswered
            future = protocol._request_futures.pop(msg_id, None)
            if future is not None and not future.done():
                future.set_exception(ConnectionError("the client disconnected"))

    # -- repositories ----------------------------------------------------------------------
    def set_workspace_roots(self, roots: list[Path]) -> None:
        """The workspace folders now: repositories of removed folders are dropped (their
        jobs are no longer this client's), those of added folders are watched."""
        self.workspace_roots = [Path(os.path.realpath(r)) for r in roots]
        self._real_paths.clear()
        if self.workspace_roots:
            for repo in list(self.engines):
                if not any(_related(repo, root) for root in self.workspace_roots):
                    del self.engines[repo]
        for root in self.workspace_roots:
            try:
                self.engine_for_path(root)
            except NotInRepositoryError:
                log.info("workspace folder %s is not in a git repository", root)

    def known_engine(self, path: Path) -> Engine | None:
        """The engine of a repository already met that holds `path` (no git call), or None."""
        known = [root for root in self.engines if root == path or root in path.parents]
        if known:
            root = max(known, key=lambda r: len(r.parts))
            probe = path / "_" if path.is_dir() else path  # a folder may itself be a repository
            if nested_repository(root, probe) is None:
                return self.engines[root]
        return None

    def engine_for_path(self, path: Path) -> Engine:
        """The engine of the repository holding `path`; a repository not met yet is found
        with git here (the workspace folders, when the client names them); requests use
        `engine_for_path_async`."""
        engine = self.known_engine(path)
        if engine is None:
            engine, _new = self.hub.engine(find_repo(path))
            self._add_engine(engine, None)
        return engine

    async def engine_for_path_async(self, path: Path) -> Engine:
        """`engine_for_path` with a new repository's git lookup and first store read in a
        worker thread, not on the event loop."""
        engine = self.known_engine(path)
        if engine is not None:
            return engine
        engine, _new = self.hub.engine(await offload.read(find_repo, path))
        if engine.repo not in self.engines:
            marks = await offload.read(_event_marks, engine)
            if engine.repo not in self.engines:  # not added by another request meanwhile
                self._add_engine(engine, marks)
        return self.engines[engine.repo]

    def _add_engine(self, engine: Engine, marks: dict[str, int] | None) -> None:
        """Register a repository met for the first time; `marks`: its jobs' last event
        numbers, read beforehand (None: the watchers read them)."""
        self.engines[engine.repo] = engine
        for callback in self.on_engine_added:
            callback(engine, marks)

    def default_engine(self) -> Engine:
        if not self.engines:
            raise JsonRpcInvalidParams(
                "no git repository in the workspace: open a folder inside one, or pass a uri"
            )
        return next(iter(self.engines.values()))

    def path_of(self, uri: str) -> Path:
        """The file system path of a `file:` URI inside the workspace, or InvalidParams.

        The resolved path of an open document is kept until the document is opened again
        or closed (`forget_path`) or the roots change: `realpath` stats every component,
        and code actions ask for it at every cursor move."""
        path = self._real_paths.get(uri)
        if path is None:
            fs = to_fs_path(uri) if uri.startswith("file:") else None
            if not fs:
                raise JsonRpcInvalidParams(f"not a file URI: {uri}")
            path = Path(os.path.realpath(fs))
            if uri in self.workspace.text_documents:
                if len(self._real_paths) >= MAX_CACHED_PATHS:
                    self._real_paths.clear()
                self._real_paths[uri] = path
        if self.workspace_roots and not any(
            path == root or root in path.parents for root in self.workspace_roots
        ):
            raise JsonRpcInvalidParams(f"uri is outside the workspace: {uri}")
        return path

    def forget_path(self, uri: str) -> None:
        """The document was opened or closed: resolve its path afresh next time."""
        self._real_paths.pop(uri, None)

    def find_job(self, job_id: str) -> tuple[Engine, Job]:
        """The job with this id (or unique prefix) in any workspace repository (SQLite:
        call it from a worker thread)."""
        for engine in list(self.engines.values()):
            try:
                return engine, engine.get(job_id)
            except JobNotFoundError:
                continue
        raise JsonRpcInvalidParams(f"unknown job id: {job_id}")

    # -- documents -------------------------------------------------------------------------
    def open_text(self, path: Path) -> str | None:
        """The text of `path` as the editor shows it, when it is open."""
        from pygls.uris import from_fs_path

        uri = from_fs_path(str(path))
        if uri is None:
            return None
        document = self.workspace.text_documents.get(uri)
        return document.source if document is not None else None

    def overlays(self, engine: Engine) -> dict[str, str]:
        """Open buffers of this repository whose text differs from the file on disk."""
        result: dict[str, str] = {}
        for uri, document in self.workspace.text_documents.items():
            fs = to_fs_path(uri)
            if not fs:
                continue
            path = Path(os.path.realpath(fs))
            if engine.repo not in path.parents:
                continue
            try:
                on_disk = path.read_bytes().decode()
            except (OSError, UnicodeDecodeError):
                continue
            if document.source != on_disk:
                result[path.relative_to(engine.repo).as_posix()] = document.source
        return result


def _related(repo: Path, root: Path) -> bool:
    """The repository is the folder, holds it, or lies inside it."""
    return repo == root or repo in root.parents or root in repo.parents


def _event_marks(engine: Engine) -> dict[str, int]:
    """Each job's last event number: where following the repository starts (a store read:
    call it in a worker thread)."""
    return engine.store.changes_since({}) if engine.has_store() else {}
