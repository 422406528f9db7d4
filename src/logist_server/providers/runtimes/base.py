"""The runtime contract: WHERE an agent runs (a host process, a container on this machine,
a pod on a remote cluster), written so that each of them can honour it.

- Options: typed and validated (`domain.runtime.RuntimeOptions`: image, mounts, resources,
  network, environment allow-list). `check_options` refuses, in one line, an option the
  runtime cannot honour (the host has no `image`); nothing is silently ignored.
- Workspace hand-over (`hand_over`): `in_place`, the agent works in the job's workspace
  directory itself (a process here); `copy`, the engine calls `copy_in` before `start` and
  `copy_out` after the agent ended, and the runtime moves the files (a remote pod):
  `copy_out` only fills an empty staging directory, the engine writes the workspace. The
  engine provisions and harvests the workspace (git); a runtime never runs git on it.
- Handle: `start` returns a `RuntimeHandle` with the runtime's own identity of the agent
  (`HostIdentity`, `ContainerIdentity`, `PodIdentity` or its own struct) as typed data;
  the engine stores it on the step. `locate(job, step, paths)` finds an agent whose handle
  was never recorded (the driving process died right after `start`) by the step's launch
  nonce (`spec.launch`, recorded on the step before `start`): found / never started /
  unknown (then the engine fails the step: never a second agent).
- Output: an append-only byte stream read through a cursor the runtime defines
  (`read_output`, `advance`); the engine stores the cursor with the events read up to it,
  so another process resumes exactly there. `""` is the start of the stream.
- Flags (`supports_*`): what the engine may rely on; it honours them (see the base class).
- `available()`: whether the runtime works on this machine now; `logist doctor` asks it.

Runtimes import only the domain, support and this module (checked by import-linter).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import msgspec

from logist_server.domain.model import Job, RuntimeHandle, Step, Workspace
from logist_server.domain.process import ProcessSpec
from logist_server.domain.runtime import (
    NEVER_STARTED,
    HandOver,
    Located,
    RuntimeOptions,
    RuntimeOptionsError,
    located,
    parse_runtime_options,
    unknown,
)

__all__ = [
    "NEVER_STARTED",
    "BaseRuntime",
    "JobPaths",
    "Located",
    "OutputChunk",
    "ProcessSpec",
    "Runtime",
    "check_options",
    "located",
    "options_of",
    "unknown",
]


class JobPaths(msgspec.Struct, frozen=True):
    """The step's local directory, the runtime's for its own files (the host runtime keeps
    the raw output, the exit status and the pid there). `output` is where a runtime keeps a
    local copy of the raw output, if it keeps one: the engine masks declared secrets in it
    once the step's end is recorded."""

    dir: str

    @property
    def output(self) -> Path:
        return Path(self.dir) / "output.log"


class OutputChunk(msgspec.Struct, frozen=True):
    """Output bytes read from a cursor, and the cursor just past them."""

    data: bytes
    cursor: str


