"""Run the three core benchmarks and print a summary of their median figures.

    .venv/bin/python bench/run_all.py [--quick]

(a) start_overhead.py: job start overhead vs a raw `git worktree add` (bar: <= 1.3x);
(b) run_noop.py: `logist run` with the noop mock vs the mock run directly;
(c) job_list.py: `logist job list` over 10,000 jobs (bar: < 100 ms median).
Each prints its own tables; this script adds a summary at the end. No assertions: the
exit status is non-zero only when a benchmark itself fails to run.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BENCHMARKS = [
    ("a", "start_overhead.py", "job start overhead (10,000-file repository)"),
    ("b", "run_noop.py", "logist run, noop mock agent"),
    ("c", "job_list.py", "logist job list, 10,000 jobs"),
]


def main() -> int:
    parser = argparse.ArgumentParser(description="Run every benchmark in bench/.")
    parser.add_argument("--quick", action="store_true", help="fewer repetitions")
    parser.add_argument("--only", action="append", choices=[b[0] for b in BENCHMARKS])
    args = parser.parse_args()

    sys.path.insert(0, str(HERE))
    from common import load_line, machine_line

    print(f"machine: {machine_line()}")
    results: dict[str, dict[str, Any]] = {}
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="logist-bench-all-") as tmp:
        for key, script, title in BENCHMARKS:
            if args.only and key not in args.only:
                continue
            out = Path(tmp) / f"{key}.json"
            argv = [sys.executable, str(HERE / script), "--json", str(out)]
            if args.quick:
                argv.append("--quick")
            print(f"\n##### ({key}) {title}: {script}", flush=True)
            start = time.perf_counter()
            code = subprocess.call(argv, cwd=HERE.parent)
            print(f"##### ({key}) took {time.perf_counter() - start:.0f} s", flush=True)
            if code != 0 or not out.exists():
                failed.append(script)
                continue
            results[key] = json.loads(out.read_text())

    print("\n" + "=" * 78)
    print(f"SUMMARY (medians; {load_line()} at the end)")
    if "a" in results:
        a = results["a"]
        print(f"(a) start overhead, {a['files']} files, {a['filesystem']}, bar <= 1.3x raw:")
        for case in ("clean tree", "uncommitted + untracked"):
            row, cpu, extra = a[case], a[f"{case}, cpu"], a[f"{case}, extra"]
            verdict = "met" if row["ratio"] <= 1.3 else "NOT met"
            print(
                f"    {case:<25} logist {row['median_ms']:7.1f} ms  raw git worktree add "
                f"{row['raw_median_ms']:7.1f} ms  ratio {row['ratio']:.2f}x  {verdict}\n"
                f"    {'':<25} paired {row['paired_ratio']:.2f}x, CPU {cpu['ratio']:.2f}x, "
                f"logist adds {extra['extra_ms']:.1f} ms to its checkout "
                f"-> {extra['derived_ratio']:.2f}x"
            )
        for case in ("clean tree", "uncommitted + untracked"):
            row = a[f"{case}, what-if overlapped"]
            print(
                f"    what-if overlapped, {case:<25} {row['median_ms']:7.1f} ms  "
                f"ratio {row['ratio']:.2f}x"
            )
    if "b" in results:
        wall = results["b"]["rows"][0]
        cpu = results["b"]["rows"][1]
        print(
            f"(b) logist run noop {wall['median_ms']:7.1f} ms  mock directly "
            f"{wall['raw_median_ms']:7.1f} ms  ratio {wall['ratio']:.2f}x "
            f"(CPU {cpu['ratio']:.2f}x)"
        )
    if "c" in results:
        c = results["c"]
        print(f"(c) {c['jobs']} jobs, bar < 100 ms median:")
        for row in c["rows"]:
            if "subprocess" in row["name"] and "list" in row["name"]:
                verdict = "met" if row["median_ms"] < 100 else "NOT met"
                print(f"    {row['name']:<48} {row['median_ms']:7.1f} ms  {verdict}")
            else:
                print(f"    {row['name']:<48} {row['median_ms']:7.1f} ms")
    if failed:
        print(f"FAILED to run: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
