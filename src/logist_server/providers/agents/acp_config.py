"""What the `acp` provider hands its bridge: a light module (no SDK import)."""

from __future__ import annotations

import msgspec

from logist_server.domain.permissions import Permissions

#: How long the agent may take to start a session (gemini and opencode take seconds).
INIT_TIMEOUT_S = 120.0


class Config(msgspec.Struct, frozen=True):
    """What the provider hands the bridge (no secret: those come in the environment)."""

    agent: list[str]
    workspace: str
    prompt_file: str
    permissions: Permissions = msgspec.field(default_factory=Permissions)
    env: dict[str, str] = msgspec.field(default_factory=dict)
    #: Agent variable <- name of a variable of the bridge's environment (API keys).
    env_from: dict[str, str] = msgspec.field(default_factory=dict)
    resume: str | None = None
    #: Epoch seconds before which `session/load` must not be sent (None: at once).
    load_not_before: float | None = None
    model: str | None = None
    init_timeout: float = INIT_TIMEOUT_S
