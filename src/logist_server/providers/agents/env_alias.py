"""A Logist-side launcher: copy API keys into the variable names an agent reads, then exec it.

`python -I -m logist_server.providers.agents.env_alias TARGET=SOURCE... -- PROGRAM ARG...`
sets each TARGET to the value of SOURCE (when SOURCE is set) and replaces itself with
PROGRAM (an absolute path). A key named by a job's `api_key_env` thus reaches an agent that
only reads, say, `OPENAI_API_KEY`, without the value ever being on a command line, in a
file or in the `ProcessSpec` (a runtime sees the variable's name only). `copy` is the one
way every Logist-side launcher does it (this one, `aider_bridge`, `claude_bridge`).
Standard library only.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, MutableMapping


def main(argv: list[str]) -> int:
    if "--" not in argv:
        print("env_alias: usage: TARGET=SOURCE... -- PROGRAM ARG...", file=sys.stderr)
        return 2
    split = argv.index("--")
    pairs, command = argv[:split], argv[split + 1 :]
    if not command or not os.path.isabs(command[0]):
        print("env_alias: the program must be an absolute path", file=sys.stderr)
        return 2
    aliases = {}
    for pair in pairs:
        target, _, source = pair.partition("=")
        aliases[target] = source
    copy(aliases, os.environ)
    os.execv(command[0], command)
    return 127  # not reached


def copy(
    aliases: Mapping[str, str], environ: MutableMapping[str, str], *, clear: bool = False
) -> None:
    """Set each target of `aliases` (target -> source) in `environ` to its source's value
    when the source is set; `clear`: else set the target empty (the agent must not fall
    back on a key it inherited when the job named another)."""
    for target, source in aliases.items():
        if not target:
            continue
        value = environ.get(source) if source else None
        if value is not None:
            environ[target] = value
        elif clear:
            environ[target] = ""


def command(aliases: dict[str, str], argv: list[str]) -> list[str]:
    """The launcher's command line for `argv` with `aliases` (target -> source)."""
    launcher = [sys.executable, "-I", "-m", "logist_server.providers.agents.env_alias"]
    return [*launcher, *(f"{t}={s}" for t, s in sorted(aliases.items())), "--", *argv]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
