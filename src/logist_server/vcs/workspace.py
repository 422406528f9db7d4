"""Workspace isolation: a checkout per job, based on exactly what the user has, with git
metadata of its own.

The base is a commit of HEAD plus uncommitted and untracked-but-not-ignored changes, made
through a private index file: the user's working tree and index are never touched. The
workspace is checked out, harvested and reset by git on the user's repository with the
workspace as work tree and a private index; the agent's own `.git` in it is never used by
Logist (see `provision`).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path

import msgspec

from logist_server.domain.errors import GitError
from logist_server.domain.model import DiffStats, Workspace
from logist_server.domain.repo_paths import unsafe_reason
from logist_server.support.locks import repo_lock
from logist_server.vcs.git import LOGIST_IDENTITY, GitQuery, HeadQuery, RepoInfo, git, git_out

BRANCH_PREFIX = "logist/"
#: Pathspecs that keep every `.logist` (Logist's store, at any depth, in any letter case) out
#: of what `git add` stages for a snapshot or a harvest, whatever `.gitignore` says: a
#: repository's `!/.logist` cannot pull the store (every prompt) into a commit.
#: Every pattern holds a wildcard: git refuses a literal pathspec that names an ignored path
#: (`.logist` usually is), exclude or not. `*` spans `/` here (no `glob` magic, which is
#: also the cheaper match).
NO_STORE = (
    ":(exclude,top,icase)[.]logist",
    ":(exclude,top,icase)[.]logist/*",
    ":(exclude,icase)*/.logist",
    ":(exclude,icase)*/.logist/*",
)
#: `git add` of every file of a work tree but `.logist`.
ADD_ALL = ("add", "-A", "--", ".", *NO_STORE)
#: Pathspecs read as written above, whatever the user's environment says.
PATHSPEC_ENV = {
    "GIT_LITERAL_PATHSPECS": "0",
    "GIT_GLOB_PATHSPECS": "0",
    "GIT_NOGLOB_PATHSPECS": "0",
    "GIT_ICASE_PATHSPECS": "0",
}


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
            env = {"GIT_INDEX_FILE": str(index), **PATHSPEC_ENV}
            git(ADD_ALL, repo, env)
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


def index_path(path: Path) -> Path:
    """Logist's private index of the workspace at `path`: beside it, never inside it."""
    return path.parent / f"{path.name}.index"


def _workspace_env(git_dir: str, path: Path, index: Path) -> dict[str, str]:
    """git on the user's repository with the workspace as its work tree and the private
    index: the agent's own `.git` inside the workspace is never read. Sparse checkout of
    the user's worktree does not apply to a job's workspace."""
    return {
        "GIT_DIR": git_dir,
        "GIT_WORK_TREE": str(path),
        "GIT_INDEX_FILE": str(index),
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": "core.sparseCheckout",
        "GIT_CONFIG_VALUE_0": "false",
        **PATHSPEC_ENV,
    }


def workspace_env(workspace: Workspace) -> dict[str, str]:
    """The environment for any git command on the workspace's files: the user's repository
    with the workspace as work tree and the private index (never the agent's `.git`).

    Checked on each call (an `lstat`): WorkspaceReplacedError unless the path is still the
    directory Logist made, so git never works through a symlink the agent put there."""
    if workspace.git_dir is None or workspace.index is None:
        raise GitError(
            f"the workspace {workspace.path} was made by an earlier version of logist "
            "(a git worktree): rerun the job to get an isolated workspace"
        )
    path = checked_path(workspace)
    return _workspace_env(workspace.git_dir, path, Path(workspace.index))


REPLACED_BY_DIRECTORY = "it was replaced by another directory"


class WorkspaceReplacedError(GitError):
    """The job's workspace path no longer holds the directory Logist made."""


def recorded_identity(workspace: Workspace) -> tuple[int, int] | None:
    """(device, inode) of the directory Logist made; None for records made before they were
    kept."""
    if workspace.device is None or workspace.inode is None:
        return None
    return workspace.device, workspace.inode


def replaced_reason(path: Path, made: tuple[int, int] | None) -> str | None:
    """Why `path` is not the directory Logist made (`made`: its device and inode, when
    known), or None when it is. Never follows a symlink at `path`."""
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        return "it is gone"
    except OSError as exc:
        return f"it cannot be read ({exc.strerror})"
    if stat.S_ISLNK(found.st_mode):
        return "it was replaced by a symlink"
    if not stat.S_ISDIR(found.st_mode):
        return "it was replaced by a file"
    if made is not None and (found.st_dev, found.st_ino) != made:
        return REPLACED_BY_DIRECTORY
    return None


