"""The secret a TCP client must show in `initialize`: made per start, or given by the editor.

A made token is written, readable by the user only (0600, in a 0700 directory the user
owns), to `$XDG_RUNTIME_DIR/logist/serve-PORT.token` (else `$XDG_STATE_HOME/logist/`, else
`~/.local/state/logist/`), and removed when the server stops. An editor that starts the
server can pass its own instead: `LOGIST_TOKEN`, or `--token-file FILE` (readable by the
user only).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

from logist_server.domain.errors import UsageError

MIN_TOKEN_LENGTH = 16


def new_token() -> str:
    return secrets.token_urlsafe(32)


def given_token(token_file: str | None) -> str | None:
    """The token the editor passed (`--token-file`, else `LOGIST_TOKEN`), or None."""
    if token_file is not None:
        path = Path(token_file)
        try:
            info = path.stat()
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise UsageError(f"cannot read the token file {path}: {reason}") from None
        if info.st_mode & 0o077:
            raise UsageError(
                f"the token file {path} can be read by other users (run: chmod 600 {path})"
            )
        return _checked(text.strip(), f"the token in {path}")
    env = os.environ.get("LOGIST_TOKEN")
    return None if env is None else _checked(env.strip(), "LOGIST_TOKEN")


def _checked(token: str, what: str) -> str:
    if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
        raise UsageError(f"{what} must be at least {MIN_TOKEN_LENGTH} characters without spaces")
    return token


def token_dir() -> Path:
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    if runtime and os.path.isabs(runtime) and os.path.isdir(runtime):
        return Path(runtime) / "logist"
    state = os.environ.get("XDG_STATE_HOME", "")
    base = Path(state) if state and os.path.isabs(state) else Path.home() / ".local" / "state"
    return base / "logist"


def write_token_file(token: str, port: int) -> Path:
    """Write `token` for clients to read; refuses a directory others could tamper with."""
    directory = token_dir()
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = directory.lstat()
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
            raise UsageError(f"{directory} is not a directory of yours: cannot put a token there")
        if info.st_mode & 0o077:
            os.chmod(directory, 0o700)
        path = directory / f"serve-{port}.token"
        temporary = directory / f".serve-{port}.token.{os.getpid()}.tmp"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            os.write(fd, token.encode() + b"\n")
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except OSError as exc:
        raise UsageError(f"cannot write the token file in {directory}: {exc.strerror}") from None
    return path


def remove_token_file(path: Path, token: str) -> None:
    """Remove the file if it still holds our token (a newer server may own the name)."""
    with contextlib.suppress(OSError):
        if path.read_text().strip() == token:
            path.unlink()
