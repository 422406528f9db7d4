"""Helpers for the accept attack tests: forged result trees and real file-system faults."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

from conftest import git

Tree = dict[str, "bytes | Tree"]


def write_tree(repo: Path, entries: Tree) -> str:
    """A tree object holding `entries` verbatim (any name: `..`, `.git`, `a/b`), unchecked."""
    raw = []
    for name, value in entries.items():
        if isinstance(value, bytes):
            mode, sha = "100644", git(repo, "hash-object", "-w", "--stdin", input=value).strip()
            key = name
        else:
            mode, sha, key = "40000", write_tree(repo, value), name + "/"
        raw.append((key, f"{mode} {name}".encode() + b"\0" + bytes.fromhex(sha)))
    body = b"".join(item for _key, item in sorted(raw, key=lambda r: r[0].encode()))
    return git(
        repo, "hash-object", "-t", "tree", "-w", "--literally", "--stdin", input=body
    ).strip()


def forge_commit(repo: Path, parent: str, extra: Tree) -> str:
    """A commit on `parent` whose top tree also holds `extra`: what a hostile harvest makes."""
    listing = git(repo, "ls-tree", "-z", parent)
    raw = []
    for entry in filter(None, listing.split("\0")):
        meta, name = entry.split("\t", 1)
        mode, _kind, sha = meta.split(" ")
        raw.append((name, mode, sha))
    names = set(extra)
    lines = []
    for name, mode, sha in raw:
        if name not in names:
            key = name + "/" if mode == "040000" else name
            mode = "40000" if mode == "040000" else mode
            lines.append((key, f"{mode} {name}".encode() + b"\0" + bytes.fromhex(sha)))
    for name, value in extra.items():
        if isinstance(value, bytes):
            sha = git(repo, "hash-object", "-w", "--stdin", input=value).strip()
            lines.append((name, f"100644 {name}".encode() + b"\0" + bytes.fromhex(sha)))
        else:
            sha = write_tree(repo, value)
            lines.append((name + "/", f"40000 {name}".encode() + b"\0" + bytes.fromhex(sha)))
    body = b"".join(item for _key, item in sorted(lines, key=lambda r: r[0].encode()))
    tree = git(repo, "hash-object", "-t", "tree", "-w", "--literally", "--stdin", input=body)
    return git(repo, "commit-tree", tree.strip(), "-p", parent, "-m", "forged").strip()


def leftovers(root: Path) -> list[str]:
    """Temporaries or backups accept left anywhere under `root` (outside .git)."""
    return sorted(
        str(p.relative_to(root))
        for p in root.rglob(".logist-*")
        if ".git" not in p.relative_to(root).parts
    )


@contextlib.contextmanager
def unwritable(directory: Path) -> Iterator[None]:
    """`directory` refuses every change, for root too: immutable (chattr +i) where the file
    system allows it, else a read-only bind mount; mode 0555 for anyone else."""
    if os.geteuid() != 0:
        directory.chmod(0o555)
        try:
            yield
        finally:
            directory.chmod(0o755)
        return
    chattr = shutil.which("chattr")
    if (
        chattr
        and subprocess.run([chattr, "+i", str(directory)], capture_output=True).returncode == 0
    ):
        try:
            yield
        finally:
            subprocess.run([chattr, "-i", str(directory)], check=True)
        return
    subprocess.run(["mount", "--bind", str(directory), str(directory)], check=True)
    try:
        subprocess.run(["mount", "-o", "remount,ro,bind", str(directory)], check=True)
        yield
    finally:
        subprocess.run(["umount", str(directory)], check=True)


@contextlib.contextmanager
def full_disk(directory: Path) -> Iterator[None]:
    """`directory` on a file system with no room left: a 64 KiB tmpfs, filled (root); else
    a directory nobody may write (a real EACCES where mounting is not allowed)."""
    directory.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        with unwritable(directory):
            yield
        return
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(directory)], check=True)
    try:
        filler = directory / "filler"
        with contextlib.suppress(OSError), filler.open("wb") as handle:
            while True:
                handle.write(b"\0" * 4096)
                handle.flush()
        yield
    finally:
        subprocess.run(["umount", "-l", str(directory)], check=True)
