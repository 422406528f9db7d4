"""One cgroup per agent, where the machine lets Logist make one.

A process cannot leave its cgroup by forking, `setsid` or changing directory: a cgroup holds
every process an agent starts, double-forked daemons included (unless the agent is root and
moves itself out: the host runtime is not a sandbox). Logist makes `logist/<name>` in the
first hierarchy it can write to: cgroup v2 (the unified hierarchy), else a v1 `pids` or
`freezer` hierarchy. Where none is writable (an unprivileged user without a delegated
cgroup), `detect()` says so and the host runtime falls back to sessions and working
directories.
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import time
from pathlib import Path

MOUNTS = Path("/proc/self/mounts")
DIRNAME = "logist"
PREFIX = "agent-"
#: An empty agent cgroup older than this was left by a process that died before it could
#: remove it (the age keeps the sweep away from one that a wrapper is about to join).
STALE_S = 600.0
V1_CONTROLLERS = ("pids", "freezer")


class CgroupRoot:
    """The writable directory under which agent cgroups are made."""

    def __init__(self, path: Path, version: int) -> None:
        self.path = path
        self.version = version

    def create(self, name: str) -> Path | None:
        """A fresh cgroup for one agent, or None when it cannot be made."""
        group = self.path / name
        try:
            group.mkdir(exist_ok=True)
        except OSError:
            return None
        return group if os.access(group / "cgroup.procs", os.W_OK) else None


def candidates(mounts_text: str) -> list[tuple[Path, int]]:
    """cgroup mounts in order of preference: v2 first, then v1 pids and freezer."""
    v2: list[tuple[Path, int]] = []
    v1: list[tuple[Path, int]] = []
    for line in mounts_text.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        mount = Path(fields[1].replace("\\040", " "))
        if fields[2] == "cgroup2":
            v2.append((mount, 2))
        elif fields[2] == "cgroup" and any(c in fields[3].split(",") for c in V1_CONTROLLERS):
            v1.append((mount, 1))
    return v2 + v1


@functools.cache
def detect() -> CgroupRoot | None:
    """The first cgroup hierarchy where Logist can make agent cgroups (None: none here)."""
    try:
        text = MOUNTS.read_text()
    except OSError:
        return None
    for mount, version in candidates(text):
        root = mount / DIRNAME
        try:
            root.mkdir(exist_ok=True)
        except OSError:
            continue
        if os.access(root, os.W_OK) and (root / "cgroup.procs").exists():
            sweep(root)
            return CgroupRoot(root, version)
    return None


def sweep(root: Path, now: float | None = None) -> None:
    """Remove the empty agent cgroups under `root` that are older than STALE_S."""
    cutoff = (time.time() if now is None else now) - STALE_S
    with contextlib.suppress(OSError):
        for entry in os.scandir(root):
            if not entry.name.startswith(PREFIX) or not entry.is_dir(follow_symlinks=False):
                continue
            with contextlib.suppress(OSError):
                if entry.stat(follow_symlinks=False).st_mtime < cutoff:
                    os.rmdir(entry.path)  # refused while a process is in it


def _groups(group: Path) -> list[Path]:
    """`group` and every cgroup below it, deepest first."""
    found: list[Path] = []
    with contextlib.suppress(OSError):
        for entry in os.scandir(group):
            if entry.is_dir(follow_symlinks=False):
                found += _groups(Path(entry.path))
    found.append(group)
    return found


def members(group: Path) -> list[int]:
    """Pids of every process in `group` and its descendants (empty when it is gone)."""
    pids: list[int] = []
    for sub in _groups(group):
        with contextlib.suppress(OSError, ValueError):
            pids += [int(line) for line in (sub / "cgroup.procs").read_text().split()]
    return pids


def kill_all(group: Path) -> None:
    """SIGKILL every process in `group`: at once with `cgroup.kill` (v2, Linux 5.14+), else
    one by one while the group is frozen, so that nothing forks in between."""
    kill_file = group / "cgroup.kill"
    if kill_file.exists():
        with contextlib.suppress(OSError):
            kill_file.write_text("1")
            return
    freeze = _freezer(group)
    if freeze is not None:
        with contextlib.suppress(OSError):
            freeze[0].write_text(freeze[1])
    try:
        for pid in members(group):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
    finally:
        if freeze is not None:
            with contextlib.suppress(OSError):
                freeze[0].write_text(freeze[2])  # killed processes die once thawed


def _freezer(group: Path) -> tuple[Path, str, str] | None:
    """The freeze file and its frozen and thawed values, where the hierarchy has one."""
    if (group / "cgroup.freeze").exists():
        return group / "cgroup.freeze", "1", "0"
    if (group / "freezer.state").exists():
        return group / "freezer.state", "FROZEN", "THAWED"
    return None


def remove(group: Path) -> bool:
    """Remove `group` (and its descendants) once empty; True when it is gone."""
    for sub in _groups(group):
        with contextlib.suppress(FileNotFoundError):
            try:
                sub.rmdir()
            except OSError:
                return False
    return True
