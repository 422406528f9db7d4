"""The host runtime: the agent runs as a local process in its own session.

A tiny `sh` wrapper, started with `setsid`, runs the agent with its output in a file and
writes the exit status to another file when it ends, so the status is known even when the
process that started it has died. Cancel kills the session, its descendants and any process
still working inside the job's workspace.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path

import psutil

from ..errors import RuntimeProviderError
from ..git import RepoInfo
from ..model import Job, RuntimeHandle, Workspace
from ..workspace import Harvest, harvest, provision, remove_worktree
from .base import JobPaths, ProcessSpec

# $1 output file, $2 exit-status file, $3 pid file; the agent's argv follows.
_WRAPPER = (
    'out=$1; st=$2; pidf=$3; shift 3; printf %s "$$" > "$pidf"; '
    '"$@" > "$out" 2>&1 < /dev/null; code=$?; '
    'printf %s "$code" > "$st.tmp" && mv -f "$st.tmp" "$st"'
)
KILL_GRACE_S = 0.5
KILL_WAIT_S = 2.0


class HostRuntime:
    """Runs agents as local processes."""

    name = "host"
    description = "local process in its own session, workspace is a git worktree"

    def __init__(self) -> None:
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def supports_reattach(self) -> bool:
        return True

    @property
    def supports_kill_tree(self) -> bool:
        return True

    def available(self) -> tuple[bool, str]:
        return True, "ok"

    def provision(self, info: RepoInfo, job: Job, workspace_root: Path) -> Workspace:
        if job.base_commit is None:
            raise RuntimeProviderError(f"job {job.id} has no base commit")
        return provision(info, workspace_root, job.id, job.base_commit)

    def start(
        self, job: Job, workspace: Workspace, spec: ProcessSpec, paths: JobPaths
    ) -> RuntimeHandle:
        Path(paths.dir).mkdir(parents=True, exist_ok=True)
        for stale in (paths.exit_status, paths.pid):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        env = dict(os.environ)
        env.update(spec.env)
        argv = [
            "/bin/sh", "-c", _WRAPPER, "logist-agent",
            str(paths.output), str(paths.exit_status), str(paths.pid), *spec.argv,
        ]  # fmt: skip
        try:
            proc = subprocess.Popen(
                argv,
                cwd=spec.cwd,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                close_fds=True,
            )
        except OSError as exc:
            raise RuntimeProviderError(f"cannot start {spec.argv[0]}: {exc}") from exc
        self._children[proc.pid] = proc
        started = None
        with contextlib.suppress(psutil.Error):
            started = psutil.Process(proc.pid).create_time()
        return RuntimeHandle(runtime=self.name, pid=proc.pid, started_at=started)

    def read_output(self, handle: RuntimeHandle, paths: JobPaths, offset: int) -> bytes:
        try:
            with open(paths.output, "rb") as fh:
                fh.seek(offset)
                return fh.read(1 << 20)
        except FileNotFoundError:
            return b""

    def exit_status(self, handle: RuntimeHandle, paths: JobPaths) -> int | None:
        recorded = _read_status(paths)
        if recorded is not None:
            self._reap(handle)
            return recorded
        if self.is_alive(handle, paths):
            return None
        recorded = _read_status(paths)  # the wrapper may have ended since the first look
        if recorded is not None:
            return recorded
        proc = self._children.get(handle.pid or -1)
        if proc is not None and proc.returncode is not None:
            return proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
        return -1  # ended without recording a status (killed with its wrapper)

    def is_alive(self, handle: RuntimeHandle, paths: JobPaths) -> bool:
        if paths.exit_status.exists():
            return False  # the agent ended; its wrapper is only exiting
        child = self._children.get(handle.pid or -1)
        if child is not None:  # started here: a cheap waitpid instead of /proc lookups
            return child.poll() is None
        process = self._process(handle)
        if process is None:
            return False
        try:
            return process.status() != psutil.STATUS_ZOMBIE
        except psutil.Error:
            return False

    def kill(self, handle: RuntimeHandle, paths: JobPaths, workspace: Workspace | None) -> None:
        victims = self._tree(handle, workspace)
        if handle.pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(handle.pid, signal.SIGTERM)
        for proc in victims:
            with contextlib.suppress(psutil.Error):
                proc.terminate()
        _gone, alive = psutil.wait_procs(victims, timeout=KILL_GRACE_S)
        deadline = time.monotonic() + KILL_WAIT_S
        while True:
            victims = alive + [p for p in self._tree(handle, workspace) if p not in alive]
            if handle.pid is not None:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(handle.pid, signal.SIGKILL)
            for proc in victims:
                with contextlib.suppress(psutil.Error):
                    proc.kill()
            _gone, alive = psutil.wait_procs(victims, timeout=0.2)
            self._reap(handle)
            if not alive or time.monotonic() > deadline:
                break

    def harvest(self, job: Job, workspace: Workspace) -> Harvest:
        return harvest(workspace, job.id)

    def cleanup(self, info: RepoInfo, workspace: Workspace) -> None:
        remove_worktree(info.root, Path(workspace.path), workspace.branch)

    # -- internals -------------------------------------------------------------------------
    def _reap(self, handle: RuntimeHandle) -> None:
        proc = self._children.get(handle.pid or -1)
        if proc is not None:
            proc.poll()

    def _process(self, handle: RuntimeHandle) -> psutil.Process | None:
        """The wrapper process, unless its pid now belongs to someone else."""
        if handle.pid is None:
            return None
        try:
            process = psutil.Process(handle.pid)
            if handle.started_at is not None and abs(process.create_time() - handle.started_at) > 1:
                return None
            return process
        except psutil.Error:
            return None

    def _tree(self, handle: RuntimeHandle, workspace: Workspace | None) -> list[psutil.Process]:
        """Every live process of the agent: its session, descendants, or inside the workspace."""
        found: dict[int, psutil.Process] = {}
        root = self._process(handle)
        if root is not None:
            found[root.pid] = root
            with contextlib.suppress(psutil.Error):
                for child in root.children(recursive=True):
                    found[child.pid] = child
        ws = os.path.realpath(workspace.path) if workspace else None
        me = os.getpid()
        for proc in psutil.process_iter():
            if proc.pid in found or proc.pid == me:
                continue
            try:
                if handle.pid is not None and os.getsid(proc.pid) == handle.pid:
                    found[proc.pid] = proc
                elif ws is not None:
                    cwd = proc.cwd()
                    if cwd == ws or cwd.startswith(ws + os.sep):
                        found[proc.pid] = proc
            except (psutil.Error, OSError):
                continue
        return [p for p in found.values() if _not_zombie(p)]


def _read_status(paths: JobPaths) -> int | None:
    try:
        text = paths.exit_status.read_text().strip()
    except FileNotFoundError:
        return None
    return int(text) if text else None


def _not_zombie(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
