"""`logist gc`: remove what Logist made for settled jobs, and nothing else.

Only names that carry the id of a job recorded in THIS repository's store (the store of the
worktree gc runs in) are candidates, and only for settled jobs (review keeps its workspace
for inspection) that no process drives. For each such job gc removes:

- its workspace (the recorded path, and the default path for its id), with Logist's private
  index beside it; a legacy `git worktree` through git. A workspace whose files differ from
  the last commit Logist recorded for the job (unharvested changes), or a directory that is
  not the one Logist made, is kept unless `force`; a symlink there is removed, never followed;
- its branch `logist/<id>`, under `release_branch`: the one rule `accept`, `reject` and
  `job delete` follow too.

Everything else is left alone: the user's own `logist/my-feature`, branches and workspaces
of ids this store does not know (another worktree's jobs, deleted records), job bases under
`refs/logist/bases/` (kept until `job delete` so that a rerun works).
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Protocol

import msgspec

from logist_server.domain.errors import LogistError
from logist_server.domain.model import Job, JobStatus, Workspace
from logist_server.domain.plans import current_checkpoint
from logist_server.providers.runtimes.base import Runtime
from logist_server.store.job_store import JobStore
from logist_server.support.locks import DriverLock, is_locked
from logist_server.vcs.git import RepoInfo
from logist_server.vcs.workspace import (
    BRANCH_PREFIX,
    REPLACED_BY_DIRECTORY,
    branch_tip,
    checked_out_branches,
    delete_branch_at,
    recorded_identity,
    remove_workspace_dir,
    replaced_reason,
    unharvested_changes,
    workspace_path,
)


class Engine(Protocol):
    """What gc needs of the engine (the facade satisfies it; gc never imports it)."""

    @property
    def store(self) -> JobStore: ...

    @property
    def repo(self) -> Path: ...

    @property
    def repo_info(self) -> RepoInfo: ...

    @property
    def workspace_root(self) -> Path: ...

    def has_store(self) -> bool: ...

    def runtime_for(self, job: Job) -> Runtime: ...


S = JobStatus
# Settled jobs whose workspace `gc` may remove (review keeps its workspace for inspection).
GC_STATUSES = frozenset({S.ACCEPTED, S.REJECTED, S.FAILED, S.CANCELLED, S.STUCK, S.HALTED})


class GcReport(msgspec.Struct):
    """What gc removed (or, with `dry_run`, would remove), and what it kept and why."""

    worktrees: list[str] = msgspec.field(default_factory=list)
    branches: list[str] = msgspec.field(default_factory=list)
    kept: list[str] = msgspec.field(default_factory=list)
    dry_run: bool = False


def collect(engine: Engine, dry_run: bool = False, force: bool = False) -> GcReport:
    """Remove (or list, with `dry_run`) the workspaces and branches of settled jobs."""
    report = GcReport(dry_run=dry_run)
    if not engine.has_store():
        return report  # no job was ever recorded here: nothing is Logist's to remove
    store = engine.store
    jobs = store.list_jobs()
    _drop_orphan_locks(engine, {job.id for job in jobs}, dry_run)
    checked_out = checked_out_branches(engine.repo)
    for job in jobs:
        if job.status not in GC_STATUSES:
            continue
        lock = DriverLock(store.lock_path(job.id))
        if is_locked(lock.path) or not (dry_run or lock.try_acquire()):
            report.kept.append(f"job {job.id}: another process is working on it")
            continue
        try:
            _collect_job(engine, job, checked_out, report, dry_run, force)
        finally:
            lock.release()
    return report


def _collect_job(
    engine: Engine,
    job: Job,
    checked_out: dict[str, Path],
    report: GcReport,
    dry_run: bool,
    force: bool,
) -> None:
    expected = current_checkpoint(job) or job.base_commit
    recorded = Path(job.workspace.path) if job.workspace is not None else None
    paths = {workspace_path(engine.workspace_root, engine.repo, job.id)}
    if recorded is not None:
        paths.add(recorded)
    kept_workspace = False
    removed: set[Path] = set()
    for path in sorted(paths):
        if not (path.exists() or path.is_symlink()):
            continue
        made = recorded_identity(job.workspace) if job.workspace and path == recorded else None
        why = _why_keep(engine, job, path, expected, made)
        if why is not None and not force:
            kept_workspace = True
            report.kept.append(why)
            continue
        if not dry_run:
            # Nothing keeps running in a removed workspace: the runtime stops what does.
            workspace = job.workspace if path == recorded else None
            workspace = workspace or Workspace(str(path), BRANCH_PREFIX + job.id, "")
            with contextlib.suppress(LogistError):  # its runtime is no longer installed
                engine.runtime_for(job).cleanup(job, workspace)
            remove_workspace_dir(engine.repo, path, made, force=True)
        removed.add(path)
        report.worktrees.append(str(path))
    if kept_workspace:
        return
    deleted, why = release_branch(engine.repo, job, checked_out, removed, dry_run)
    if deleted:
        report.branches.append(BRANCH_PREFIX + job.id)
    elif why is not None:
        report.kept.append(why)


def _why_keep(
    engine: Engine, job: Job, path: Path, expected: str | None, made: tuple[int, int] | None
) -> str | None:
    """Why gc keeps the workspace at `path` unless forced, or None. A symlink or file there
    is not kept (removing the link loses nothing); a directory Logist did not make is."""
    replaced = replaced_reason(path, made)
    if replaced is not None and replaced != REPLACED_BY_DIRECTORY:
        return None
    if replaced is not None:
        return (
            f"{path}: job {job.id}'s workspace was replaced by another directory "
            "(look at it, then `logist gc --force`)"
        )
    if expected is None or unharvested_changes(engine.repo_info, path, expected, made):
        return (
            f"{path}: job {job.id} has changes logist never harvested "
            "(look at them, then `logist gc --force`)"
        )
    return None


def release_branch(
    repo: Path,
    job: Job,
    checked_out: Mapping[str, Path] | None = None,
    gone: Collection[Path] = (),
    dry_run: bool = False,
) -> tuple[bool, str | None]:
    """Delete the job's branch `logist/<id>` if it is still only Logist's: its tip is a
    commit Logist recorded for the job (base, checkpoints, results) and no worktree has it
    checked out (`checked_out`, read now when None; worktrees in `gone` were just removed).
    The deletion is atomic on the tip read (`update-ref -d <ref> <tip>`).

    Returns (deleted, why kept): (True, None) when deleted (or, `dry_run`, when it would
    be), (False, None) when there is no such branch, else (False, the reason, one line:
    `branch logist/<id>: it has commits logist did not make`). Used by `gc`, `accept`,
    `reject` and `job delete` alike, so that none deletes a branch the user committed to."""
    branch = BRANCH_PREFIX + job.id
    tip = branch_tip(repo, branch)
    if tip is None:
        return False, None
    if checked_out is None:
        checked_out = checked_out_branches(repo)
    where = checked_out.get(branch)
    if where is not None and where.resolve() not in {path.resolve() for path in gone}:
        return False, f"branch {branch}: it is checked out (in {where})"
    if tip not in recorded_commits(job):
        return False, f"branch {branch}: it has commits logist did not make"
    if dry_run or delete_branch_at(repo, branch, tip):
        return True, None
    return False, f"branch {branch}: it moved while logist was removing it"


def recorded_commits(job: Job) -> set[str]:
    """Every commit Logist recorded for the job: its base, checkpoints and results."""
    found = {job.base_commit, job.result.result_commit}
    if job.workspace is not None:
        found.add(job.workspace.base_commit)
    for step in job.steps:
        found.update((step.checkpoint, step.result_commit))
    return {commit for commit in found if commit}


def _drop_orphan_locks(engine: Engine, ids: set[str], dry_run: bool) -> None:
    """Lock files of this store for jobs it no longer has (unless someone holds one)."""
    locks = engine.store.lock_path("x").parent
    if dry_run or not locks.is_dir():
        return
    for path in locks.glob("*.lock"):
        if path.stem not in ids and not is_locked(path):
            with contextlib.suppress(OSError):
                path.unlink()
