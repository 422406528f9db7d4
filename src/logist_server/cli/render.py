"""Human-readable text for jobs and events (the `--json` forms live with the commands)."""

from __future__ import annotations

from typing import Any

from logist_server.domain.event_kinds import EventKind as K
from logist_server.domain.model import Job, JobEvent
from logist_server.store.listing import printable


def job_details(job: Job) -> str:
    """A multi-line description for `job show` (names and texts from the job escaped)."""
    lines = [
        f"job       {job.id}",
        f"status    {job.status.value}"
        + (f" ({printable(job.status_reason)})" if job.status_reason else ""),
        "prompt    " + "\n".join(printable(line) for line in job.prompt.strip().split("\n")),
        f"agent     {job.agent.name}"
        + (f" model={job.agent.model}" if job.agent.model else "")
        + "".join(f" {printable(k)}={printable(v)}" for k, v in sorted(job.agent.options.items())),
        f"runtime   {job.runtime.name}",
        f"repo      {job.repo}",
    ]
    if job.target:
        where = printable(job.target.file)
        if job.target.range:
            where += f" lines {job.target.range.start}-{job.target.range.end}"
        lines.append(f"target    {where}")
    if job.base_commit:
        lines.append(f"base      {job.base_commit}")
    if job.workspace:
        lines.append(f"workspace {job.workspace.path} ({job.workspace.branch})")
    usage = job.result.usage
    if usage.input_tokens or usage.output_tokens or usage.cost_usd:
        lines.append(
            f"usage     {usage.input_tokens} in / {usage.output_tokens} out tokens, "
            f"${usage.cost_usd:.4f}"
        )
    if job.result.diff:
        d = job.result.diff
        lines.append(f"diff      {d.files} file(s), +{d.insertions} -{d.deletions}")
        lines.extend(f"          {printable(p)}" for p in d.paths)
    if job.result.error:
        lines.append(f"error     {printable(job.result.error)}")
    return "\n".join(lines)


def event_line(event: JobEvent) -> str:
    """One line per event for `job log` and progress output."""
    return f"{event.job_id} #{event.seq:<4} {event.kind:<11} {summarize(event.kind, event.data)}"


def summarize(kind: str, data: dict[str, Any]) -> str:
    """An event's data as one line: an agent's text cannot break it or drive the terminal."""
    return printable(_summary(kind, data))


def _summary(kind: str, data: dict[str, Any]) -> str:
    if kind == K.STATUS:
        text = f"{data.get('from')} -> {data.get('to')}"
        return text + (f": {data['reason']}" if data.get("reason") else "")
    if kind == K.MESSAGE:
        return str(data.get("text", ""))
    if kind == K.TOOL_CALL:
        inp = data.get("input") or {}
        arg = inp.get("path") or inp.get("command") or ""
        return f"{data.get('tool')} {arg}".strip()
    if kind == K.FILE_CHANGE:
        return f"{data.get('action')} {data.get('path')}"
    if kind == K.USAGE:
        cost = data.get("cost_usd")
        money = f", ${cost:.4f}" if isinstance(cost, int | float) else ""
        return f"{data.get('input_tokens', 0)} in / {data.get('output_tokens', 0)} out{money}"
    if kind in (K.QUESTION, K.ERROR):
        return str(data.get("text") or data.get("message") or "")
    if kind == K.DONE:
        return str(data.get("summary") or ("success" if data.get("success") else "failure"))
    return " ".join(f"{k}={v}" for k, v in data.items())
