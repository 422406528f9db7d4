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
import os
import re
import secrets
import signal
import stat
import subprocess
import time
from pathlib import Path

import psutil

from logist_server.domain.errors import RuntimeProviderError
from logist_server.domain.model import Job, RuntimeHandle, Step, Workspace
from logist_server.domain.process import ProcessSpec
from logist_server.domain.runtime import (
    NEVER_STARTED,
    HostIdentity,
    Located,
    RuntimeOptions,
    RuntimeOptionsError,
    identity_as,
    identity_payload,
    located,
    unknown,
)
from logist_server.providers.runtimes import cgroups
from logist_server.providers.runtimes.base import (
    BaseRuntime,
    JobPaths,
    OutputChunk,
    check_options,
    offset_of,
    options_of,
)
from logist_server.providers.runtimes.environment import agent_environment

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
# The names `_new_cgroup` makes: nothing else is ever killed or removed as an agent's cgroup.
_GROUP_NAME = re.compile(re.escape(cgroups.PREFIX) + r"[a-z0-9]{1,40}-[0-9]{1,6}-[0-9a-f]{16}")
# What the wrapper writes to the exit-status file (`$?`): anything else is not a status.
_STATUS = re.compile(rb"-?[0-9]{1,32}")
# A process's working directory is looked up this many parents deep at most.
_MAX_DEPTH = 256


def wrapper_name(launch: str) -> str:
    """The wrapper's `$0`: carries the step's launch nonce, which `locate` looks for."""
    return f"logist-agent:{launch}" if launch else "logist-agent"


def _find_wrapper(launch: str, paths: JobPaths, since: float | None) -> tuple[int, float] | None:
    """(pid, start time) of the live wrapper started for `launch`, or None."""
    head = ["/bin/sh", "-c", _WRAPPER, wrapper_name(launch), str(paths.output)]
    for proc in psutil.process_iter(["cmdline", "create_time"]):
        cmdline, started = proc.info.get("cmdline"), proc.info.get("create_time")
        if not cmdline or cmdline[: len(head)] != head or started is None:
            continue
        if since is not None and started < since - 1:
            continue  # older than the step: not its wrapper
        try:
            if os.getsid(proc.pid) != proc.pid:
                continue  # the wrapper leads its own session
        except OSError:
            continue
        return proc.pid, float(started)
    return None


def exit_status_file(paths: JobPaths) -> Path:
    """Where the wrapper writes the agent's exit status when it ends."""
    return Path(paths.dir) / "exit-status"


def pid_file(paths: JobPaths) -> Path:
    """Where the wrapper writes its pid (agent-writable: `locate` checks what it names)."""
    return Path(paths.dir) / "pid"


def host_handle(
    pid: int | None = None,
    started_at: float | None = None,
    cgroup: str | None = None,
    runtime: str = "host",
) -> RuntimeHandle:
    """A handle of `runtime` (the host's, or a subclass's name) for the process `pid`
    (started at `started_at`) in `cgroup`."""
    identity = HostIdentity(pid=pid, started_at=started_at, cgroup=cgroup)
    return RuntimeHandle(runtime=runtime, identity=identity_payload(identity))


def host_identity(handle: RuntimeHandle) -> HostIdentity:
    """The host identity a handle carries (empty for a handle with none)."""
    return identity_as(handle.identity, HostIdentity)


