"""A Logist-side launcher: copy API keys into the variable names an agent reads, then exec it.

`python -I -m logist_server.providers.agents.env_alias TARGET=SOURCE... -- PROGRAM ARG...`
sets each TARGET to the value of SOURCE (when SOURCE is set) and replaces itself with
PROGRAM (an absolute path). A key named by a job's `api_key_env` thus reaches an agent that
only reads, say, `OPENAI_API_KEY`, without the value ever being on a command line or in a
file. Standard library only.
"""

from __future__ import annotations

import os
import sys


def main(argv: list[str]) -> int:
    if "--" not in argv:
        print("env_alias: usage: TARGET=SOURCE... -- PROGRAM ARG...", file=sys.stderr)
        return 2
    split = argv.index("--")
    pairs, command = argv[:split], argv[split + 1 :]
    if not command or not os.path.isabs(command[0]):
        print("env_alias: the program must be an absolute path", file=sys.stderr)
        return 2
    for pair in pairs:
        target, _, source = pair.partition("=")
        value = os.environ.get(source)
        if target and value is not None:
            os.environ[target] = value
    os.execv(command[0], command)
    return 127  # not reached


def command(aliases: dict[str, str], argv: list[str]) -> list[str]:
    """The launcher's command line for `argv` with `aliases` (target -> source)."""
    launcher = [sys.executable, "-I", "-m", "logist_server.providers.agents.env_alias"]
    return [*launcher, *(f"{t}={s}" for t, s in sorted(aliases.items())), "--", *argv]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
