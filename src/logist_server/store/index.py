"""Whether a repository's index may track something in `.logist/` (cheap: no git call).

Imports only `os`, for the lean `job list` path (`cli/fast_list.py`) as for the store itself
(`store_guard.py`), which asks `git ls-files` only when this says "may".
"""

from __future__ import annotations

import os

# How a path under `.logist/` starts in the index; only `.logist/roles/` is a repository's.
STORE_PREFIX = b".logist/"
SHARED_PREFIX = b"roles/"


def may_track_store(git_dir: str) -> bool:
    """Whether the index in `git_dir` may track a path in `.logist/` other than a role.

    Version 2 and 3 index entries hold each path whole (a sparse index's `.logist/`
    directory entry included). Version 4 (compressed paths) and a split index (entries in
    `sharedindex.*`) count as "may"."""
    try:
        with open(os.path.join(git_dir, "index"), "rb") as handle:
            data = handle.read()
    except FileNotFoundError:
        return False  # nothing tracked yet
    if data[:4] != b"DIRC" or data[4:8] not in (b"\0\0\0\x02", b"\0\0\0\x03"):
        return True
    start = 0
    while (at := data.find(STORE_PREFIX, start)) != -1:  # an entry under `.logist/`...
        start = at + len(STORE_PREFIX)
        if not data.startswith(SHARED_PREFIX, start):  # ...other than a role: JobStore refuses
            return True
    return any(name.startswith("sharedindex.") for name in os.listdir(git_dir))