class HostRuntime(BaseRuntime):
    """Runs agents as local processes, in the job's workspace itself (`in_place`)."""

    name = "host"
    description = "local process in its own session (and cgroup), in the job's workspace"
    hand_over = "in_place"
    supports_reattach = True
    supports_kill_tree = True
    supports_network = True  # only `network=host`: the machine's own network

    def __init__(self, use_cgroups: bool = True) -> None:
        self._children: dict[int, subprocess.Popen[bytes]] = {}
        self._use_cgroups = use_cgroups
        # Workspace path -> (device, inode) when a step started in it: what `kill` matches
        # working directories against, whatever the agent has put at that path since.
        self._workspaces: dict[str, tuple[int, int]] = {}

    def available(self) -> tuple[bool, str]:
        group = cgroups.detect() if self._use_cgroups else None
        if group is None:
            return True, "ok (no writable cgroup: processes are found by session and directory)"
        return True, f"ok (one cgroup v{group.version} per agent under {group.path})"

    def check_options(self, options: RuntimeOptions) -> None:
        """The host has no image, mounts or resource limits; its network is the machine's."""
        check_options(self, options)
        if options.network not in (None, "host"):
            raise RuntimeOptionsError(
                f"runtime 'host' cannot honour network={options.network}: an agent on the "
                "host uses the machine's network (network=host); choose a container runtime"
            )

    def locate(self, job: Job, step: Step, paths: JobPaths) -> Located:
        """The agent of a step whose start was never recorded (its driver died right after
        starting it). Never from the agent-writable pid file: the wrapper is the process
        whose argv is exactly the one `start` gave it, with this step's launch nonce, that
        leads its own session and started after the step did; its cgroup read from the
        kernel (`/proc/PID/cgroup`), accepted only with the name this runtime gives this
        job's step. No such process: the agent ended (its status file, or the pid file,
        is there: a handle with no pid) or never started."""
        if not step.launch:
            return unknown("the step records no launch nonce (started by an older Logist)")
        found = _find_wrapper(step.launch, paths, step.started_at)
        if found is not None:
            pid, started = found
            group = _cgroup_of_process(pid, job.id, step.number)
            return located(host_handle(pid, started, group, runtime=self.name))
        if exit_status_file(paths).exists() or pid_file(paths).exists():
            return located(host_handle(runtime=self.name))  # it ran and its wrapper ended
        return NEVER_STARTED

    def start(
        self, job: Job, workspace: Workspace, spec: ProcessSpec, paths: JobPaths
    ) -> RuntimeHandle:
        if not spec.argv or not os.path.isabs(spec.argv[0]):
            raise RuntimeProviderError(
                f"agent program {spec.argv[:1]} is not an absolute path: a bare name would be"
                " looked up in PATH, which may lead into the workspace"
            )
        _real_directory(Path(paths.dir))
        marker = Path(paths.dir) / CGROUP_FILE
        for stale in (exit_status_file(paths), pid_file(paths), marker):
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()
        identity = workspace_identity(workspace) if workspace is not None else None
        if identity is not None:
            self._workspaces[workspace.path] = identity
        inherit = (*spec.inherit, *options_of(job).env_allow)
        env = agent_environment(os.environ, inherit, spec.env)
        group = self._new_cgroup(job, paths)
        argv = [
            "/bin/sh", "-c", _WRAPPER, wrapper_name(spec.launch),
            str(paths.output), str(exit_status_file(paths)), str(pid_file(paths)),
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
        name = group.name if group is not None else None
        return host_handle(proc.pid, started, name, runtime=self.name)

    def read_output(
        self, handle: RuntimeHandle, paths: JobPaths, cursor: str, limit: int
    ) -> OutputChunk:
        """The cursor is the byte offset in `output.log` (decimal). The engine masks
        secrets in that file (a shorter rewrite) only after the step's end and final cursor
        are recorded, so no cursor is ever read against the rewritten file."""
        offset = offset_of(cursor)
        try:
            with open(paths.output, "rb") as fh:
                fh.seek(offset)
                data = fh.read(limit)
        except FileNotFoundError:
            data = b""
        return OutputChunk(data=data, cursor=str(offset + len(data)))

    def exit_status(self, handle: RuntimeHandle, paths: JobPaths) -> int | None:
        pid = host_identity(handle).pid
        recorded = _read_status(paths)
        if recorded is not None:
            self._reap(handle)
            return recorded
        if self.is_alive(handle, paths):
            return None
        recorded = _read_status(paths)  # the wrapper may have ended since the first look
        if recorded is not None:
            return recorded
        proc = self._children.get(pid or -1)
        if proc is not None and proc.returncode is not None:
            return proc.returncode if proc.returncode >= 0 else 128 - proc.returncode
        return -1  # ended without recording a status (killed with its wrapper)

    def is_alive(self, handle: RuntimeHandle, paths: JobPaths) -> bool:
        if exit_status_file(paths).exists():
            return False  # the agent ended; its wrapper is only exiting
        child = self._children.get(host_identity(handle).pid or -1)
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
        if exit_status_file(paths).exists():  # the agent ended: let its wrapper (`mv`) finish
            self._wait_wrapper(handle, WRAPPER_EXIT_S)
        group = _cgroup_of(handle)
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
        own = {host_identity(handle).pid}
        return [info for pid, info in sorted(killed.items()) if pid not in own]

    def cleanup(self, job: Job, workspace: Workspace) -> None:
        """Kill what still works in the workspace (a last resort: steps reap their own);
        the engine removes it next."""
        identity = self._workspaces.get(workspace.path) or workspace_identity(workspace)
        kill_working_in(Path(workspace.path), identity)

    # -- internals -------------------------------------------------------------------------
    def _reap(self, handle: RuntimeHandle) -> None:
        proc = self._children.get(host_identity(handle).pid or -1)
        if proc is not None:
            proc.poll()

    def _process(self, handle: RuntimeHandle) -> psutil.Process | None:
        """The wrapper process, unless its pid now belongs to someone else."""
        ident = host_identity(handle)
        if ident.pid is None:
            return None
        try:
            process = psutil.Process(ident.pid)
            # No start time: nothing tells the wrapper from whoever reused its pid.
            if ident.started_at is None or abs(process.create_time() - ident.started_at) > 1:
                return None
            return process
        except psutil.Error:
            return None

    def _new_cgroup(self, job: Job, paths: JobPaths) -> Path | None:
        """A fresh cgroup for the step whose files are in `paths`, where one can be made. Its
        name (job id, step number and a random nonce) is recorded in the handle, so that
        `kill` never derives it from anything the agent can write."""
        root = cgroups.detect() if self._use_cgroups else None
        if root is None:
            return None
        number = re.search(r"[0-9]{1,6}$", Path(paths.dir).name)  # `step-N`, as named by the driver
        step = int(number.group()) if number else 0
        return root.create(
            f"{_group_prefix(str(getattr(job, 'id', '')), step)}{secrets.token_hex(8)}"
        )

    def _wait_wrapper(self, handle: RuntimeHandle, timeout: float) -> None:
        """Wait until the wrapper has exited (it only renames the status file into place)."""
        child = self._children.get(host_identity(handle).pid or -1)
        if child is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout)
            return
        wrapper = self._process(handle)
        if wrapper is not None:
            _wait_gone([wrapper], timeout)

    def _signal_group(self, handle: RuntimeHandle, sig: signal.Signals) -> None:
        """Signal the wrapper's process group (its id cannot be reused while it exists)."""
        pid = host_identity(handle).pid
        if pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, sig)

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
        session = host_identity(handle).pid

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
        ws = None
        if workspace is not None:
            ws = self._workspaces.get(workspace.path) or workspace_identity(workspace)
        for proc in psutil.process_iter():
            if proc.pid in found or proc.pid in mine:
                continue
            try:
                if session is not None and os.getsid(proc.pid) == session:
                    add(proc, "session")
                elif ws is not None and _works_in(proc.pid, ws):
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


