"""Whether a job store is Logist's own, not one a repository brought.

A repository that commits `.logist/logist.db` would hand Logist job records of its own making
(workspaces, pids and commits that `attach`, `cancel` and `gc` act on); one that commits
`.logist` or `.logist/jobs` as a symbolic link would receive the store's files where it
points. Only `.logist/roles/` may come with a repository.
"""

from __future__ import annotations

import os
from pathlib import Path

from logist_server.domain.errors import StoreError
from logist_server.store.index import may_track_store
from logist_server.vcs.git import git

STORE_DIRNAME = ".logist"  # the store directory in a repository
# The one part of `.logist/` a repository may bring: role definitions.
SHARED_PART = "roles/"


def refuse_foreign_store(repo: Path) -> None:
    """StoreError unless the store is Logist's own: `.logist` not a symbolic link, and
    nothing in it tracked by git but `.logist/roles/`."""
    store_dir = repo / STORE_DIRNAME
    if store_dir.is_symlink():
        raise StoreError(
            f"{store_dir} is a symbolic link (to {os.readlink(store_dir)}): Logist keeps its "
            f"job store only in a directory of the repository; move the link aside "
            f"(mv {store_dir} {store_dir}.link)"
        )
    git_dir = repo / ".git"  # a directory in a main worktree; a linked one asks git
    if git_dir.is_dir() and not may_track_store(str(git_dir)):
        return  # the index holds nothing under `.logist/` but roles
    proc = git(["ls-files", "-z", "--cached", "--", STORE_DIRNAME], repo, check=False)
    prefix = f"{STORE_DIRNAME}/"
    tracked = [
        name
        for name in proc.stdout.decode(errors="replace").split("\0")
        if name and not name.startswith(prefix + SHARED_PART)
    ]
    if proc.returncode == 0 and tracked:
        raise StoreError(
            f"{repo / tracked[0]} is tracked by git: a job store is made by Logist, never "
            f"brought by a repository (only {prefix}{SHARED_PART} may be); untrack it "
            f"(git rm -r --cached {tracked[0]}) and move it aside"
        )
