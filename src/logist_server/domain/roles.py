"""Roles: what an agent step is asked to do. `worker` changes the code; `supervisor` reviews.

Built-in roles can be overridden and new ones added inline in configuration (`roles:`) or
as files `.logist/roles/NAME.yml` read by `config.roles` (name, kind, description,
instructions, agent, model, agent_options). Instructions are a template: `$task` is the user's
prompt with its target, `$comments` the reviewer's comments (workers), `$diff` the change under
review (supervisors).
"""

from __future__ import annotations

import re
from string import Template
from typing import Any

import msgspec

from logist_server.domain.errors import UsageError

WORKER, SUPERVISOR = "worker", "supervisor"
# At a line's start, or right after a sentence: an agent's chunks of several messages can
# arrive glued (codex-acp: "...cause issues.VERDICT: CHANGES").
VERDICT_LINE = re.compile(
    r"(?:^|(?<=[.!?]))\W*VERDICT:\s*(APPROVE|CHANGES)\b[\s:.-]*(.*)$", re.I | re.M
)

WORKER_INSTRUCTIONS = """$task"""
SUPERVISOR_INSTRUCTIONS = """You are reviewing a change another agent made for the task below.
Do not edit files.

## Task
$task

## Proposed change
$diff

Check that the change is correct and does what the task asks. End your reply with a line
`VERDICT: APPROVE` when it is ready, or `VERDICT: CHANGES` followed by the changes you ask
for, one per line.
"""


class Role(msgspec.Struct, frozen=True):
    """A role as the driver uses it; `source` says where it was defined."""

    name: str
    kind: str = WORKER
    description: str = ""
    instructions: str = WORKER_INSTRUCTIONS
    agent: str | None = None
    model: str | None = None
    agent_options: dict[str, str] = msgspec.field(default_factory=dict)
    source: str = "built-in"


BUILTIN_ROLES: dict[str, Role] = {
    WORKER: Role(WORKER, WORKER, "makes the change the prompt asks for", WORKER_INSTRUCTIONS),
    SUPERVISOR: Role(
        SUPERVISOR,
        SUPERVISOR,
        "reviews the worker's change: approves it or asks for changes",
        SUPERVISOR_INSTRUCTIONS,
    ),
}


def find_role(roles: dict[str, Role], name: str) -> Role:
    role = roles.get(name)
    if role is None:
        raise UsageError(f"unknown role '{name}' (known: {', '.join(sorted(roles))})")
    return role


def build_role(name: str, data: dict[str, Any], base: Role | None, source: str) -> Role:
    fields = {k: v for k, v in data.items() if v not in (None, {}) and k != "name"}
    if base is not None:
        return msgspec.structs.replace(base, source=source, **fields)
    kind = fields.get("kind", WORKER)
    default = SUPERVISOR_INSTRUCTIONS if kind == SUPERVISOR else WORKER_INSTRUCTIONS
    fields.setdefault("instructions", default)
    return Role(name=name, source=source, **fields)


def render_instructions(role: Role, task: str, diff: str = "", comments: str = "") -> str:
    """The role's instructions with `$task`, `$diff` and `$comments` filled in."""
    text = Template(role.instructions).safe_substitute(
        task=task.rstrip("\n"), diff=_fenced(diff), comments=comments.rstrip("\n")
    )
    if comments and role.kind == WORKER and "$comments" not in role.instructions:
        text = text.rstrip("\n") + "\n\n## Reviewer comments\n" + comments.rstrip("\n")
    return text.rstrip("\n") + "\n"


def _fenced(diff: str) -> str:
    fence = "````" if "```" in diff else "```"
    return f"{fence}diff\n{diff.rstrip(chr(10))}\n{fence}" if diff else "(no change)"


def parse_verdict(text: str) -> tuple[str, str] | None:
    """(`approve` | `changes`, comments) from a reviewer's reply: its last VERDICT line."""
    matches = list(VERDICT_LINE.finditer(text))
    if not matches:
        return None
    last = matches[-1]
    comments = "\n".join(
        part for part in (last.group(2).strip(), text[last.end() :].strip()) if part
    )
    return last.group(1).lower(), comments
