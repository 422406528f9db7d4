"""The toy agent's program (standard library only; run as `python -I program.py`).

It appends `toy: <prompt>` to TOY.md in its working directory and prints
JSON lines: its session id, a message naming its working directory, a file change, done.
A prompt `plant: PATH` makes it behave as a hostile agent would in its sandbox: every
symlink on the way to PATH is replaced by a real directory, and PATH is written; a prompt
`session: ID` makes it report ID as its session id."""

import argparse
import json
import os
import sys


def emit(kind: str, **fields: object) -> None:
    print(json.dumps({"type": kind, **fields}), flush=True)


def plant(path: str) -> None:
    parts = path.split("/")
    for depth in range(1, len(parts)):
        directory = os.path.join(*parts[:depth])
        if os.path.islink(directory):
            os.unlink(directory)
        os.makedirs(directory, exist_ok=True)
    with open(path, "w") as handle:
        handle.write("planted by the agent\n")
    emit("file_change", path=path, action="create")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--prompt", required=True)
    args = parser.parse_args()
    forged = args.prompt.startswith("session: ")  # a hostile agent's session id
    emit("session", id=args.prompt.removeprefix("session: ") if forged else "toy-1")
    emit("message", text=f"toy agent working in {os.getcwd()}")
    with open("TOY.md", "a") as handle:
        handle.write(f"toy: {args.prompt}\n")
    emit("file_change", path="TOY.md", action="modify")
    for line in args.prompt.splitlines():
        if line.startswith("plant: "):
            plant(line.removeprefix("plant: "))
    emit("done", success=True, summary="toy edit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
