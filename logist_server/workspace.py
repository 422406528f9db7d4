"""Workspace isolation: a git worktree per job, based on exactly what the user has.

The base is a commit of HEAD plus uncommitted and untracked-but-not-ignored changes, made
through a private index file: the user's working tree and index are never touched.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path

import msgspec

from .errors import GitError
from .git import LOGIST_IDENTITY, GitQuery, HeadQuery, RepoInfo, git, git_out
from .locks import repo_lock
from .model import DiffStats, Workspace

BRANCH_PREFIX = "logist/"


def default_workspace_root() -> Path:
    """Where worktrees live: $LOGIST_WORKSPACE_ROOT, else the user cache directory."""
    configured = os.environ.get("LOGIST_WORKSPACE_ROOT")
    if configured:
        return Path(configured)
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("logist")) / "worktrees"


def workspace_path(root: Path, repo: Path, job_id: str) -> Path:
    """`<root>/<repo name>-<hash of its path>/<job id>`: outside the user's tree, per repo."""
    digest = hashlib.sha1(str(repo).encode()).hexdigest()[:8]
    return root / f"{repo.name}-{digest}" / job_id


def snapshot_base(info: RepoInfo, overlays: Mapping[str, str] | None = None) -> str:
    """A commit of the user's working state; HEAD itself when nothing is uncommitted.

    `overlays` maps repository-relative paths to text that replaces the file's content on
    disk: an editor's unsaved buffers.
    """
    repo = info.root
    query = HeadQuery(repo)  # runs while the working tree is staged
    try:
        with tempfile.TemporaryDirectory(prefix="logist-index-") as tmp:
            index = Path(tmp) / "index"
            user_index = info.git_dir / "index"
            if user_index.exists():  # else git starts from an empty index
                shutil.copyfile(user_index, index)  # keeps stat data: only changed files rehash
            env = {"GIT_INDEX_FILE": str(index)}
            git(["add", "-A", "--", "."], repo, env)
            for path, text in sorted((overlays or {}).items()):
                _stage_text(repo, env, path, text)
            tree = git_out(["write-tree"], repo, env)
        head, head_tree = query.result()
    finally:
        query.close()
    if head is not None and tree == head_tree:
        return head
    parents = ["-p", head] if head else []
    return git_out(
        ["commit-tree", tree, *parents, "-m", "logist: snapshot of the working tree"],
        repo,
        LOGIST_IDENTITY,
    )


def _stage_text(repo: Path, env: Mapping[str, str], path: str, text: str) -> None:
    """Put `text` into the private index at `path`, keeping the file's mode."""
    blob = git(["hash-object", "-w", "--stdin", f"--path={path}"], repo, input=text.encode())
    sha = blob.stdout.decode().strip()
    full = repo / path
    mode = "100755" if full.exists() and os.access(full, os.X_OK) else "100644"
    git(["update-index", "--add", "--cacheinfo", f"{mode},{sha},{path}"], repo, env)


def add_worktree(repo: Path, path: Path, branch: str, commit: str) -> None:
    """Check `commit` out at `path` on a fresh `branch` (replacing a stale one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        remove_worktree(repo, path, branch)
    with repo_lock(repo, "worktrees"):
        git(["worktree", "add", "-q", "-B", branch, str(path), commit], repo)


def remove_worktree(repo: Path, path: Path, branch: str | None) -> None:
    """Remove the worktree and its branch; tolerant of either being gone already."""
    with repo_lock(repo, "worktrees"):
        _remove_worktree(repo, path, branch)


def _remove_worktree(repo: Path, path: Path, branch: str | None) -> None:
    if path.exists():
        proc = git(["worktree", "remove", "--force", "--force", str(path)], repo, check=False)
        if proc.returncode != 0:
            shutil.rmtree(path, ignore_errors=True)
    git(["worktree", "prune"], repo, check=False)
    if branch:
        git(["branch", "-D", "-q", branch], repo, check=False)


def provision(info: RepoInfo, root: Path, job_id: str, base: str) -> Workspace:
    """Create the job's worktree at its base commit."""
    path = workspace_path(root, info.root, job_id)
    branch = BRANCH_PREFIX + job_id
    add_worktree(info.root, path, branch, base)
    return Workspace(path=str(path), branch=branch, base_commit=base)


class Harvest(msgspec.Struct, frozen=True):
    """What an agent changed: a commit on the job's branch, its stats and patch."""

    result_commit: str
    stats: DiffStats
    patch: bytes


