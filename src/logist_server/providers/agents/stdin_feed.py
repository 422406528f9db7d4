"""Hand an agent its prompt on stdin, not on its command line.

    python -I -m logist_server.providers.agents.stdin_feed [--file PATH] [--text TEXT] -- ARGV...

One argument may not exceed 128 KiB on Linux (E2BIG) and a rework or supervisor prompt
carries a diff (up to 256 KiB); an argument is also readable by every local user (`ps`,
`/proc/PID/cmdline`). This launcher puts PATH's content followed by TEXT (a short
addition, such as the user's answer) on fd 0, then replaces itself with ARGV (same pid: the
runtime's kill and lookup still hold). ARGV[0] must be an absolute path. Only the standard
library is used; `command` builds the launcher's own argv."""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

MODULE = "logist_server.providers.agents.stdin_feed"


def command(argv: Sequence[str], file: str | None = None, text: str = "") -> list[str]:
    """The argv that runs `argv` with `file`'s content, then `text`, on its stdin."""
    launcher = [sys.executable, "-I", "-m", MODULE]
    if file is not None:
        launcher += ["--file", file]
    if text:
        launcher += ["--text", text]
    return [*launcher, "--", *argv]


def answer_text(answer: str | None) -> str:
    """The `text` that follows a step's prompt: the user's answer to a question, if any."""
    if answer is not None:
        return f"\n\nThe user's answer to your question: {answer}"
    return ""


def _stdin(file: str | None, text: str) -> int:
    """A readable fd holding the prompt: the file itself, or a memfd with file + text."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
    if not text and file is not None:
        return os.open(file, flags)
    data = b""
    if file is not None:
        fd = os.open(file, flags)
        with os.fdopen(fd, "rb") as f:
            data = f.read()
    fd = os.memfd_create("logist-prompt", os.MFD_CLOEXEC)
    view = memoryview(data + text.encode())
    while view:
        view = view[os.write(fd, view) :]
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


def parse(args: Sequence[str]) -> tuple[str | None, str, list[str]]:
    """The file, text and program argv of the launcher's arguments (ValueError if bad)."""
    file: str | None = None
    text = ""
    rest = list(args)
    while rest and rest[0] != "--":
        if len(rest) < 2 or rest[0] not in ("--file", "--text"):
            raise ValueError(f"unexpected argument {rest[0]!r}")
        if rest[0] == "--file":
            file = rest[1]
        else:
            text = rest[1]
        rest = rest[2:]
    argv = rest[1:]
    if not argv or not os.path.isabs(argv[0]):
        raise ValueError("the program must be an absolute path")
    return file, text, argv


def unwrap(argv: Sequence[str]) -> tuple[str | None, str, list[str]]:
    """For a `command` argv: the file, text and program argv it runs (else None, "", argv)."""
    if list(argv[1:4]) == ["-I", "-m", MODULE]:
        return parse(argv[4:])
    return None, "", list(argv)


def main(args: list[str]) -> int:
    try:
        file, text, argv = parse(args)
    except ValueError as err:
        sys.stderr.write(f"logist stdin_feed: {err}\n")
        return 2
    try:
        fd = _stdin(file, text)
        if fd != 0:
            os.dup2(fd, 0)
            os.close(fd)
        os.set_inheritable(0, True)
        os.execv(argv[0], argv)
    except OSError as err:
        sys.stderr.write(f"logist stdin_feed: cannot start {argv[0]}: {err}\n")
        return 2
    return 2  # not reached: execv does not return


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
