"""Redaction of declared secrets: their values become `***` wherever Logist writes text.

A provider names its secret environment variables (`AgentProvider.secret_env`); when Logist
builds a run for it, `declare` adds those names here. `redact_bytes`/`redact_text` then
replace every occurrence of those variables' current values (from this process's
environment) by `***`. Values shorter than `MIN_LENGTH` are ignored: replacing `1` or `ab`
everywhere would destroy text and hide nothing.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from logist_server.support.fsutil import atomic_write

MASK = "***"
MIN_LENGTH = 4

_lock = threading.Lock()
_names: set[str] = set()
_factory: Callable[..., logging.LogRecord] | None = None


def declare(names: Iterable[str]) -> None:
    """Treat these environment variables' values as secrets from now on; from the first
    one on, every log record's message is masked too (`_masked_record`)."""
    global _factory
    with _lock:
        _names.update(names)
        if _names and _factory is None:
            _factory = logging.getLogRecordFactory()
            logging.setLogRecordFactory(_masked_record)


def _masked_record(*args: Any, **kwargs: Any) -> logging.LogRecord:
    """A log record (of any logger) whose message has the secrets masked."""
    assert _factory is not None
    record = _factory(*args, **kwargs)
    message = record.getMessage()
    masked = redact_text(message)
    if masked != message:
        record.msg, record.args = masked, ()
    return record


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """The values to hide, longest first (so a value containing another is masked whole)."""
    env = os.environ if environ is None else environ
    with _lock:
        names = sorted(_names)
    values = {env[name] for name in names if len(env.get(name, "")) >= MIN_LENGTH}
    return sorted(values, key=len, reverse=True)


def redact_text(text: str, environ: Mapping[str, str] | None = None) -> str:
    for value in secret_values(environ):
        text = text.replace(value, MASK)
    return text


def redact_bytes(data: bytes, environ: Mapping[str, str] | None = None) -> bytes:
    for value in secret_values(environ):
        data = data.replace(value.encode("utf-8", "surrogateescape"), MASK.encode())
    return data


def scrub_file(path: Path) -> None:
    """Rewrite `path` (atomically, same mode) with every secret masked, if it holds one."""
    if not secret_values():
        return  # nothing declared and set: do not read a possibly large output file
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return
    clean = redact_bytes(data)
    if clean != data:
        atomic_write(path, clean, mode=path.stat().st_mode & 0o777)