def harvest(workspace: Workspace, job_id: str) -> Harvest:
    """Commit everything in the worktree (new, deleted, binary, modes) on the job branch."""
    path = Path(workspace.path)
    if not path.is_dir():
        raise GitError(f"the job's workspace is gone: {path}")
    base = workspace.base_commit
    base_tree = GitQuery(["rev-parse", f"{base}^{{tree}}"], path)  # runs during `add`
    try:
        # The worktree's own index has fresh stat data, so only changed files are rehashed.
        git(["add", "-A", "--", "."], path)
        tree = git_out(["write-tree"], path)
        unchanged = tree == base_tree.text()
    finally:
        base_tree.close()
    if unchanged:
        git(["update-ref", f"refs/heads/{workspace.branch}", base], path)
        return Harvest(result_commit=base, stats=DiffStats(), patch=b"")
    result = git_out(
        ["commit-tree", tree, "-p", base, "-m", f"logist: job {job_id}"], path, LOGIST_IDENTITY
    )
    patch_query = GitQuery(
        ["diff", "--binary", "-M", "--no-color", "--no-ext-diff", base, result], path
    )
    try:
        git(["update-ref", f"refs/heads/{workspace.branch}", result], path)
        stats = diff_stats(path, base, result)
        patch = patch_query.output()
    finally:
        patch_query.close()
    return Harvest(result_commit=result, stats=stats, patch=patch)


def diff_stats(repo: Path, base: str, result: str) -> DiffStats:
    """Files, insertions and deletions between two commits (binary files count as files)."""
    if base == result:
        return DiffStats()
    out = git(["diff", "--numstat", "-z", "-M", base, result], repo).stdout.decode(
        errors="surrogateescape"
    )
    files = insertions = deletions = 0
    paths: list[str] = []
    fields = out.split("\0")
    i = 0
    while i < len(fields) - 1:
        head = fields[i]
        if not head:
            i += 1
            continue
        added, removed, name = head.split("\t", 2)
        if name == "":  # rename: old and new paths follow
            name = fields[i + 2]
            i += 3
        else:
            i += 1
        files += 1
        paths.append(name)
        insertions += int(added) if added != "-" else 0
        deletions += int(removed) if removed != "-" else 0
    return DiffStats(files=files, insertions=insertions, deletions=deletions, paths=paths)


def list_logist_branches(repo: Path) -> list[str]:
    out = git_out(
        ["for-each-ref", "--format=%(refname:short)", f"refs/heads/{BRANCH_PREFIX}"], repo
    )
    return [line for line in out.splitlines() if line]


def list_worktrees(repo: Path) -> list[tuple[Path, str | None]]:
    """(path, branch) of every worktree of `repo` except the main one."""
    out = git_out(["worktree", "list", "--porcelain"], repo)
    result: list[tuple[Path, str | None]] = []
    path: Path | None = None
    branch: str | None = None
    for line in [*out.splitlines(), ""]:
        if line.startswith("worktree "):
            path = Path(line[len("worktree ") :])
        elif line.startswith("branch refs/heads/"):
            branch = line[len("branch refs/heads/") :]
        elif not line and path is not None:
            result.append((path, branch))
            path, branch = None, None
    with contextlib.suppress(IndexError):
        result.pop(0)  # the main worktree
    return result


def reset_workspace(workspace: Workspace, commit: str) -> None:
    """Put the worktree back to `commit`: tracked files restored, new untracked files gone."""
    path = Path(workspace.path)
    git(["reset", "-q", "--hard", commit], path)
    git(["clean", "-q", "-fd"], path)
    git(["update-ref", f"refs/heads/{workspace.branch}", commit], path)


def latest_change(path: Path) -> float:
    """The newest modification time (epoch seconds) of any file or directory under `path`.

    Directories count, so deletions and renames show too; `.git` is skipped."""
    latest = 0.0
    stack = [str(path)]
    while stack:
        directory = stack.pop()
        try:
            entries = os.scandir(directory)
        except OSError:
            continue
        with entries:
            for entry in entries:
                try:
                    stat = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                latest = max(latest, stat.st_mtime)
                if entry.is_dir(follow_symlinks=False) and entry.name != ".git":
                    stack.append(entry.path)
    with contextlib.suppress(OSError):
        latest = max(latest, path.stat().st_mtime)
    return latest


BASE_REF_PREFIX = "refs/logist/bases/"


def keep_base(repo: Path, job_id: str, commit: str) -> None:
    """Keep the job's base reachable (a snapshot of a dirty tree is in no branch) for reruns."""
    git(["update-ref", BASE_REF_PREFIX + job_id, commit], repo)


def start_keeping_base(repo: Path, job_id: str, commit: str) -> GitQuery:
    """`keep_base`, started now (it overlaps the checkout); `output()` waits for it."""
    return GitQuery(["update-ref", BASE_REF_PREFIX + job_id, commit], repo)


def drop_base(repo: Path, job_id: str) -> None:
    git(["update-ref", "-d", BASE_REF_PREFIX + job_id], repo, check=False)


def kept_bases(repo: Path) -> list[str]:
    """Job ids whose base is kept."""
    out = git(["for-each-ref", "--format=%(refname)", BASE_REF_PREFIX], repo).stdout.decode()
    return [line[len(BASE_REF_PREFIX) :] for line in out.splitlines() if line]


def commit_exists(repo: Path, commit: str) -> bool:
    return git(["cat-file", "-e", f"{commit}^{{commit}}"], repo, check=False).returncode == 0
