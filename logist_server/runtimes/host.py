"""The host runtime: the agent runs as a local process in its own session (and cgroup).

A tiny `sh` wrapper, started with `setsid`, joins the agent's own cgroup where the machine
allows one (see `cgroups`), runs the agent with its output in a file and writes the exit
status to another file when it ends, so the status is known even when the process that
started it has died. `kill` (at the end of every step, and on cancel) takes down the
cgroup, the session, its descendants and any process still working inside the job's
workspace, and says what it killed.
"""

from __future__ import annotations

import contextlib
import hashlib
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
from . import cgroups
from .base import JobPaths, ProcessSpec

# $1 output file, $2 exit-status file, $3 pid file, $4 the agent's cgroup (or empty), $5 the
# file that records the cgroup once joined; the agent's argv follows. The wrapper joins the
# cgroup before it starts anything, so no process of the agent is ever outside it.
_WRAPPER = (
    "out=$1; st=$2; pidf=$3; cg=$4; cgf=$5; shift 5; "
    'if [ -n "$cg" ] && printf "%s\\n" "$$" > "$cg/cgroup.procs"; then '
    'printf %s "$cg" > "$cgf"; fi; '
    'printf %s "$$" > "$pidf"; '
    '"$@" > "$out" 2>&1 < /dev/null; code=$?; '
    'printf %s "$code" > "$st.tmp" && mv -f "$st.tmp" "$st"'
)
KILL_GRACE_S = 0.5
KILL_WAIT_S = 5.0
WRAPPER_EXIT_S = 2.0
CGROUP_FILE = "cgroup"


class HostRuntime:
    """Runs agents as local processes."""

    name = "host"
    description = "local process in its own session, workspace is a git worktree"

    def __init__(self, use_cgroups: bool = True) -> None:
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._use_cgroups = use_cgroups

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
        if not spec.argv or not os.path.isabs(spec.argv[0]):
            raise RuntimeProviderError(
                f"agent program {spec.argv[:1]} is not an absolute path: a bare name would be"
                " looked up in PATH, which may lead into the workspace"
            )
        Path(paths.dir).mkdir(parents=True, exist_ok=True)
        marker = Path(paths.dir) / CGROUP_FILE
        for stale in (paths.exit_status, paths.pid, marker):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        env = dict(os.environ)
        env.update(spec.env)
        group = self._new_cgroup(paths)
        argv = [
            "/bin/sh", "-c", _WRAPPER, "logist-agent",
            str(paths.output), str(paths.exit_status), str(paths.pid),
            str(group or ""), str(marker), *spec.argv,
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

    def kill(
        self, handle: RuntimeHandle, paths: JobPaths, workspace: Workspace | None
    ) -> list[dict[str, object]]:
        """Kill every process of the agent; each one killed, as `{pid, name, found}`."""
        if paths.exit_status.exists():  # the agent ended: let its wrapper (and `mv`) finish
            self._wait_wrapper(handle, WRAPPER_EXIT_S)
        group = _cgroup_of(paths)
        killed: dict[int, dict[str, object]] = {}
        victims = self._victims(handle, workspace, group, killed)
        self._signal_group(handle, signal.SIGTERM)
        for proc in victims:
            with contextlib.suppress(psutil.Error):
                proc.terminate()
        alive = _wait_gone(victims, KILL_GRACE_S)
        deadline = time.monotonic() + KILL_WAIT_S
        while True:
            if group is not None:
                cgroups.kill_all(group)
            self._signal_group(handle, signal.SIGKILL)
            for proc in alive:
                with contextlib.suppress(psutil.Error):
                    proc.kill()
            alive = _wait_gone(alive, 0.2)
            self._reap(handle)
            more = self._victims(handle, workspace, group, killed)
            alive += [p for p in more if p not in alive]
            if not alive or time.monotonic() > deadline:
                break
        if group is not None:
            cgroups.remove(group)
        own = {handle.pid}
        return [info for pid, info in sorted(killed.items()) if pid not in own]

    def harvest(self, job: Job, workspace: Workspace) -> Harvest:
        return harvest(workspace, job.id)

    def cleanup(self, info: RepoInfo, workspace: Workspace) -> None:
        """Kill what still works in the workspace (a last resort: steps reap their own),
        then remove it."""
        kill_working_in(Path(workspace.path))
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

    def _new_cgroup(self, paths: JobPaths) -> Path | None:
        """A fresh cgroup for the step whose files are in `paths`, where one can be made."""
        root = cgroups.detect() if self._use_cgroups else None
        return root.create(_cgroup_name(paths)) if root is not None else None

    def _wait_wrapper(self, handle: RuntimeHandle, timeout: float) -> None:
        """Wait until the wrapper has exited (it only renames the status file into place)."""
        child = self._children.get(handle.pid or -1)
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout)
            return
        wrapper = self._process(handle)
        if wrapper is not None:
            _wait_gone([wrapper], timeout)

    def _signal_group(self, handle: RuntimeHandle, sig: signal.Signals) -> None:
        """Signal the wrapper's process group (its id cannot be reused while it exists)."""
        if handle.pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(handle.pid, sig)

    def _victims(
        self,
        handle: RuntimeHandle,
        workspace: Workspace | None,
        group: Path | None,
        seen: dict[int, dict[str, object]],
    ) -> list[psutil.Process]:
        """Every live process of the agent: in its cgroup, its session, its descendants or
        working inside the workspace. Each new one is added to `seen` with how it was found."""
        found: dict[int, tuple[psutil.Process, str]] = {}
        mine = _self_and_ancestors()  # `logist` run from inside a workspace spares its shell

        def add(proc: psutil.Process, how: str) -> None:
            if proc.pid not in mine and proc.pid not in found:
                found[proc.pid] = (proc, how)

        for pid in cgroups.members(group) if group is not None else []:
            with contextlib.suppress(psutil.Error):
                add(psutil.Process(pid), "cgroup")
        root = self._process(handle)
        if root is not None:
            add(root, "wrapper")
            with contextlib.suppress(psutil.Error):
                for child in root.children(recursive=True):
                    add(child, "descendant")
        ws = os.path.realpath(workspace.path) if workspace else None
        for proc in psutil.process_iter():
            if proc.pid in found or proc.pid in mine:
                continue
            try:
                if handle.pid is not None and os.getsid(proc.pid) == handle.pid:
                    add(proc, "session")
                elif ws is not None:
                    cwd = proc.cwd()
                    if cwd == ws or cwd.startswith(ws + os.sep):
                        add(proc, "workspace")
            except (psutil.Error, OSError):
                continue
        live = []
        for pid, (proc, how) in found.items():
            if not _not_zombie(proc):
                continue
            live.append(proc)
            if pid not in seen:
                seen[pid] = {"pid": pid, "name": _name(proc), "found": how}
        return live


