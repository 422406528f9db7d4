"""The replay runtime of `job poststep`: a recorded agent response instead of a live agent.

The response (the agent's own output format) becomes the step's output and the step ends
with status 0; an optional patch stands in for the agent's edits. Everything after that
(parsing, observer, harvest, supervisor rounds) runs exactly as for a live agent.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ..errors import RuntimeProviderError
from ..fsutil import atomic_write
from ..git import git
from ..model import Job, RuntimeHandle, Workspace
from ..workspace import workspace_env
from .base import JobPaths, ProcessSpec
from .host import HostRuntime

REPLAY = "replay"


class ReplayRuntime(HostRuntime):
    """Host runtime whose `start` writes a recorded response instead of running a program."""

    name = REPLAY
    description = "replays a recorded agent response (job poststep)"

    def __init__(self, response: Path, patch: Path | None = None) -> None:
        super().__init__()
        self.response = response
        self.patch = patch

    def start(
        self, job: Job, workspace: Workspace, spec: ProcessSpec, paths: JobPaths
    ) -> RuntimeHandle:
        Path(paths.dir).mkdir(parents=True, exist_ok=True)
        if self.patch is not None:
            proc = git(["apply", "--whitespace=nowarn", str(self.patch)], Path(workspace.path),
                       workspace_env(workspace), check=False)  # fmt: skip
            if proc.returncode != 0:
                detail = proc.stderr.decode(errors="replace").strip().splitlines()
                raise RuntimeProviderError(
                    f"the patch {self.patch} does not apply to the job's workspace: "
                    + (detail[0] if detail else f"git apply exited {proc.returncode}")
                )
        shutil.copyfile(self.response, paths.output)
        atomic_write(paths.exit_status, b"0")
        return RuntimeHandle(runtime=REPLAY)
