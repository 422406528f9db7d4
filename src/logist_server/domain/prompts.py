"""The prompt an agent receives: the user's words plus the target they pointed at."""

from __future__ import annotations

from logist_server.domain.model import Job


def render_prompt(job: Job) -> str:
    """The user's prompt, then the file, line range and selected text it is about."""
    parts = [job.prompt.rstrip()]
    target = job.target
    if target is not None:
        where = f"File: {target.file}"
        if target.range is not None:
            where += f" (lines {target.range.start}-{target.range.end})"
        parts += ["", "---", where]
        if target.text:
            fence = "````" if "```" in target.text else "```"
            parts += ["Selected text:", fence, target.text.rstrip("\n"), fence]
    return "\n".join(parts) + "\n"
