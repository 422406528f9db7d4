"""The replay runtime of `job poststep`: a recorded agent response instead of a live agent.

The response (the agent's own output format) becomes the step's output and the step ends
with status 0. Everything after that (parsing, observer, harvest, supervisor rounds) runs
exactly as for a live agent; the patch that stands in for the agent's edits is applied by
the engine before the step starts (a runtime never runs git). It is a registered runtime
like any other, so a driver that re-attaches to a replayed step finds it by its name.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from logist_server.domain.errors import RuntimeProviderError
from logist_server.domain.model import Job, RuntimeHandle, Workspace
from logist_server.domain.process import ProcessSpec
from logist_server.providers.runtimes.base import JobPaths
from logist_server.providers.runtimes.host import HostRuntime, exit_status_file
from logist_server.support.fsutil import atomic_write

REPLAY = "replay"


class ReplayRuntime(HostRuntime):
    """Host runtime whose `start` writes a recorded response instead of running a program."""

    name = REPLAY
    description = "replays a recorded agent response (only `logist job poststep` starts it)"

    def __init__(self, response: Path | None = None, patch: Path | None = None) -> None:
        super().__init__()
        self.response = response
        self.patch = patch  # the engine applies it to the workspace before `start`

    def available(self) -> tuple[bool, str]:
        return True, "ok (used by `logist job poststep`)"

    def start(
        self, job: Job, workspace: Workspace, spec: ProcessSpec, paths: JobPaths
    ) -> RuntimeHandle:
        if self.response is None:
            raise RuntimeProviderError(
                "the replay runtime only replays a recorded response: "
                "use `logist job poststep ID --response FILE`"
            )
        Path(paths.dir).mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.response, paths.output)
        atomic_write(exit_status_file(paths), b"0")
        return RuntimeHandle(runtime=REPLAY)
