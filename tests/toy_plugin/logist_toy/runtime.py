"""The toy runtime: runs the agent as a local process in a sandbox COPY of the workspace.

Its hand-over is `copy`, the way a remote runtime works: `copy_in` copies the workspace's
files (not its `.git`) into `<step dir>/sandbox`, the agent runs there, and `copy_out`
delivers the whole resulting tree into the engine's empty staging directory (symlinks
copied as symlinks, never followed); the engine writes it into the workspace itself.
It uses only Logist's public runtime contract (`providers.runtimes.base`, the domain)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from pathlib import Path

import msgspec

from logist_server.domain.model import Job, RuntimeHandle, Workspace
from logist_server.domain.runtime import identity_as, identity_payload
from logist_server.providers.runtimes.base import (
    BaseRuntime,
    JobPaths,
    OutputChunk,
    ProcessSpec,
    offset_of,
)

SKIP = {".git"}


class ToyIdentity(msgspec.Struct, frozen=True):
    """The toy runtime's own identity of an agent: its pid and its sandbox."""

    pid: int
    sandbox: str


def sandbox_of(paths: JobPaths) -> Path:
    return Path(paths.dir) / "sandbox"


class ToyRuntime(BaseRuntime):
    name = "toy"
    description = "a toy runtime from the logist-toy-plugin package (copy hand-over)"
    hand_over = "copy"

    def __init__(self) -> None:
        self._procs: dict[int, subprocess.Popen[bytes]] = {}

    def available(self) -> tuple[bool, str]:
        return True, "toy runtime: a sandbox copy on this machine"

    def copy_in(self, job: Job, workspace: Workspace, paths: JobPaths) -> None:
        sandbox = sandbox_of(paths)
        shutil.rmtree(sandbox, ignore_errors=True)
        root = Path(workspace.path)

        def ignore(directory: str, names: list[str]) -> set[str]:
            return SKIP & set(names) if Path(directory) == root else set()

        shutil.copytree(root, sandbox, symlinks=True, ignore=ignore)

    def copy_out(self, handle: RuntimeHandle, paths: JobPaths, staging: Path) -> None:
        sandbox = Path(identity_as(handle.identity, ToyIdentity).sandbox)
        shutil.copytree(sandbox, staging, symlinks=True, dirs_exist_ok=True)

    def start(
        self, job: Job, workspace: Workspace, spec: ProcessSpec, paths: JobPaths
    ) -> RuntimeHandle:
        sandbox = sandbox_of(paths)
        env = {key: os.environ[key] for key in ("PATH", "HOME", "LANG") if key in os.environ}
        env.update({key: os.environ[key] for key in spec.inherit if key in os.environ})
        env.update(spec.env)
        with open(paths.output, "wb") as out:
            proc = subprocess.Popen(
                spec.argv,
                cwd=sandbox / os.path.relpath(spec.cwd, workspace.path),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self._procs[proc.pid] = proc
        identity = identity_payload(ToyIdentity(pid=proc.pid, sandbox=str(sandbox)))
        return RuntimeHandle(runtime=self.name, identity=identity)

    def read_output(
        self, handle: RuntimeHandle, paths: JobPaths, cursor: str, limit: int
    ) -> OutputChunk:
        offset = offset_of(cursor)
        try:
            with open(paths.output, "rb") as handle_file:
                handle_file.seek(offset)
                data = handle_file.read(limit)
        except FileNotFoundError:
            data = b""
        return OutputChunk(data=data, cursor=str(offset + len(data)))

    def exit_status(self, handle: RuntimeHandle, paths: JobPaths) -> int | None:
        proc = self._procs.get(identity_as(handle.identity, ToyIdentity).pid)
        return None if proc is None else proc.poll()

    def is_alive(self, handle: RuntimeHandle, paths: JobPaths) -> bool:
        proc = self._procs.get(identity_as(handle.identity, ToyIdentity).pid)
        return proc is not None and proc.poll() is None

    def kill(
        self, handle: RuntimeHandle, paths: JobPaths, workspace: Workspace | None
    ) -> list[dict[str, object]]:
        pid = identity_as(handle.identity, ToyIdentity).pid
        proc = self._procs.get(pid)
        if proc is None or proc.poll() is not None:
            return []
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        proc.wait()
        return [{"pid": pid, "name": "toy agent", "found": "session"}]

    def cleanup(self, job: Job, workspace: Workspace) -> None:
        return None
