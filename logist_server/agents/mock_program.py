"""`logist-mock-agent`: a real executable with scripted behaviours, run like any agent.

Options for `edit` (and the scenarios that end with it): `delete=A,B`, `rename=OLD:NEW`,
`binary=PATH` (writes 1 KiB of binary data), `chmod=PATH` (flips the executable bits).

It prints one JSON object per line (message, tool_call, file_change, usage, question,
error, done) and acts on its working directory. Only the standard library is imported,
so it starts as fast as Python can.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_FILE = "LOGIST_MOCK.md"


def emit(kind: str, **fields: object) -> None:
    sys.stdout.write(json.dumps({"type": kind, **fields}) + "\n")
    sys.stdout.flush()


def first_line(prompt: str) -> str:
    for line in prompt.splitlines():
        if line.strip():
            return line.strip()
    return ""


def do_edit(prompt: str, target: str | None) -> None:
    """Append `logist-mock: <first prompt line>` to the target (or LOGIST_MOCK.md)."""
    path = Path(target or DEFAULT_FILE)
    line = f"logist-mock: {first_line(prompt)}\n"
    emit("tool_call", tool="read", input={"path": str(path)})
    existed = path.exists()
    current = path.read_bytes() if existed else b""
    if current and not current.endswith(b"\n"):
        current += b"\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(current + line.encode())
    emit("tool_call", tool="edit", input={"path": str(path), "append": line.rstrip("\n")})
    emit("file_change", path=str(path), action="modify" if existed else "create")


def usage(tokens_in: int, tokens_out: int, cost: float) -> None:
    emit("usage", input_tokens=tokens_in, output_tokens=tokens_out, cost_usd=round(cost, 6))


def do_extra_actions(opts: dict[str, str]) -> None:
    """Optional file operations, for exercising harvest: comma-separated paths."""
    for path in filter(None, opts.get("delete", "").split(",")):
        Path(path).unlink()
        emit("file_change", path=path, action="delete")
    for pair in filter(None, opts.get("rename", "").split(",")):
        old, new = pair.split(":", 1)
        Path(new).parent.mkdir(parents=True, exist_ok=True)
        Path(old).rename(new)
        emit("file_change", path=new, action="rename")
    for path in filter(None, opts.get("binary", "").split(",")):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_bytes(bytes(range(256)) * 4)
        emit("file_change", path=path, action="create")
    for path in filter(None, opts.get("chmod", "").split(",")):
        Path(path).chmod(Path(path).stat().st_mode ^ 0o111)
        emit("file_change", path=path, action="modify")


def scenario_edit(prompt: str, target: str | None, opts: dict[str, str]) -> int:
    emit("message", text=f"Working on: {first_line(prompt)}")
    do_extra_actions(opts)
    do_edit(prompt, target)
    usage(120, 40, 0.0012)
    emit("done", success=True, summary="appended one line")
    return 0


def scenario_slow(prompt: str, target: str | None, opts: dict[str, str]) -> int:
    seconds = float(opts.get("seconds", "5"))
    lines = max(1, int(seconds * 4))
    for i in range(lines):
        emit("message", text=f"thinking {i + 1}/{lines}")
        time.sleep(seconds / lines)
    return scenario_edit(prompt, target, opts)


def scenario_hang(prompt: str, target: str | None, opts: dict[str, str]) -> int:
    emit("message", text="starting, then hanging")
    # A helper child, as real agents start: cancel must take it down too.
    subprocess.Popen(["sleep", "3600"], stdin=subprocess.DEVNULL)
    while True:
        time.sleep(3600)


def scenario_crash(prompt: str, target: str | None, opts: dict[str, str]) -> int:
    emit("message", text="starting work")
    emit("tool_call", tool="read", input={"path": target or "."})
    sys.stderr.write("mock agent: simulated crash (scenario=crash)\n")
    sys.stderr.flush()
    emit("error", message="simulated crash (scenario=crash)")
    return 3


def scenario_cost(prompt: str, target: str | None, opts: dict[str, str]) -> int:
    steps = int(opts.get("steps", "40"))
    delay = float(opts.get("interval", "0.1"))
    cost = 0.0
    for i in range(steps):
        cost += 0.005
        emit("message", text=f"turn {i + 1}")
        usage(1000 * (i + 1), 200 * (i + 1), cost)
        time.sleep(delay)
    do_extra_actions(opts)
    do_edit(prompt, target)
    usage(1000 * steps + 120, 200 * steps + 40, cost + 0.0012)  # totals only ever climb
    emit("done", success=True, summary="appended one line")
    return 0


def scenario_question(prompt: str, target: str | None, opts: dict[str, str]) -> int:
    answer_file = Path(os.environ.get("LOGIST_ANSWER_FILE", ".logist-answer"))
    emit("question", text=opts.get("question", "Which file should I change?"))
    while not answer_file.exists():
        time.sleep(0.05)
    answer = answer_file.read_text().strip()
    emit("message", text=f"got the answer: {answer}")
    return scenario_edit(prompt, target, opts)


def scenario_noop(prompt: str, target: str | None, opts: dict[str, str]) -> int:
    emit("message", text="nothing to do")
    emit("done", success=True, summary="no changes")
    return 0


def scenario_flood(prompt: str, target: str | None, opts: dict[str, str]) -> int:
    lines = int(opts.get("lines", "100000"))
    write = sys.stdout.write
    for i in range(lines):
        write(f'{{"type": "message", "text": "flood line {i}"}}\n')
    sys.stdout.flush()
    emit("done", success=True, summary=f"{lines} lines")
    return 0


SCENARIOS = {
    "edit": scenario_edit,
    "slow": scenario_slow,
    "hang": scenario_hang,
    "crash": scenario_crash,
    "cost": scenario_cost,
    "question": scenario_question,
    "noop": scenario_noop,
    "flood": scenario_flood,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="logist-mock-agent", description=__doc__)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--prompt")
    source.add_argument("--prompt-file")
    parser.add_argument("--scenario", default="edit", choices=sorted(SCENARIOS))
    parser.add_argument("--target", help="file to edit, relative to the working directory")
    parser.add_argument("--opt", action="append", default=[], metavar="K=V")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    prompt = args.prompt if args.prompt is not None else Path(args.prompt_file).read_text()
    opts = dict(item.split("=", 1) for item in args.opt if "=" in item)
    return SCENARIOS[args.scenario](prompt, args.target, opts)


if __name__ == "__main__":
    sys.exit(main())
