"""What an agent provider builds and a runtime runs: one process, described as data."""

from __future__ import annotations

import msgspec


class ProcessSpec(msgspec.Struct, frozen=True):
    """One non-interactive agent run: argv, environment and working directory.

    `argv[0]` is an absolute path to the installed program (never a bare name looked up in
    PATH, nor anything inside the workspace); a Python program runs isolated (`-I`).
    The process gets a minimal base of the user's environment (`environment.BASE`), the
    variables named in `inherit` (those its provider declares, API keys say) and `env`:
    nothing else of the user's environment.

    `launch` is the step's launch nonce: the engine records it on the step (durably) before
    it asks a runtime to start the spec, and the runtime tags what it starts with it (the
    host: the wrapper's argv), so that `locate` accepts only a process that carries it."""

    argv: list[str]
    env: dict[str, str] = msgspec.field(default_factory=dict)
    cwd: str = "."
    inherit: tuple[str, ...] = ()
    launch: str = ""
