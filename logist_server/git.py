"""Thin, fast wrappers over the git CLI."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from .errors import GitError, NotInRepositoryError

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
LOGIST_IDENTITY = {
    "GIT_AUTHOR_NAME": "logist",
    "GIT_AUTHOR_EMAIL": "logist@localhost",
    "GIT_COMMITTER_NAME": "logist",
    "GIT_COMMITTER_EMAIL": "logist@localhost",
}


def git(
    args: Sequence[str],
    cwd: Path,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run `git args` in `cwd`; raise GitError with git's own message on failure."""
    full_env = None
    if env:
        full_env = dict(os.environ)
        full_env.update(env)
    proc = subprocess.run(
        ["git", *args], cwd=cwd, env=full_env, input=input, capture_output=True, check=False
    )
    if check and proc.returncode != 0:
        raise _failure(args, proc.returncode, proc.stderr)
    return proc


def _failure(args: Sequence[str], code: int, stderr: bytes) -> GitError:
    """GitError with git's own last line of complaint."""
    message = stderr.decode(errors="replace").strip().splitlines()
    detail = message[-1] if message else f"exit status {code}"
    return GitError(f"git {args[0]} failed: {detail}")


def git_out(args: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None) -> str:
    return git(args, cwd, env).stdout.decode().strip()


class RepoInfo:
    """Where a repository lives: its top level and its git directories."""

    def __init__(self, root: Path, git_dir: Path, common_dir: Path) -> None:
        self.root = root
        self.git_dir = git_dir
        self.common_dir = common_dir


def find_repo(start: Path) -> RepoInfo:
    """The repository containing `start`, or NotInRepositoryError."""
    start = start if start.is_dir() else start.parent
    proc = subprocess.run(
        ["git", "rev-parse", "--show-toplevel", "--absolute-git-dir", "--git-common-dir"],
        cwd=start,
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        raise NotInRepositoryError(f"not inside a git repository: {start}")
    top, git_dir, common = proc.stdout.decode().splitlines()[:3]
    root = Path(top)
    common_path = Path(common)
    if not common_path.is_absolute():
        common_path = (start / common_path).resolve()
    return RepoInfo(root, Path(git_dir), common_path)


class GitQuery:
    """A git command started now and read later, so that other git work overlaps it."""

    def __init__(self, args: Sequence[str], cwd: Path) -> None:
        self.args = args
        self._proc = subprocess.Popen(
            ["git", *args],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self._out: tuple[bytes, bytes] | None = None

    def finish(self) -> tuple[int, bytes]:
        """(exit status, stdout), waiting for the command if it still runs."""
        if self._out is None:
            self._out = self._proc.communicate()
        return self._proc.returncode, self._out[0]

    def output(self) -> bytes:
        """Its stdout; GitError with git's message if it failed (as `git`)."""
        code, out = self.finish()
        if code != 0:
            assert self._out is not None
            raise _failure(self.args, code, self._out[1])
        return out

    def text(self) -> str:
        return self.output().decode().strip()

    def close(self) -> None:
        """Reap the command when its result is not wanted (after an error elsewhere)."""
        self.finish()


class HeadQuery(GitQuery):
    """HEAD's commit and tree in one git call, started now and read later."""

    def __init__(self, repo: Path) -> None:
        super().__init__(["rev-parse", "HEAD", "HEAD^{tree}"], repo)

    def result(self) -> tuple[str | None, str]:
        """(HEAD's commit, its tree), or (None, the empty tree) before the first commit."""
        code, out = self.finish()
        if code != 0:
            return None, EMPTY_TREE
        commit, tree = out.decode().split()
        return commit, tree
