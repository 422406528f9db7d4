"""Shared helpers for the benchmarks: temporary git repositories, timing and reporting.

The benchmarks are scripts, not tests: they print median figures and ratios against the
raw operation measured in the same run, and never assert on time.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = ROOT / ".venv" / "bin"
PYTHON = str(VENV_BIN / "python") if (VENV_BIN / "python").exists() else sys.executable
LOGIST = str(VENV_BIN / "logist")

# A fixed identity and no user/system configuration, so every run commits the same way.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@localhost",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@localhost",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def bench_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for processes the benchmarks start (and for this process)."""
    env = dict(os.environ)
    env.update(GIT_ENV)
    env.pop("LOGIST_DEBUG", None)
    env.setdefault("LOGIST_DEFAULT_AGENT", "mock")  # where a benchmark names no agent
    if extra:
        env.update(extra)
    return env


def prepare_process_env(workspace_root: Path) -> None:
    """Point this process (and its children) at a private workspace root and identity."""
    os.environ.update(GIT_ENV)
    os.environ["LOGIST_WORKSPACE_ROOT"] = str(workspace_root)


def git(args: Sequence[str], cwd: Path) -> str:
    proc = subprocess.run(
        ["git", *args], cwd=cwd, env=bench_env(), capture_output=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr.decode().strip()}")
    return proc.stdout.decode().strip()


def make_repo(path: Path, n_files: int, per_dir: int = 100) -> Path:
    """A git repository at `path` with `n_files` small text files committed.

    Files are spread over directories of `per_dir` files (two levels: `src/gNN/dNNN/`),
    with a few lines of text each, like a small source tree.
    """
    path.mkdir(parents=True, exist_ok=True)
    git(["init", "-q", "-b", "main"], path)
    for i in range(n_files):
        d = i // per_dir
        folder = path / "src" / f"g{d // 10:02d}" / f"d{d:03d}"
        if i % per_dir == 0:
            folder.mkdir(parents=True, exist_ok=True)
        body = "".join(
            f"line {k} of file {i}: some text to make it a real file\n" for k in range(8)
        )
        (folder / f"f{i:05d}.txt").write_text(body)
    (path / "README.md").write_text("benchmark repository\n")
    (path / "a.txt").write_text("alpha\nbeta\n")
    git(["add", "-A"], path)
    git(["commit", "-q", "--no-gpg-sign", "-m", "initial"], path)
    return path


def make_dirty(repo: Path) -> None:
    """An uncommitted change to a tracked file and an untracked file (the snapshot path)."""
    with (repo / "a.txt").open("a") as fh:
        fh.write("an uncommitted line\n")
    (repo / "untracked.txt").write_text("not yet added\n")


def ms(seconds: float) -> float:
    return seconds * 1000.0


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def p90(values: Sequence[float]) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = max(0, min(len(ordered) - 1, round(0.9 * (len(ordered) - 1))))
    return ordered[index]


