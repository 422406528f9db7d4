"""Which repository-relative paths a job may touch.

One rule, shared by harvest (a result tree holding such a path fails the job) and accept
(nothing outside it is ever written): a path is relative, has no empty, `.` or `..` part,
no part that git or Logist reserve (`.git`, `.logist`, in any letter case, as git itself
compares them on case-insensitive file systems), and no NUL byte.
"""

from __future__ import annotations

RESERVED_PARTS = frozenset({".git", ".logist"})


def unsafe_reason(path: str) -> str | None:
    """Why `path` may not be written by a job, or None when it may."""
    if not path:
        return "an empty path"
    if "\0" in path:
        return "a NUL byte in the path"
    if path.startswith("/"):
        return "an absolute path"
    for part in path.split("/"):
        if part in ("", ".", ".."):
            return f"a {part!r} part in the path" if part else "an empty part in the path"
        folded = part.rstrip(". ").lower()  # `.GIT`, `.git.` and `.git ` alias `.git` elsewhere
        if folded in RESERVED_PARTS:
            return f"a path inside {folded}"
    return None


def safe_path(path: str) -> bool:
    """True when a job may write `path` (see `unsafe_reason`)."""
    return unsafe_reason(path) is None