@runtime_checkable
class Runtime(Protocol):
    """What the engine needs from a place to run agents."""

    name: str
    description: str
    #: `in_place` or `copy` (see the module's docstring).
    hand_over: HandOver

    @property
    def supports_reattach(self) -> bool:
        """Can another process follow an agent this one started (`locate` and the handle)?
        Without it, a step whose driver died is killed and run again."""
        ...

    @property
    def supports_kill_tree(self) -> bool:
        """Does `kill` take down every process the agent started? Without it, the engine
        waits for `is_alive` to turn false before it harvests, and fails the step if not."""
        ...

    @property
    def supports_stdin(self) -> bool:
        """Can `write_input` send bytes to the agent's standard input while it runs?"""
        ...

    @property
    def supports_image(self) -> bool: ...

    @property
    def supports_mounts(self) -> bool: ...

    @property
    def supports_resources(self) -> bool: ...

    @property
    def supports_network(self) -> bool: ...

    def available(self) -> tuple[bool, str]:
        """Whether this runtime can be used here, and what was found (or why not)."""
        ...

    def check_options(self, options: RuntimeOptions) -> None:
        """RuntimeOptionsError (one line) for an option this runtime cannot honour."""
        ...

    def copy_in(self, job: Job, workspace: Workspace, paths: JobPaths) -> None:
        """`copy` hand-over: put the workspace's files where the agent will run."""
        ...

    def copy_out(self, handle: RuntimeHandle, paths: JobPaths, staging: Path) -> None:
        """`copy` hand-over: deliver the agent's resulting files (the whole tree, without
        `.git`) into the empty directory `staging`; the engine writes them into the
        workspace itself (never through a symlink, refusing `.git`/`.logist` at any depth
        and unsafe paths: the step fails naming the path)."""
        ...

    def start(
        self, job: Job, workspace: Workspace, spec: ProcessSpec, paths: JobPaths
    ) -> RuntimeHandle:
        """Start the agent detached from the caller; its options are `options_of(job)`."""
        ...

    def locate(self, job: Job, step: Step, paths: JobPaths) -> Located:
        """The agent of `step` when its handle was never recorded (its driver died right
        after `start`), searched by the step's launch nonce (`step.launch`, the one
        `start` got as `spec.launch`): `located(handle)`, `NEVER_STARTED` only when it is
        proved, else `unknown(why)` (the engine then fails the step rather than start a
        second agent)."""
        ...

    def read_output(
        self, handle: RuntimeHandle, paths: JobPaths, cursor: str, limit: int
    ) -> OutputChunk:
        """At most `limit` output bytes from `cursor` on (possibly none)."""
        ...

    def advance(self, cursor: str, consumed: int) -> str:
        """The cursor `consumed` bytes past `cursor` in the output stream."""
        ...

    def write_input(self, handle: RuntimeHandle, paths: JobPaths, data: bytes) -> None:
        """Send `data` to the running agent's standard input (`supports_stdin`)."""
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
        however it ends (exit, crash, cancel, limit); may block for seconds (the engine
        calls it in a worker thread). Returns what it killed, one `{"pid", "name",
        "found"}` per process (`found`: how it was found)."""
        ...

    def cleanup(self, job: Job, workspace: Workspace) -> None:
        """The workspace is about to be removed (by the engine): release what the runtime
        holds for it (the host kills what still works in it; a pod runtime deletes pods)."""
        ...


class BaseRuntime:
    """Defaults for a runtime: every flag off, in-place hand-over, no `locate`, options
    checked against the flags. A runtime subclasses it and overrides what it does."""

    name = "base"
    description = ""
    hand_over: HandOver = "in_place"
    supports_reattach = False
    supports_kill_tree = False
    supports_stdin = False
    supports_image = False
    supports_mounts = False
    supports_resources = False
    supports_network = False

    def available(self) -> tuple[bool, str]:
        return True, "ok"

    def check_options(self, options: RuntimeOptions) -> None:
        check_options(self, options)

    def copy_in(self, job: Job, workspace: Workspace, paths: JobPaths) -> None:
        return None

    def copy_out(self, handle: RuntimeHandle, paths: JobPaths, staging: Path) -> None:
        return None

    def locate(self, job: Job, step: Step, paths: JobPaths) -> Located:
        return unknown(f"runtime '{self.name}' cannot find an agent it did not record")

    def advance(self, cursor: str, consumed: int) -> str:
        """Cursors that are byte offsets (decimal text): the default."""
        return str(offset_of(cursor) + consumed)

    def write_input(self, handle: RuntimeHandle, paths: JobPaths, data: bytes) -> None:
        raise RuntimeOptionsError(f"runtime '{self.name}' cannot write to an agent's input")

    def cleanup(self, job: Job, workspace: Workspace) -> None:
        return None


#: The option a flag allows (`supports_<flag>`), by the option's user-facing names.
_NEEDS = {
    "image": "image",
    "mounts": "mounts",
    "cpu": "resources",
    "memory": "resources",
    "network": "network",
}


def check_options(runtime: Any, options: RuntimeOptions) -> None:
    """Refuse an option `runtime`'s flags say it cannot honour, naming both."""
    for given in options.given():
        flag = _NEEDS.get(given)
        if flag is not None and not getattr(runtime, f"supports_{flag}", False):
            raise RuntimeOptionsError(
                f"runtime '{runtime.name}' cannot honour the option '{given}' "
                f"(it does not support {flag}); remove it or choose another runtime"
            )


def options_of(job: Job | None) -> RuntimeOptions:
    """The job's runtime options, typed (validated when the job was created); none
    without a job (a runtime driven directly, as tests do)."""
    return RuntimeOptions() if job is None else parse_runtime_options(job.runtime.options)


def offset_of(cursor: str) -> int:
    """A byte-offset cursor's offset (`""`: the start); ValueError for anything else."""
    if cursor == "":
        return 0
    if not cursor.isdigit():
        raise ValueError(f"not an output cursor: {cursor[:40]!r}")
    return int(cursor)
