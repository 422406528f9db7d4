"""The replay runtime of `job poststep`: a recorded agent response instead of a live agent.

The response (the agent's own output format) becomes the step's output and the step ends
with status 0; an optional patch stands in for the agent's edits. Everything after that
(parsing, observer, harvest, supervisor rounds) runs exactly as for a live agent.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from logist_server.domain.errors import RuntimeProviderError
from logist_server.domain.model import Job, RuntimeHandle, Workspace
from logist_server.providers.runtimes.base import JobPaths, ProcessSpec
from logist_server.providers.runtimes.host import HostRuntime
from logist_server.support.fsutil import atomic_write
from logist_server.vcs.git import git
from logist_server.vcs.workspace import workspace_env

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