def time_call(fn: Callable[[], object]) -> float:
    """Seconds `fn()` took (time.perf_counter)."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def run_timed(argv: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None) -> float:
    """Seconds a subprocess took from spawn to exit; raises if it failed."""
    return run_measured(argv, cwd, env)[0]


def children_cpu() -> float:
    """User + system CPU seconds of the waited-for children of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_measured(
    argv: Sequence[str], cwd: Path, env: Mapping[str, str] | None = None
) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of a subprocess from spawn to exit; raises if it failed.

    The CPU time (user + system, including the descendants it waited for) is less sensitive
    than the wall time to other load on the machine."""
    cpu = children_cpu()
    start = time.perf_counter()
    proc = subprocess.run(
        list(argv),
        cwd=cwd,
        env=dict(env) if env is not None else bench_env(),
        capture_output=True,
        check=False,
    )
    elapsed = time.perf_counter() - start
    cpu = children_cpu() - cpu
    if proc.returncode != 0:
        raise RuntimeError(
            f"{' '.join(argv)} exited with {proc.returncode}: {proc.stderr.decode().strip()}"
        )
    return elapsed, cpu


@contextmanager
def phase(label: str) -> Iterator[None]:
    """Print how long a setup phase took (on stderr, so tables stay clean)."""
    start = time.perf_counter()
    sys.stderr.write(f"  {label}...\n")
    sys.stderr.flush()
    yield
    sys.stderr.write(f"  {label}: {time.perf_counter() - start:.1f} s\n")
    sys.stderr.flush()


class Row:
    """One line of a results table: samples in seconds, with an optional raw reference."""

    def __init__(self, name: str, samples: Sequence[float], raw: Sequence[float] | None = None):
        self.name = name
        self.samples = list(samples)
        self.raw = list(raw) if raw is not None else None

    @property
    def median_ms(self) -> float:
        return ms(median(self.samples))

    @property
    def p90_ms(self) -> float:
        return ms(p90(self.samples))

    @property
    def raw_median_ms(self) -> float | None:
        return ms(median(self.raw)) if self.raw else None

    @property
    def ratio(self) -> float | None:
        raw = self.raw_median_ms
        return self.median_ms / raw if raw else None

    @property
    def paired_ratio(self) -> float | None:
        """Median of the per-repetition ratios (each sample against the raw one measured
        next to it): less sensitive to load that drifts during the run."""
        if not self.raw or len(self.raw) != len(self.samples):
            return None
        return median([s / r for s, r in zip(self.samples, self.raw, strict=True)])

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "n": len(self.samples),
            "median_ms": round(self.median_ms, 2),
            "p90_ms": round(self.p90_ms, 2),
            "raw_median_ms": None if self.raw_median_ms is None else round(self.raw_median_ms, 2),
            "ratio": None if self.ratio is None else round(self.ratio, 3),
            "paired_ratio": None if self.paired_ratio is None else round(self.paired_ratio, 3),
        }


def print_table(title: str, rows: Sequence[Row]) -> None:
    """The uniform table: name  n  median_ms  p90_ms  raw_median_ms  ratio."""
    width = max(32, *(len(r.name) for r in rows))
    print(f"\n== {title}")
    header = (
        f"{'name':<{width}}  {'n':>3}  {'median_ms':>10}  {'p90_ms':>10}  "
        f"{'raw_median_ms':>13}  {'ratio':>6}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        raw = "-" if row.raw_median_ms is None else f"{row.raw_median_ms:.1f}"
        ratio = "-" if row.ratio is None else f"{row.ratio:.2f}x"
        print(
            f"{row.name:<{width}}  {len(row.samples):>3}  {row.median_ms:>10.1f}  "
            f"{row.p90_ms:>10.1f}  {raw:>13}  {ratio:>6}"
        )
    sys.stdout.flush()


def load_line() -> str:
    """The load average: other work on the machine inflates wall times."""
    try:
        one, five, _fifteen = os.getloadavg()
    except OSError:
        return "load average unknown"
    return f"load average {one:.2f} (1 min), {five:.2f} (5 min) on {os.cpu_count()} cores"


def machine_line() -> str:
    git_version = subprocess.run(
        ["git", "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return (
        f"{platform.system()} {platform.release()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {git_version}"
    )


def make_tmpdir(prefix: str, where: str) -> Path:
    """A fresh temporary directory: `where` is `disk` (the system temp directory), `tmpfs`
    (/dev/shm, falling back to disk when it is missing) or a directory path."""
    if where == "disk":
        parent = None
    elif where == "tmpfs":
        shm = Path("/dev/shm")
        parent = str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None
    else:
        Path(where).mkdir(parents=True, exist_ok=True)
        parent = where
    return Path(tempfile.mkdtemp(prefix=prefix, dir=parent))


def release_tmpdir(path: Path, keep: bool) -> None:
    """Remove the temporary directory of a run, or say where it was kept (`--keep`)."""
    if keep:
        print(f"kept {path}", file=sys.stderr)
    else:
        shutil.rmtree(path, ignore_errors=True)


def filesystem_of(path: Path) -> str:
    """The file system type holding `path` (from /proc/mounts), e.g. `ext4` or `tmpfs`."""
    best, kind = "", "unknown"
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return kind
    resolved = str(path.resolve())
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        mount_point = fields[1]
        inside = resolved == mount_point or resolved.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) > len(best):
            best, kind = mount_point, fields[2]
    return kind


def base_parser(description: str, default_dir: str = "disk") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--dir",
        default=default_dir,
        help=f"where the temporary files go: disk, tmpfs or a path (default {default_dir})",
    )
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--json", metavar="FILE", help="also write the results to FILE as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    return parser