def kill_working_in(directory: Path) -> list[dict[str, object]]:
    """SIGKILL every process whose working directory is inside `directory` (never this
    process or its ancestors): what must not keep running in a worktree about to be removed.
    Returns each one killed, as `kill` does."""
    seen: dict[int, dict[str, object]] = {}
    workspace = Workspace(path=str(directory), branch="", base_commit="")
    stray = HostRuntime()._victims(RuntimeHandle(runtime=HostRuntime.name), workspace, None, seen)
    for proc in stray:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    _wait_gone(stray, KILL_WAIT_S)
    return list(seen.values())


def _cgroup_name(paths: JobPaths) -> str:
    digest = hashlib.sha256(os.path.realpath(paths.dir).encode()).hexdigest()[:20]
    return f"{cgroups.PREFIX}{digest}"


def _cgroup_of(paths: JobPaths) -> Path | None:
    """The step's cgroup, where it exists. Its path is derived from the step's directory,
    never read from the `cgroup` file (which only records that the wrapper joined it): the
    agent can write that file, and must not make `kill` empty another cgroup."""
    root = cgroups.detect()
    group = root.path / _cgroup_name(paths) if root is not None else None
    return group if group is not None and group.is_dir() else None


def _self_and_ancestors() -> set[int]:
    mine = {os.getpid()}
    with contextlib.suppress(psutil.Error):
        mine.update(p.pid for p in psutil.Process().parents())
    return mine


def _name(proc: psutil.Process) -> str:
    try:
        return proc.name()
    except psutil.Error:
        return "?"


def _wait_gone(procs: list[psutil.Process], timeout: float) -> list[psutil.Process]:
    """The processes still alive (not zombies) after up to `timeout` seconds."""
    deadline = time.monotonic() + timeout
    alive = [p for p in procs if _not_zombie(p)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.02)
        alive = [p for p in alive if _not_zombie(p)]
    return alive


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
