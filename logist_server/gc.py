"""`logist gc`: remove what Logist made for settled jobs, and nothing else.

Only names that carry the id of a job recorded in THIS repository's store (the store of the
worktree gc runs in) are candidates, and only for settled jobs (review keeps its workspace
for inspection) that no process drives. For each such job gc removes:

- its workspace (the recorded path, and the default path for its id), with Logist's private
  index beside it; a legacy `git worktree` through git. A workspace whose files differ from
  the last commit Logist recorded for the job (unharvested changes) is kept unless `force`;
- its branch `logist/<id>`, only while it points at a commit Logist recorded for the job and
  no worktree has it checked out (so a branch the user committed to is kept).

Everything else is left alone: the user's own `logist/my-feature`, branches and workspaces
of ids this store does not know (another worktree's jobs, deleted records), job bases under
`refs/logist/bases/` (kept until `job delete` so that a rerun works).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from .locks import DriverLock, is_locked
from .model import Job, JobStatus
from .plans import current_checkpoint
from .runtimes.host import kill_working_in
from .workspace import (
    BRANCH_PREFIX,
    branch_tip,
    checked_out_branches,
    delete_branch_at,
    remove_worktree,
    unharvested_changes,
    workspace_path,
)

if TYPE_CHECKING:
    from .engine import Engine

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
    known = _recorded_commits(job)
    expected = current_checkpoint(job) or job.base_commit
    paths = {workspace_path(engine.workspace_root, engine.repo, job.id)}
    if job.workspace is not None:
        paths.add(Path(job.workspace.path))
    kept_workspace = False
    removed: set[Path] = set()
    for path in sorted(paths):
        if not (path.exists() or path.is_symlink()):
            continue
        changed = expected is not None and unharvested_changes(engine.repo_info, path, expected)
        if (changed or expected is None) and not force:
            kept_workspace = True
            report.kept.append(
                f"{path}: job {job.id} has changes logist never harvested "
                "(look at them, then `logist gc --force`)"
            )
            continue
        if not dry_run:
            kill_working_in(path)  # nothing keeps running in a removed worktree
            remove_worktree(engine.repo, path, None)
        removed.add(path)
        report.worktrees.append(str(path))
    branch = BRANCH_PREFIX + job.id
    tip = branch_tip(engine.repo, branch)
    if tip is None or kept_workspace:
        return
    gone = {path.resolve() for path in removed}  # a removed legacy worktree had it checked out
    if branch in checked_out and checked_out[branch].resolve() not in gone:
        report.kept.append(f"branch {branch}: it is checked out")
    elif tip not in known:
        report.kept.append(f"branch {branch}: it has commits logist did not make")
    elif dry_run or delete_branch_at(engine.repo, branch, tip):
        report.branches.append(branch)


def _recorded_commits(job: Job) -> set[str]:
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
