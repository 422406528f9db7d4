"""The runtime interface: WHERE an agent runs (host, Docker, Podman, Kubernetes).

A runtime provisions a workspace, starts one agent process in it, lets the engine read its
output by byte offset (so a new process can resume exactly where the last one stopped),
reports its exit status, kills its whole process tree and harvests its changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

import msgspec

from logist_server.domain.model import Job, RuntimeHandle, Workspace
from logist_server.vcs.git import RepoInfo
from logist_server.vcs.workspace import Harvest


class ProcessSpec(msgspec.Struct, frozen=True):
    """One non-interactive agent run: argv, environment and working directory.

    `argv[0]` is an absolute path to the installed program (never a bare name looked up in
    PATH, nor anything inside the workspace); a Python program runs isolated (`-I`).
    The process gets a minimal base of the user's environment (`environment.BASE`), the
    variables named in `inherit` (those its provider declares, API keys say) and `env`:
    nothing else of the user's environment."""

    argv: list[str]
    env: dict[str, str] = msgspec.field(default_factory=dict)
    cwd: str = "."
    inherit: tuple[str, ...] = ()


class JobPaths(msgspec.Struct, frozen=True):
    """Per-job files the runtime writes: the raw output and the exit status."""

    dir: str

    @property
    def output(self) -> Path:
        return Path(self.dir) / "output.log"

    @property
    def exit_status(self) -> Path:
        return Path(self.dir) / "exit-status"

    @property
    def pid(self) -> Path:
        return Path(self.dir) / "pid"


@runtime_checkable
class Runtime(Protocol):
    """What the engine needs from a place to run agents."""

    name: str
    description: str

    @property
    def supports_reattach(self) -> bool:
        """Can a new process find and follow an agent started by a dead one?"""
        ...

    @property
    def supports_kill_tree(self) -> bool:
        """Does `kill` reliably take down every process the agent started?"""
        ...

    def available(self) -> tuple[bool, str]:
        """Whether this runtime can be used here, and why not."""
        ...

    def provision(self, info: RepoInfo, job: Job, workspace_root: Path) -> Workspace:
        """Create the job's isolated workspace from the user's current state."""
        ...

    def start(
        self, job: Job, workspace: Workspace, spec: ProcessSpec, paths: JobPaths
    ) -> RuntimeHandle:
        """Start the agent detached from the caller; output goes to `paths.output`."""
        ...

    def read_output(self, handle: RuntimeHandle, paths: JobPaths, offset: int) -> bytes:
        """Output bytes from `offset` on (possibly empty)."""
        ...

    def exit_status(self, handle: RuntimeHandle, paths: JobPaths) -> int | None:
        """The agent's exit status once it has ended; None while it runs."""
        ...

    def is_alive(self, handle: RuntimeHandle, paths: JobPaths) -> bool:
        """True while any process of the agent is alive."""
        ...

    def kill(
        self, handle: RuntimeHandle, paths: JobPaths, workspace: Workspace | None
    ) -> list[dict[str, object]]:
        """Kill the agent and every process it started; idempotent. Called when a step ends
        however it ends (exit, crash, cancel, limit). Returns what it killed, one
        `{"pid", "name", "found"}` per process (`found`: how it was found)."""
        ...

    def harvest(self, job: Job, workspace: Workspace) -> Harvest:
        """Collect every change the agent made as a commit on the job branch."""
        ...

    def cleanup(self, info: RepoInfo, workspace: Workspace) -> None:
        """Remove the workspace and its branch."""
        ...
