"""Git's own content conversions, so accept compares, merges and writes as git would.

A job's blobs are in git's normalised form (LF line endings...); the user's checkout may
hold another form (`* text eol=crlf`, `core.autocrlf=true`, `ident`, a
`working-tree-encoding`). Accept compares and merges in the normalised form (`clean`) and
writes in the checkout's form (`smudge`), both done by git itself (`git hash-object
--path`, `git cat-file --filters --path`) in a private object directory, so nothing is
added to the user's repository.

Attributes come from the user's checkout (its `.gitattributes`, `.git/info/attributes`),
never from the job's result; filter drivers are the ones the user configured.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from logist_server.support.closing import Closing
from logist_server.vcs.git import git

ATTRIBUTES = ("text", "eol", "crlf", "ident", "filter", "working-tree-encoding")
#: Every git call that reads job content: replace objects never apply.
READ_ENV = {"GIT_NO_REPLACE_OBJECTS": "1"}


def converted_paths(repo: Path, paths: Iterable[str]) -> set[str]:
    """The paths git may convert between the normalised and the checkout form."""
    wanted = sorted(set(paths))
    if not wanted:
        return set()
    autocrlf = git(["config", "--get", "core.autocrlf"], repo, env=READ_ENV, check=False)
    if autocrlf.stdout.strip().lower() in (b"true", b"input", b"yes", b"on", b"1"):
        return set(wanted)
    out = git(
        ["check-attr", "-z", "--stdin", *ATTRIBUTES],
        repo,
        env=READ_ENV,
        input=b"".join(p.encode(errors="surrogateescape") + b"\0" for p in wanted),
    ).stdout
    fields = out.split(b"\0")
    converted = set()
    for i in range(0, len(fields) - 2, 3):
        if fields[i + 2] != b"unspecified":
            converted.add(fields[i].decode(errors="surrogateescape"))
    return converted


class CheckoutForm(Closing):
    """Clean and smudge contents through git, for the paths git may convert."""

    def __init__(self, repo: Path, paths: Iterable[str]) -> None:
        self.repo = repo
        self.paths = converted_paths(repo, paths)
        self._objects: Path | None = None
        self._alternate = ""

    def close(self) -> None:
        """Remove the private object directory."""
        if self._objects is not None:
            shutil.rmtree(self._objects, ignore_errors=True)
            self._objects = None

    def clean(self, path: str, content: bytes) -> bytes:
        """`content` of the checkout's `path` in git's normalised form."""
        if path not in self.paths:
            return content
        blob = self._store(["--path=" + path], content)
        return git(["cat-file", "blob", blob], self.repo, env=self._env()).stdout

    def smudge(self, path: str, content: bytes, blob: str | None = None) -> bytes:
        """Normalised `content` (the blob `blob`, when known) as the checkout holds it."""
        if path not in self.paths:
            return content
        if blob is None:
            blob = self._store(["--no-filters"], content)
        return git(
            ["cat-file", "--filters", "--path=" + path, blob], self.repo, env=self._env()
        ).stdout

    def _store(self, how: list[str], content: bytes) -> str:
        out = git(["hash-object", "-w", *how, "--stdin"], self.repo, env=self._env(), input=content)
        return out.stdout.decode().strip()

    def _env(self) -> dict[str, str]:
        """Objects go to a private directory; the repository's own are read through it."""
        if self._objects is None:
            self._objects = Path(tempfile.mkdtemp(prefix="logist-objects-"))
            common = git(["rev-parse", "--git-common-dir"], self.repo).stdout.decode().strip()
            self._alternate = str((self.repo / common / "objects").resolve())
        return {
            **READ_ENV,
            "GIT_OBJECT_DIRECTORY": str(self._objects),
            "GIT_ALTERNATE_OBJECT_DIRECTORIES": self._alternate,
        }
