"""A repository's own agent configuration files, refused before the agent starts.

Agents read project configuration from the folder they run in: claude-agent-acp loads
`.claude/settings*.json` (hooks = shell commands, an allow-list, `env`) and `.mcp.json`;
gemini in a trusted folder loads `.gemini/` and copies the folder's `.env` into its own
environment; opencode loads `opencode.json`/`.opencode/` (MCP servers, plugins) and bun
loads `.env`; codex loads `.codex/`; cline runs `.clinerules/hooks`. The repository controls
all of them, so:
- a file that can run commands is refused unless the job may run shell commands anyway
  (`execute: allow`);
- a file that sets the agent's environment (it can send the user's key to another host) is
  refused always.
"""

from __future__ import annotations

import os

from logist_server.domain.errors import UsageError
from logist_server.domain.permissions import Permissions

# agent (program name) -> (files that can run commands, files that set its environment);
# a name ending in "/" is a directory
CONFIGS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "claude-agent-acp": ((".claude/", ".mcp.json"), ()),
    "codex-acp": ((".codex/",), ()),
    "gemini": ((".gemini/",), (".env", ".gemini/.env")),
    "opencode": (("opencode.json", "opencode.jsonc", ".opencode/"), (".env",)),
    "cline": ((".clinerules/",), ()),
}


def refuse(agent: str, permissions: Permissions, workspace: str) -> None:
    """Raise a one-line UsageError naming the first repository config file `agent` would
    load from `workspace` that the job's permissions do not allow (see the module doc)."""
    commands, environment = CONFIGS.get(agent, ((), ()))
    for name in environment:
        if os.path.lexists(os.path.join(workspace, name.rstrip("/"))):
            raise UsageError(
                f"refusing to run {agent}: the repository holds {name}, which {agent} loads "
                "into its environment (it can send your key to another host): remove it"
            )
    if permissions.execute == "allow":
        return
    for name in commands:
        if os.path.lexists(os.path.join(workspace, name.rstrip("/"))):
            raise UsageError(
                f"refusing to run {agent}: the repository holds {name}, whose settings can run "
                f"commands before any approval: allow shell commands for this job "
                f"(--allow execute) or remove {name} from the repository"
            )
