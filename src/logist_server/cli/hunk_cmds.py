"""`logist job hunks ID`: a job's hunks, the units `job accept --hunk` and the editor accept.

The agent controls every file name and line shown here: each is escaped to one printable
line (`printable`) in the human listing; `--json` is JSON (escaped by its encoder).
"""

from __future__ import annotations

import argparse
from typing import Any

from logist_server.cli.common import engine_for, out_json
from logist_server.engine.hunks import FileHunks, Hunk

PREVIEW_CHARS = 60
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\"}


def printable(text: str) -> str:
    """`text` with every character a terminal could act on or hide (controls, format
    characters such as bidirectional overrides, separators, lone surrogates) and the
    backslash as an escape: one line that shows what is there."""
    out = []
    for char in text:
        if char in _NAMED:
            out.append(_NAMED[char])
        elif char.isprintable():
            out.append(char)
        else:
            code = ord(char)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000
                       else f"\\U{code:08x}")  # fmt: skip
    return "".join(out)


def preview(hunk: Hunk) -> str:
    """The first line the hunk adds (`+...`), else the first it removes (`-...`)."""
    if hunk.new_lines:
        first = "+" + hunk.new_lines[0].rstrip("\r\n")
    elif hunk.old_lines:
        first = "-" + hunk.old_lines[0].rstrip("\r\n")
    else:
        return ""
    shown = printable(first)
    return shown if len(shown) <= PREVIEW_CHARS else shown[: PREVIEW_CHARS - 1] + "…"


def lines_of(file: FileHunks, hunk: Hunk) -> str:
    """Where the hunk is, as a diff header says it (1-based): `-3,1 +3,2`; or the kind of
    a whole-file hunk."""
    if file.moved is not None:
        where = "to" if file.kind == "delete" else "from"
        return f"{file.kind} (renamed {where} {printable(file.moved)})"
    if file.kind != "modify":
        return file.kind
    old, new = hunk.old_end - hunk.old_start, len(hunk.new_lines)
    return (
        f"-{hunk.old_start + (1 if old else 0)},{old} +{hunk.new_start + (1 if new else 0)},{new}"
    )


def hunk_json(file: FileHunks, hunk: Hunk, state: str) -> dict[str, Any]:
    return {
        "id": hunk.id,
        "path": file.path,
        "kind": file.kind,
        "moved": file.moved,
        "state": state,
        "accepted": state == "accepted",
        "oldStart": hunk.old_start + 1,
        "oldLines": hunk.old_end - hunk.old_start,
        "newStart": hunk.new_start + 1,
        "newLines": len(hunk.new_lines),
        "oldText": "".join(hunk.old_lines),
        "newText": "".join(hunk.new_lines),
    }


def cmd_job_hunks(args: argparse.Namespace) -> int:
    from logist_server.engine.accept import hunk_states

    engine = engine_for(args)
    job = engine.get(args.job)
    files = engine.hunks(job)
    states = hunk_states(engine.repo, job, files)
    rows = [(f, h, states[h.id]) for f in files for h in f.hunks]
    if args.json:
        out_json(
            {
                "jobId": job.id,
                "status": job.status.value,
                "hunks": [hunk_json(f, h, s) for f, h, s in rows],
            }
        )
        return 0
    left = sum(1 for _f, _h, s in rows if s != "accepted")
    print(f"job {job.id}: {job.status.value}, {len(rows)} hunk(s), {left} not accepted")
    for file, hunk, state in rows:
        where = f"{printable(file.path)} {lines_of(file, hunk)}"
        print(f"  {hunk.id}  {printable(state):<9}  {where}  {preview(hunk)}".rstrip())
    return 0


def register_hunks(jobs: Any, common: argparse.ArgumentParser) -> None:
    p = jobs.add_parser(
        "hunks", parents=[common], help="a job's hunks: ids for `job accept --hunk`"
    )
    p.add_argument("job", help="job id (or a unique prefix)")
    p.set_defaults(handler=cmd_job_hunks)
