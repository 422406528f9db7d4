"""The ACP client's file system: `fs/read_text_file` and `fs/write_text_file` inside the job's
workspace only.

An ACP agent asks the client to read and write files for it (gemini writes every edit this
way). The client runs with the user's rights, so it must not become the agent's way out of
its workspace: a path is refused when it names `..`, lies outside the workspace once every
symlink is resolved, or reaches into `.git` (the repository's internals: hooks, config).
Reads and writes are bounded in size; a write goes through a temporary file and a rename.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path, PurePosixPath

#: The largest file the agent may read or write through the client.
MAX_FILE_BYTES = 8 * 1024 * 1024


class Refused(Exception):
    """A file request the client will not serve; the message says why (one line)."""


def confine(workspace: Path, path: str) -> Path:
    """The real path `path` names inside `workspace` (itself resolved), or Refused.

    Relative paths are taken from the workspace. Refused: `..` anywhere, a path that is
    outside once symlinks are resolved (the final one included), `.git` or anything in it."""
    if not path or "\x00" in path:
        raise Refused("an empty path or one with a NUL character")
    root = workspace.resolve()
    given = PurePosixPath(path)
    if ".." in given.parts:
        raise Refused(f"'{path}' contains '..'")
    candidate = Path(given) if given.is_absolute() else root / given
    real = Path(os.path.realpath(candidate))
    try:
        relative = real.relative_to(root)
    except ValueError:
        raise Refused(f"'{path}' is outside the job's workspace") from None
    if relative.parts and relative.parts[0] == ".git":
        raise Refused(f"'{path}' is inside the repository's .git")
    # The path as written must stay out of `.git` too (a symlink could lead into it).
    for base in (workspace, root):
        with contextlib.suppress(ValueError):
            if ".git" in candidate.relative_to(base).parts:
                raise Refused(f"'{path}' is inside the repository's .git")
    return real


def workspace_relative(workspace: Path, path: str) -> str | None:
    """`path` relative to the workspace when it is inside it (no `..`, no `.git`), else None."""
    try:
        real = confine(workspace, path)
    except Refused:
        return None
    return real.relative_to(workspace.resolve()).as_posix()


def read_text(workspace: Path, path: str, line: int | None, limit: int | None) -> str:
    """The text of a regular file inside the workspace (lines `line`.. up to `limit`)."""
    real = confine(workspace, path)
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        raise Refused(f"'{path}' does not exist") from None
    except OSError as err:
        raise Refused(f"'{path}' cannot be read ({err.strerror})") from None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise Refused(f"'{path}' is not a regular file")
        data = handle.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise Refused(f"'{path}' is larger than {MAX_FILE_BYTES} bytes")
    text = data.decode("utf-8", "replace")
    if line is None and limit is None:
        return text
    lines = text.splitlines(keepends=True)
    start = max((line or 1) - 1, 0)
    end = len(lines) if limit is None else start + max(limit, 0)
    return "".join(lines[start:end])


def write_text(workspace: Path, path: str, content: str) -> tuple[str, bool]:
    """Write `content` to a file inside the workspace, atomically (temporary file, rename);
    its workspace-relative path and whether it is new. Missing parent directories are made
    (each one checked as it is made)."""
    data = content.encode("utf-8")
    if len(data) > MAX_FILE_BYTES:
        raise Refused(f"the content for '{path}' is larger than {MAX_FILE_BYTES} bytes")
    real = confine(workspace, path)
    root = workspace.resolve()
    _make_parents(root, real.parent)
    if real.is_dir():
        raise Refused(f"'{path}' is a directory")
    created = not real.exists()
    mode = stat.S_IMODE(real.stat().st_mode) if not created else 0o644
    fd, temporary = tempfile.mkstemp(prefix=".logist-acp-", suffix=".tmp", dir=real.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, mode)
        confine(workspace, str(real))  # the parent may have been swapped meanwhile
        os.replace(temporary, real)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return real.relative_to(root).as_posix(), created


def _make_parents(root: Path, parent: Path) -> None:
    """Create `parent` (inside `root`) one level at a time, never through a symlink."""
    missing: list[Path] = []
    current = parent
    while not current.exists() and current != root:
        missing.append(current)
        current = current.parent
    for directory in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(directory)
        if directory.is_symlink() or not directory.resolve().is_relative_to(root):
            raise Refused(f"'{directory}' is not a directory inside the workspace")
