"""What an agent may do without asking: the job's permission policy.

Agents ask leave before they use a tool (claude's `can_use_tool` control request, ACP's
`session/request_permission`). Logist answers from the job's `Permissions` where it can and
asks the user (`needs_input`) otherwise. Tools are sorted into ACP's tool kinds, the one
vocabulary every provider maps its own tool names to.

Whatever the policy says, an edit, delete or move of a path outside the job's workspace is
denied: nothing leaves a job except what the user accepts.
"""

from __future__ import annotations

from typing import Literal

import msgspec

Decision = Literal["allow", "ask", "deny"]
DECISIONS: tuple[str, ...] = ("allow", "ask", "deny")
#: ACP's tool kinds (agent-client-protocol `ToolKind`).
ToolKind = Literal["read", "edit", "delete", "move", "search", "execute", "think", "fetch", "other"]
TOOL_KINDS: tuple[str, ...] = (
    "read", "edit", "delete", "move", "search", "execute", "think", "fetch", "other",
)  # fmt: skip
#: Kinds that change files: always denied outside the workspace.
WRITING_KINDS = frozenset({"edit", "delete", "move"})


class Permissions(msgspec.Struct, frozen=True):
    """Per kind of tool: allow without asking, ask the user, or deny.

    The default suits the host runtime, where the agent runs with the user's own rights
    and no sandbox: reading, searching and editing inside the job's workspace (an isolated
    worktree, reviewed before anything leaves it) go on; a shell command or a network fetch
    can reach anything the user can, so it is asked."""

    read: Decision = "allow"
    search: Decision = "allow"
    think: Decision = "allow"
    edit: Decision = "allow"
    delete: Decision = "allow"
    move: Decision = "allow"
    execute: Decision = "ask"
    fetch: Decision = "ask"
    other: Decision = "ask"


def decide(policy: Permissions, kind: str, *, inside_workspace: bool = True) -> Decision:
    """The decision for a tool of `kind` (an unknown kind counts as `other`); a writing
    tool aimed outside the workspace is denied whatever the policy says."""
    if kind in WRITING_KINDS and not inside_workspace:
        return "deny"
    name = kind if kind in TOOL_KINDS else "other"
    decision: Decision = getattr(policy, name)
    return decision