def kill_working_in(
    directory: Path, identity: tuple[int, int] | None = None
) -> list[dict[str, object]]:
    """SIGKILL every process whose working directory is inside `directory` (never this
    process or its ancestors): what must not keep running in a worktree about to be removed.

    The directory is the one with `identity` (device, inode) when given, else the directory
    at that path now; a symlink there is never followed (an agent may have put one there to
    point Logist at the user's own directories). Returns each one killed, as `kill` does."""
    seen: dict[int, dict[str, object]] = {}
    ident = identity or _identity_at(directory)
    if ident is None:
        return []
    runtime = HostRuntime()
    runtime._workspaces[str(directory)] = ident
    workspace = Workspace(path=str(directory), branch="", base_commit="")
    stray = runtime._victims(host_handle(), workspace, None, seen)
    for proc in stray:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    _wait_gone(stray, KILL_WAIT_S)
    return list(seen.values())


def _cgroup_of(handle: RuntimeHandle) -> Path | None:
    """The step's cgroup, where it exists: the one named in its handle (recorded by the
    driver and the store), never one read from the step directory, which the agent can
    write (the `cgroup` file there only records that the wrapper joined it)."""
    root = cgroups.detect()
    name = host_identity(handle).cgroup
    if root is None or name is None or not _GROUP_NAME.fullmatch(name):
        return None
    group = root.path / name
    try:
        return group if stat.S_ISDIR(os.lstat(group).st_mode) else None
    except OSError:
        return None


