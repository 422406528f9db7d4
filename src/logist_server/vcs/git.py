"""Thin, fast wrappers over the git CLI, hardened: no git call Logist makes runs a program
that configuration names, and none reads replace objects.

Every call gets `--no-replace-objects` (a `refs/replace` entry cannot change what a commit
holds) and `-c` settings that switch off what configuration could make git execute: hooks,
fsmonitor, external diff, signing, auto gc, ssh, the pager, submodule recursion. Variables that
would point git at another repository (`GIT_DIR`, `GIT_WORK_TREE`, `GIT_INDEX_FILE`...) are
taken from the caller only, never inherited. Filters (`clean`/`smudge`) and textconv named by
the user's own configuration are the one exception git offers no switch for: diffs are made
with `--no-textconv --no-ext-diff`, and filters run as in the user's own checkout.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from logist_server.domain.errors import GitError, NotInRepositoryError

EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
LOGIST_IDENTITY = {
    "GIT_AUTHOR_NAME": "logist",
    "GIT_AUTHOR_EMAIL": "logist@localhost",
    "GIT_COMMITTER_NAME": "logist",
    "GIT_COMMITTER_EMAIL": "logist@localhost",
}


#: Settings that keep git from running programs named by configuration (the user's, or a
#: repository's). Passed with `-c`, they win over every configuration file.
SAFE_CONFIG: tuple[tuple[str, str], ...] = (
    ("core.hooksPath", "/dev/null"),
    ("core.fsmonitor", "false"),
    ("core.sshCommand", "false"),
    ("core.pager", "cat"),
    ("core.editor", "false"),
    ("core.askPass", "false"),
    ("core.splitIndex", "false"),
    ("diff.external", ""),
    ("commit.gpgSign", "false"),
    ("tag.gpgSign", "false"),
    ("log.showSignature", "false"),
    ("credential.helper", ""),
    ("gc.auto", "0"),
    ("maintenance.auto", "false"),
    ("submodule.recurse", "false"),
)
#: Global options before every git command.
SAFE_OPTIONS: tuple[str, ...] = (
    "--no-replace-objects",
    *(option for key, value in SAFE_CONFIG for option in ("-c", f"{key}={value}")),
)
#: Variables that would make git use another repository, index or object store than the
#: one Logist names; never inherited from Logist's own environment.
_LOCATING = (
    "GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY", "GIT_COMMON_DIR",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE", "GIT_REPLACE_REF_BASE",
    "GIT_EXTERNAL_DIFF", "GIT_SSH", "GIT_SSH_COMMAND", "GIT_ASKPASS", "GIT_PAGER", "GIT_EDITOR",
    "GIT_CONFIG", "GIT_CONFIG_PARAMETERS", "GIT_CONFIG_COUNT",
)  # fmt: skip


def git_argv(args: Sequence[str]) -> list[str]:
    """The full, hardened command line for `git args` (for callers that run git themselves)."""
    return ["git", *SAFE_OPTIONS, *args]


def git_env(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a git call: Logist's own, without repository-locating variables,
    replace objects off, plus `env`."""
    full = {k: v for k, v in os.environ.items() if k not in _LOCATING}
    full["GIT_NO_REPLACE_OBJECTS"] = "1"
    if env:
        full.update(env)
    return full


def git(
    args: Sequence[str],
    cwd: Path,
    env: Mapping[str, str] | None = None,
    input: bytes | None = None,
    check: bool = True,
) -> subprocess.CompletedProcess[bytes]:
    """Run `git args` (hardened) in `cwd`; raise GitError with git's message on failure."""
    proc = subprocess.run(
        git_argv(args), cwd=cwd, env=git_env(env), input=input, capture_output=True, check=False
    )
    if check and proc.returncode != 0:
        raise _failure(args, proc.returncode, proc.stderr)
    return proc


def _failure(args: Sequence[str], code: int, stderr: bytes) -> GitError:
    """GitError with git's own last line of complaint."""
    message = stderr.decode(errors="replace").strip().splitlines()
    detail = message[-1] if message else f"exit status {code}"
    cause = next((line for line in message[:-1] if line.startswith("error: ")), None)
    if cause is not None:  # `fatal: adding files failed` says less than the error before it
        detail = f"{cause}; {detail}"
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
        git_argv(["rev-parse", "--show-toplevel", "--absolute-git-dir", "--git-common-dir"]),
        cwd=start,
        env=git_env(),
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

    def __init__(
        self, args: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None
    ) -> None:
        self.args = args
        self._proc = subprocess.Popen(
            git_argv(args),
            cwd=cwd,
            env=git_env(env),
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

    def __init__(self, repo: Path, env: Mapping[str, str] | None = None) -> None:
        super().__init__(["rev-parse", "HEAD", "HEAD^{tree}"], repo, env)

    def result(self) -> tuple[str | None, str]:
        """(HEAD's commit, its tree), or (None, the empty tree) before the first commit."""
        code, out = self.finish()
        if code != 0:
            return None, EMPTY_TREE
        commit, tree = out.decode().split()
        return commit, tree
