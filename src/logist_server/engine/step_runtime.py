"""The engine's side of the runtime contract for one step: the workspace made, handed over
and harvested by the engine (git), the agent started, found again and killed by the
runtime, whatever runtime it is (no runtime is special-cased by name)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from logist_server.domain.errors import RuntimeProviderError
from logist_server.domain.model import Job, JobStatus, RuntimeHandle, Step, Workspace
from logist_server.domain.process import ProcessSpec
from logist_server.domain.runtime import Located, located
from logist_server.engine.copy_back import copy_back
from logist_server.engine.services import DriverServices
from logist_server.providers.runtimes.base import JobPaths, Runtime
from logist_server.support.fsutil import atomic_write
from logist_server.vcs.git import git
from logist_server.vcs.workspace import Harvest, harvest, provision, workspace_env

S = JobStatus


def step_paths(job_dir: Path, number: int) -> JobPaths:
    return JobPaths(dir=str(job_dir / f"step-{number}"))


def make_workspace(services: DriverServices, job: Job) -> Workspace:
    """The job's isolated workspace on this machine, made by git from its base (blocks)."""
    if job.base_commit is None:
        raise RuntimeProviderError(f"job {job.id} has no base commit")
    return provision(services.repo_info, services.workspace_root, job.id, job.base_commit)


def apply_patch(workspace: Workspace, patch: Path) -> None:
    """Apply `patch` to the workspace (`job poststep --patch`: the edits of a replayed
    step), with git on Logist's private index, never the agent's `.git` (blocks)."""
    proc = git(["apply", "--whitespace=nowarn", str(patch)], Path(workspace.path),
               workspace_env(workspace), check=False)  # fmt: skip
    if proc.returncode != 0:
        detail = proc.stderr.decode(errors="replace").strip().splitlines()
        raise RuntimeProviderError(
            f"the patch {patch} does not apply to the job's workspace: "
            + (detail[0] if detail else f"git apply exited {proc.returncode}")
        )


def start_agent(
    runtime: Runtime, job: Job, workspace: Workspace, spec: ProcessSpec, paths: JobPaths
) -> RuntimeHandle:
    """Hand the workspace over as the runtime says (`copy`: copied in first), then start
    the agent (blocks: call it in a worker thread)."""
    if runtime.hand_over == "copy":
        runtime.copy_in(job, workspace, paths)
    return runtime.start(job, workspace, spec, paths)


def harvest_step(
    runtime: Runtime, job: Job, handle: RuntimeHandle, workspace: Workspace, paths: JobPaths
) -> Harvest:
    """The agent's changes as a commit on the job's branch: copied back first when the
    runtime works on a copy (the runtime delivers its result into an empty staging
    directory, the engine writes it into the workspace, see `copy_back`), then collected
    by git here (blocks)."""
    if runtime.hand_over == "copy":
        staging = Path(tempfile.mkdtemp(prefix="result-", dir=paths.dir))
        try:
            runtime.copy_out(handle, paths, staging)
            copy_back(staging, Path(workspace.path))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return harvest(workspace, job.id)


def started_data(number: int, handle: RuntimeHandle, recovered: bool = False) -> dict[str, Any]:
    """The `started` event: the step, the runtime and its identity of the agent."""
    data: dict[str, Any] = {"step": number, "runtime": handle.runtime}
    data.update({k: v for k, v in handle.identity.items() if v is not None and k not in data})
    if recovered:
        data["recovered"] = True
    return data


def locate_step(runtime: Runtime, job: Job, step: Step, paths: JobPaths) -> Located:
    """The step's recorded handle, else what the runtime finds by the step's launch nonce
    (`locate`: found, never started or unknown; blocks)."""
    if step.handle is not None:
        return located(step.handle)
    return runtime.locate(job, step, paths)


def find_handle(runtime: Runtime, job: Job, step: Step, paths: JobPaths) -> RuntimeHandle | None:
    """The step's recorded handle, else the one the runtime found (None: never started or
    not found; blocks)."""
    return locate_step(runtime, job, step, paths).handle


def kill_step_agent(services: DriverServices, job: Job) -> list[dict[str, object]]:
    """Kill the current step's agent if one may run (found by `locate` if its handle was
    never recorded). Blocks while the agent dies: call it in a worker thread."""
    step = job.current_step
    if step is None or job.status not in (S.RUNNING, S.NEEDS_INPUT):
        return []
    paths = step_paths(services.store.job_dir(job.id), step.number)
    runtime = services.runtime_for(job)
    handle = find_handle(runtime, job, step, paths)
    if handle is None:
        return []
    return services.runtime_for_handle(job, handle).kill(handle, paths, job.workspace)


def write_prompts(job_dir: Path, prompt_file: Path, prompt: str, rendered: str) -> None:
    """The user's prompt and the step's rendered one, written (durably) for the agent and
    for `job show` (blocks: fsync)."""
    atomic_write(job_dir / "user-prompt.txt", prompt.encode())
    atomic_write(prompt_file, rendered.encode())
    atomic_write(job_dir / "prompt.txt", rendered.encode())