def workspace_identity(workspace: Workspace) -> tuple[int, int] | None:
    """(device, inode) of the workspace directory: as recorded when it was provisioned,
    else of the directory at its path now (None when that is a symlink or not a directory)."""
    device, inode = getattr(workspace, "device", None), getattr(workspace, "inode", None)
    if isinstance(device, int) and isinstance(inode, int):
        return device, inode
    return _identity_at(Path(workspace.path))


def _identity_at(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the directory at `path`, never through a symlink at `path`."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino) if stat.S_ISDIR(st.st_mode) else None


def _works_in(pid: int, identity: tuple[int, int]) -> bool:
    """Whether process `pid` works in the directory with `identity` or below it. Its working
    directory is walked up through `..` entries (which are never symlinks), not by path."""
    try:
        fd = os.open(f"/proc/{pid}/cwd", os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return False
    try:
        for _ in range(_MAX_DEPTH):
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino) == identity:
                return True
            parent = os.open("..", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = parent
            if os.path.samestat(st, os.fstat(fd)):  # the root: `..` is itself
                return False
        return False
    except OSError:
        return False
    finally:
        os.close(fd)


def _real_directory(path: Path) -> None:
    """Make the step directory `path` if needed; refuse one that is now a symlink or not a
    directory (the agent of an earlier step may have replaced it)."""
    path.mkdir(parents=True, exist_ok=True)
    if not stat.S_ISDIR(os.lstat(path).st_mode):
        raise RuntimeProviderError(f"step directory {path} is not a plain directory (a symlink?)")


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


def _group_prefix(job_id: str, step: int) -> str:
    """The start of the cgroup names of a job's step (a random nonce follows)."""
    ident = re.sub(r"[^a-z0-9]", "", job_id.lower())[:40] or "job"
    return f"{cgroups.PREFIX}{ident}-{step}-"


def _cgroup_of_process(pid: int, job_id: str, step: int) -> str | None:
    """The name of the agent cgroup process `pid` is in, as the kernel says (never a file
    the agent can write), if it is one this runtime made for `job_id`'s step `step`."""
    root = cgroups.detect()
    if root is None:
        return None
    try:
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
    except OSError:
        return None
    prefix = _group_prefix(job_id, step)
    for line in lines:
        path = line.split(":", 2)[-1]
        name = path.rstrip("/").rsplit("/", 1)[-1]
        if name.startswith(prefix) and _GROUP_NAME.fullmatch(name):
            return name
    return None


def _read_status(paths: JobPaths) -> int | None:
    """The status the wrapper recorded; the file is agent-writable, so anything but a
    short integer is -1 ("ended without a valid status"; the engine bounds the range)."""
    try:
        text = exit_status_file(paths).read_bytes()[:64].strip()
    except FileNotFoundError:
        return None
    if not text:
        return None
    return int(text) if _STATUS.fullmatch(text) else -1


def _not_zombie(proc: psutil.Process) -> bool:
    try:
        return proc.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
