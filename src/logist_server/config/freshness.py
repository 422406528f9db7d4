"""A cheap fingerprint of the files configuration is read from, to notice edits.

The fingerprint covers the user's `config.yml`, the repository's `logist.yml`, the role
directory `.logist/roles` and each entry in it: for each, (inode, size, mtime_ns, ctime_ns)
from `lstat` (no file is opened; only the user's own file, which may be a symlink, is
also followed). A long-lived engine compares fingerprints
before a job is created or previewed and reads its configuration again when they differ.
It only detects change: the reading itself keeps all its own checks.
"""

from __future__ import annotations

import os
from pathlib import Path

from logist_server.config.loader import REPO_CONFIG, user_config_path
from logist_server.config.roles import ROLES_DIR

# One path's state: its stat fields, or ("missing",) / ("error", errno).
FileState = tuple[object, ...]
Fingerprint = tuple[tuple[str, FileState], ...]


def _state(path: Path, follow: bool = False) -> FileState:
    try:
        st = os.stat(path, follow_symlinks=follow)
    except FileNotFoundError:
        return ("missing",)
    except OSError as exc:
        return ("error", exc.errno)
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_mode)


def fingerprint(repo: Path) -> Fingerprint:
    """The state of every file the configuration of `repo` is read from."""
    roles = repo / ROLES_DIR
    user = user_config_path()
    paths = [user, repo / REPO_CONFIG, repo / ".logist", roles]
    try:
        with os.scandir(roles) as entries:
            paths += sorted(roles / entry.name for entry in entries)
    except OSError:
        pass  # missing or not a directory: its own state above says so
    states = [(str(path), _state(path)) for path in paths]
    states.append((f"{user} (followed)", _state(user, follow=True)))  # the user's may be a link
    return tuple(states)
