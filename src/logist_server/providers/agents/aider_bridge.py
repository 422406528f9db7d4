"""A Logist-side launcher for aider that makes its exit status honest (standard library and
`env_alias` only).

aider exits 0 even when every model call failed (a wrong key, a rate limit, a refused
budget): it prints the error and stops. This launcher runs aider, passes its output through
unchanged, and when aider exits 0 without having applied any edit but printed model errors,
it prints one `Logist: ...` line with the last error and exits 1, so the step fails with
that reason instead of ending in review with nothing.

Before it starts aider it refuses a workspace that holds files aider reads from the
repository and that can redirect its API key or run commands (`.env`, `.aider.conf.yml`,
`.aider.model.settings.yml`, `.aider.model.metadata.json`): the repository may be hostile.

`python -I -m logist_server.providers.agents.aider_bridge [--alias T=S]... [--note TEXT]
-- /abs/aider ARG...`
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from types import FrameType

from logist_server.providers.agents import env_alias

#: Files in the repository aider reads on its own (its config, dotenv and model settings).
REPO_FILES = (".env", ".aider.conf.yml", ".aider.model.settings.yml", ".aider.model.metadata.json")
APPLIED = re.compile(r"^Applied edit to ")
#: aider's report of a failed model call (litellm's exception, then aider's explanation).
ERROR = re.compile(r"^(?:(?:litellm|openai|anthropic)\.\w*(?:Error|Exception)\b|The API provider )")
PREFIX = "Logist: "


def main(argv: list[str]) -> int:
    aliases: dict[str, str] = {}
    notes: list[str] = []
    while argv and argv[0] != "--":
        flag, value, argv = argv[0], argv[1] if len(argv) > 1 else "", argv[2:]
        if flag == "--alias":
            target, _, source = value.partition("=")
            aliases[target] = source
        elif flag == "--note":
            notes.append(value)
    command = argv[1:]
    if not command or not os.path.isabs(command[0]):
        print(f"{PREFIX}aider_bridge needs the absolute path of aider", flush=True)
        return 2
    found = [name for name in REPO_FILES if os.path.lexists(name)]
    if found:
        print(
            f"{PREFIX}refusing to run aider: the repository holds {', '.join(found)}, which "
            "aider would read (they can redirect its API key or run commands)",
            flush=True,
        )
        return 2
    env_alias.copy(aliases, os.environ)  # the one key handoff every launcher uses
    for note in notes:
        print(f"{PREFIX}{note}", flush=True)
    return run(command)


def run(command: list[str]) -> int:
    child = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )

    def forward(signum: int, _frame: FrameType | None) -> None:
        child.send_signal(signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    applied = False
    last_error: str | None = None
    assert child.stdout is not None
    out = sys.stdout.buffer
    for raw in child.stdout:
        out.write(raw)
        out.flush()
        line = raw.decode("utf-8", "replace").rstrip("\r\n")
        if APPLIED.match(line):
            applied = True
        elif ERROR.match(line):
            last_error = line.strip()
    code = child.wait()
    if code != 0:
        return code if code > 0 else 128 - code
    if not applied and last_error is not None:
        print(f"{PREFIX}aider made no edit and its model calls failed: {last_error}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