def checked_path(workspace: Workspace) -> Path:
    """The workspace's path, once `lstat` shows it is the directory Logist made; else
    WorkspaceReplacedError (the job fails with it: nothing is read or written there)."""
    path = Path(workspace.path)
    reason = replaced_reason(path, recorded_identity(workspace))
    if reason is not None:
        raise WorkspaceReplacedError(
            f"the job's workspace {path}: {reason}; logist does not use it (nothing was "
            "read from it or written to it)"
        )
    return path


def provision(info: RepoInfo, root: Path, job_id: str, base: str) -> Workspace:
    """Check `base` out into the job's workspace, with git metadata of its own.

    The files are written by git on the user's repository (`GIT_DIR`) into the workspace
    (`GIT_WORK_TREE`) through a private index kept outside it. The agent then gets its own
    `.git`: a fresh repository borrowing the user's objects (`objects/info/alternates`), on
    branch `logist/<id>` at the base, with a copy of the index (so `git status` is clean).
    Its config, hooks and refs are its own: nothing it does there reaches the user's `.git`.
    The user's repository gets the branch `logist/<id>` too, moved to each harvested result.
    """
    path = workspace_path(root, info.root, job_id)
    branch = BRANCH_PREFIX + job_id
    index = index_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if os.path.lexists(path):  # a stale one from an interrupted start (never followed)
        remove_workspace_dir(info.root, path, force=True)
    index.unlink(missing_ok=True)
    path.mkdir()
    made = os.lstat(path)
    env = _workspace_env(str(info.common_dir), path, index)
    ref = GitQuery(["update-ref", f"refs/heads/{branch}", base], info.root)
    init = _start_agent_git(path, base)  # both overlap the checkout
    try:
        git(["read-tree", "-u", "--reset", base], path, env)
        ref.output()
        init.output()
    finally:
        ref.close()
        init.close()
    _finish_agent_git(path, branch, base, info.common_dir, index)
    return Workspace(
        path=str(path),
        branch=branch,
        base_commit=base,
        git_dir=str(info.common_dir),
        index=str(index),
        device=made.st_dev,
        inode=made.st_ino,
    )


def _start_agent_git(path: Path, commit: str) -> GitQuery:
    """`git init` of the agent's own repository in the workspace (no templates, no hooks)."""
    args = ["init", "-q", "--template="]
    if len(commit) == 64:
        args.append("--object-format=sha256")
    return GitQuery(args, path, {"GIT_DIR": str(path / ".git")})


def _finish_agent_git(path: Path, branch: str, commit: str, common_dir: Path, index: Path) -> None:
    """Point the agent's fresh repository at the user's objects, its branch at `commit`, and
    give it the checkout's index and the user's excludes."""
    dot = path / ".git"
    info = dot / "objects" / "info"
    info.mkdir(parents=True, exist_ok=True)
    (info / "alternates").write_text(f"{common_dir / 'objects'}\n")
    ref = dot / "refs" / "heads" / branch
    ref.parent.mkdir(parents=True, exist_ok=True)
    ref.write_text(commit + "\n")
    (dot / "HEAD").write_text(f"ref: refs/heads/{branch}\n")
    shutil.copyfile(index, dot / "index")
    with contextlib.suppress(OSError):
        exclude = (common_dir / "info" / "exclude").read_bytes()
        (dot / "info").mkdir(exist_ok=True)
        (dot / "info" / "exclude").write_bytes(exclude)


def _renew_agent_git(workspace: Workspace, commit: str) -> None:
    """Replace whatever the agent made of its `.git` by a fresh repository at `commit`."""
    path = checked_path(workspace)
    _remove_path(path / ".git")
    assert workspace.git_dir is not None and workspace.index is not None
    _start_agent_git(path, commit).output()
    _finish_agent_git(path, workspace.branch, commit, Path(workspace.git_dir),
                      Path(workspace.index))  # fmt: skip


