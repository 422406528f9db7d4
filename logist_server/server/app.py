"""The server object: engines per repository, owned background tasks, open documents."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.lsp.server import LanguageServer
from pygls.uris import to_fs_path

from .. import __version__
from ..engine import Engine
from ..errors import JobBusyError, JobNotFoundError, NotInRepositoryError
from ..git import find_repo
from ..model import Job
from .jsonrpc import LogistProtocol, raw_json_converter

log = logging.getLogger(__name__)


class LogistServer(LanguageServer):
    """One language server over the job engines of the workspace's repositories."""

    def __init__(self) -> None:
        super().__init__(
            "logist-server",
            __version__,
            protocol_cls=LogistProtocol,
            converter_factory=raw_json_converter,
        )
        self.engines: dict[Path, Engine] = {}
        self.workspace_roots: list[Path] = []
        self.tasks: set[asyncio.Task[Any]] = set()
        self.concurrency: int | None = None  # from the configuration of the first job's repo
        self._slots: asyncio.Semaphore | None = None
        self.on_engine_added: list[Any] = []

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

    def submit(self, engine: Engine, job_id: str, listener: Any) -> None:
        """Drive the job in the background, at most `concurrency` at once."""
        self.run_task(self._drive(engine, job_id, listener), f"drive job {job_id}")

    async def _drive(self, engine: Engine, job_id: str, listener: Any) -> None:
        if self._slots is None:
            if self.concurrency is None:
                self.concurrency = engine.config.settings.concurrency
            self._slots = asyncio.Semaphore(self.concurrency)
        async with self._slots:
            try:
                await engine.drive(job_id, listener)
            except JobBusyError:
                log.info("job %s is driven by another process; following its events", job_id)

    # -- repositories ----------------------------------------------------------------------
    def set_workspace_roots(self, roots: list[Path]) -> None:
        self.workspace_roots = [Path(os.path.realpath(r)) for r in roots]
        for root in self.workspace_roots:
            try:
                self.engine_for_path(root)
            except NotInRepositoryError:
                log.info("workspace folder %s is not in a git repository", root)

    def engine_for_path(self, path: Path) -> Engine:
        """The engine of the repository holding `path` (known roots first, no git call)."""
        known = [root for root in self.engines if root == path or root in path.parents]
        if known:
            return self.engines[max(known, key=lambda r: len(r.parts))]
        info = find_repo(path)
        engine = self.engines.get(info.root)
        if engine is None:
            engine = Engine(info)
            self.engines[info.root] = engine
            for callback in self.on_engine_added:
                callback(engine)
        return engine

    def default_engine(self) -> Engine:
        if not self.engines:
            raise JsonRpcInvalidParams(
                "no git repository in the workspace: open a folder inside one, or pass a uri"
            )
        return next(iter(self.engines.values()))

    def path_of(self, uri: str) -> Path:
        """The file system path of a `file:` URI inside the workspace, or InvalidParams."""
        fs = to_fs_path(uri) if uri.startswith("file:") else None
        if not fs:
            raise JsonRpcInvalidParams(f"not a file URI: {uri}")
        path = Path(os.path.realpath(fs))
        if self.workspace_roots and not any(
            path == root or root in path.parents for root in self.workspace_roots
        ):
            raise JsonRpcInvalidParams(f"uri is outside the workspace: {uri}")
        return path

    def find_job(self, job_id: str) -> tuple[Engine, Job]:
        """The job with this id (or unique prefix) in any workspace repository."""
        for engine in self.engines.values():
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
