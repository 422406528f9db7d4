"""Real file systems for the store-fault tests: a small tmpfs, a read-only directory.

Tests run as root on CI and here, and root ignores file modes: a read-only bind mount is
what makes a directory unwritable for root too. Without root, `chmod` does it (and a tmpfs
cannot be mounted, which fails the test rather than skipping it).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path


def _mount(*args: str) -> None:
    proc = subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, f"mount {' '.join(args)} failed: {proc.stderr.strip()}"


def _unmount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    """A tmpfs of `size` (e.g. "2m") mounted at `path` (created) while the block runs."""
    path.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path))
    try:
        yield path
    finally:
        _unmount(path)


@contextlib.contextmanager
def read_only(path: Path) -> Iterator[Path]:
    """`path` (a directory) unwritable for everyone, root included, while the block runs."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o500)
        try:
            yield path
        finally:
            path.chmod(mode)
        return
    _mount("--bind", str(path), str(path))
    try:
        _mount("-o", "remount,bind,ro", str(path))
        probe = path / ".probe"
        try:
            probe.write_text("x")
        except OSError:
            pass
        else:
            probe.unlink()
            raise AssertionError(f"{path} is still writable after a read-only bind mount")
        yield path
    finally:
        _unmount(path)