def _remove_path(path: Path) -> None:
    """Remove a file, symlink or directory tree at `path`, never following a symlink."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
    elif path.exists():
        _rmtree(path)


def _rmtree(path: Path) -> None:
    """`shutil.rmtree` that also removes what an agent made read-only (it never follows
    symlinks)."""

    def make_writable(_func: object, name: str, _exc: object) -> None:
        parent = os.path.dirname(name)
        with contextlib.suppress(OSError):
            os.chmod(parent, 0o700)
            if os.path.isdir(name) and not os.path.islink(name):
                os.chmod(name, 0o700)
                shutil.rmtree(name, ignore_errors=True)
            else:
                os.unlink(name)

    shutil.rmtree(path, onerror=make_writable)


def is_legacy_worktree(repo: Path, path: Path) -> bool:
    """True for a workspace made by an earlier version: a linked `git worktree` of `repo`
    (its `.git` is a file, and the repository lists the path among its worktrees; a `.git`
    file alone is what an agent could fake). A symlink at `path` is never one."""
    if path.is_symlink() or not (path / ".git").is_file() or (path / ".git").is_symlink():
        return False
    listed = git_out(["worktree", "list", "--porcelain"], repo).splitlines()
    where = path.resolve()
    return any(
        line.startswith("worktree ") and Path(line[len("worktree ") :]).resolve() == where
        for line in listed
    )


def remove_workspace_dir(
    repo: Path, path: Path, made: tuple[int, int] | None = None, force: bool = False
) -> str | None:
    """Remove a job's workspace at `path` and Logist's private index beside it; tolerant of
    either being gone. Returns why the workspace was kept, or None.

    Never follows a symlink: a symlink (or file) at `path` is removed itself, not what it
    points at. A directory other than the one Logist made (`made`: its device and inode) is
    kept unless `force`. A legacy `git worktree` is removed through git, so that its record
    in the user's `.git/worktrees` goes too. The job's branch is not touched here (see
    `gc.release_branch`)."""
    with repo_lock(repo, "worktrees"):
        try:
            found: os.stat_result | None = os.lstat(path)
        except FileNotFoundError:
            found = None
        if found is None:
            pass
        elif not stat.S_ISDIR(found.st_mode):
            path.unlink(missing_ok=True)  # the symlink (or file) itself
        elif made is not None and (found.st_dev, found.st_ino) != made and not force:
            return (
                f"{path}: it is not the directory logist made for the job (it was replaced; "
                "look at it, then remove it yourself or run `logist gc --force`)"
            )
        elif is_legacy_worktree(repo, path):
            proc = git(["worktree", "remove", "--force", "--force", str(path)], repo, check=False)
            if proc.returncode != 0:
                _remove_path(path)
            git(["worktree", "prune"], repo, check=False)
        else:
            _remove_path(path)
        index_path(path).unlink(missing_ok=True)
    return None


def remove_worktree(repo: Path, path: Path, branch: str | None = None) -> None:
    """`remove_workspace_dir` (the older name): removes the workspace, never its branch."""
    del branch  # the branch is released by `gc.release_branch` only
    remove_workspace_dir(repo, path)


class Harvest(msgspec.Struct, frozen=True):
    """What an agent changed: a commit on the job's branch, its tree, stats and patch."""

    result_commit: str
    stats: DiffStats
    patch: bytes
    result_tree: str | None = None


class UnsafeResultError(GitError):
    """The workspace holds a change a job may not make (a reserved path, a nested repo)."""


def harvest(workspace: Workspace, job_id: str) -> Harvest:
    """Commit everything in the workspace (new, deleted, binary, modes) on the job branch.

    Only the files count: git reads the workspace as the user's repository's work tree,
    through Logist's private index (whose stat data makes only changed files rehash). The
    agent's own `.git` (its index, config, hooks, refs) plays no part; `.git` entries are
    never added. A change to a path that `repo_paths.unsafe_reason` refuses, or a nested
    repository, fails with UnsafeResultError naming the path.
    """
    env = workspace_env(workspace)  # refuses a path that is not Logist's directory
    path = Path(workspace.path)
    base = workspace.base_commit
    base_tree = GitQuery(["rev-parse", f"{base}^{{tree}}"], path, env)  # runs during `add`
    try:
        try:
            git(ADD_ALL, path, env)
        except GitError as exc:  # a path git itself refuses (`sub/.GIT/x`), a full disk...
            message = f"cannot harvest the workspace: {exc}: nothing was harvested"
            raise UnsafeResultError(message) from None
        tree = git_out(["write-tree"], path, env)
        unchanged = tree == base_tree.text()
    finally:
        base_tree.close()
    if unchanged:
        git(["update-ref", f"refs/heads/{workspace.branch}", base], path, env)
        return Harvest(result_commit=base, stats=DiffStats(), patch=b"", result_tree=tree)
    changes = GitQuery(["diff-tree", "-r", "-z", "--no-renames", base, tree], path, env)
    try:
        result = git_out(
            ["commit-tree", tree, "-p", base, "-m", f"logist: job {job_id}"],
            path,
            {**env, **LOGIST_IDENTITY},
        )
        check_changes(changes.output())
    finally:
        changes.close()
    patch_query = GitQuery(
        ["diff", "--binary", "-M", "--no-color", "--no-ext-diff", "--no-textconv", base, result],
        path,
        env,
    )
    try:
        git(["update-ref", f"refs/heads/{workspace.branch}", result], path, env)
        stats = diff_stats(path, base, result, env)
        patch = patch_query.output()
    finally:
        patch_query.close()
    return Harvest(result_commit=result, stats=stats, patch=patch, result_tree=tree)


GITLINK = "160000"


def check_changes(raw: bytes) -> None:
    """UnsafeResultError for the first change (`diff-tree -r -z` raw output) a job may not
    make: a path `unsafe_reason` refuses, or a nested repository (a new or changed gitlink)."""
    fields = raw.split(b"\0")
    for i in range(0, len(fields) - 1, 2):
        meta = fields[i].decode(errors="replace").lstrip(":").split(" ")
        name = fields[i + 1].decode(errors="surrogateescape")
        shown = name.encode(errors="surrogateescape").decode(errors="replace")
        reason = unsafe_reason(name)
        if reason is not None:
            raise UnsafeResultError(
                f"the agent's change touches {shown!r}, which a job may not write "
                f"({reason}): nothing was harvested"
            )
        if len(meta) >= 2 and meta[1] == GITLINK:
            raise UnsafeResultError(
                f"the agent made a git repository inside the workspace at {shown!r}: logist "
                "does not harvest nested repositories (remove its .git to keep its files)"
            )


def diff_stats(
    repo: Path, base: str, result: str, env: Mapping[str, str] | None = None
) -> DiffStats:
    """Files, insertions and deletions between two commits (binary files count as files)."""
    if base == result:
        return DiffStats()
    args = ["diff", "--numstat", "-z", "-M", "--no-ext-diff", "--no-textconv", base, result]
    out = git(args, repo, env).stdout.decode(errors="surrogateescape")
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


def branch_tip(repo: Path, branch: str) -> str | None:
    """The commit `branch` points at, or None when there is no such branch."""
    ref = f"refs/heads/{branch}^{{commit}}"
    proc = git(["rev-parse", "-q", "--verify", ref], repo, check=False)
    if proc.returncode != 0:
        return None
    return proc.stdout.decode().strip() or None


def delete_branch_at(repo: Path, branch: str, commit: str) -> bool:
    """Delete `branch` only if it still points at `commit` (atomically); True if deleted."""
    proc = git(["update-ref", "-d", f"refs/heads/{branch}", commit], repo, check=False)
    return proc.returncode == 0


def checked_out_branches(repo: Path) -> dict[str, Path]:
    """Branch -> the worktree that has it checked out, over every worktree of the
    repository, the main one included."""
    out = git_out(["worktree", "list", "--porcelain"], repo)
    found: dict[str, Path] = {}
    path = Path()
    for line in out.splitlines():
        if line.startswith("worktree "):
            path = Path(line[len("worktree ") :])
        elif line.startswith("branch refs/heads/"):
            found[line[len("branch refs/heads/") :]] = path
    return found


def unharvested_changes(
    info: RepoInfo, path: Path, commit: str, made: tuple[int, int] | None = None
) -> bool:
    """True when the files at `path` differ from `commit` (what Logist last recorded).

    Read like a harvest (the user's repository, the workspace as work tree) through a
    throw-away copy of the private index, so nothing of the job's changes; a legacy
    worktree or a lost index is read from scratch. A path that is not a directory counts
    as changed (it is not what Logist made), and so does another directory than `made`
    (nothing is read from it)."""
    if replaced_reason(path, made) is not None:
        return True
    with tempfile.TemporaryDirectory(prefix="logist-gc-") as tmp:
        index = Path(tmp) / "index"
        private = index_path(path)
        env = _workspace_env(str(info.common_dir), path, index)
        if private.is_file() and not private.is_symlink():
            shutil.copyfile(private, index)
        else:
            git(["read-tree", commit], path, env)
        proc = git(ADD_ALL, path, env, check=False)
        if proc.returncode != 0:
            return True
        tree = git_out(["write-tree"], path, env)
    return tree != git_out(["rev-parse", f"{commit}^{{tree}}"], info.root)


def reset_workspace(workspace: Workspace, commit: str) -> None:
    """Put the workspace back to `commit`: tracked files restored, new files gone (ignored
    ones stay), and a fresh `.git` for the agent at `commit`. git works on the user's
    repository with the private index, never through the agent's `.git`. Each git call on
    the files first checks that the path is still Logist's directory (`workspace_env`)."""
    path = Path(workspace.path)
    git(["add", "-A", "--", "."], path, workspace_env(workspace))  # the index knows every file
    git(["read-tree", "-u", "--reset", commit], path, workspace_env(workspace))
    _renew_agent_git(workspace, commit)
    git(["update-ref", f"refs/heads/{workspace.branch}", commit], path, workspace_env(workspace))


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
