r"""Redaction of declared secrets: their values become `***` wherever Logist writes text.

A provider names its secret environment variables (`AgentProvider.secret_env`); the names
are declared here by whatever process may write a job's text, not only by the one that built
its step: the provider registry adds a *source* (`add_source`: every registered provider's
names, resolved on first use) and a process that loads a job declares the names the job
carries (its `runtime_options.env` allow-list). `redact_bytes`/`redact_text` then replace
every occurrence of those variables' current values (from this process's environment) by
`***`, in raw form and in every JSON-escaped form (`"`, `\`, control characters, non-ASCII),
so a value is masked whether it is written as text or inside encoded JSON. Values shorter
than `MIN_LENGTH` are ignored: replacing `1` or `ab` everywhere would destroy text and hide
nothing.
"""

from __future__ import annotations

import functools
import json
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
_sources: list[Callable[[], Iterable[str]]] = []
_resolving = threading.local()
_resolve_lock = threading.Lock()
_factory: Callable[..., logging.LogRecord] | None = None


def declare(names: Iterable[str]) -> None:
    """Treat these environment variables' values as secrets from now on; from the first
    one on, every log record's message is masked too (`_masked_record`)."""
    with _lock:
        _names.update(names)
        if _names and _factory is None:
            _install_factory()


def add_source(source: Callable[[], Iterable[str]]) -> None:
    """`source()` names more secrets; it is called once, the first time values are needed
    (so a registry does not import every provider until something is written)."""
    with _lock:
        _sources.append(source)
        if _factory is None:
            _install_factory()


def _install_factory() -> None:
    global _factory
    _factory = logging.getLogRecordFactory()
    logging.setLogRecordFactory(_masked_record)


def _resolve_sources() -> None:
    """Run the pending sources; another thread asking meanwhile waits for them (it must not
    mask with half the names)."""
    if getattr(_resolving, "active", False):
        return  # a source's own import is logging: no recursion
    if not _sources and not _resolve_lock.locked():
        return  # nothing pending, nobody resolving
    with _resolve_lock:
        _resolving.active = True
        try:
            while True:
                with _lock:
                    if not _sources:
                        return
                    source = _sources.pop(0)
                try:
                    names = list(source())
                except Exception as exc:  # a broken source must not stop every write
                    logging.getLogger(__name__).warning("secret names unknown: %s", exc)
                    continue
                declare(names)
        finally:
            _resolving.active = False


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
    _resolve_sources()
    with _lock:
        names = sorted(_names)
    values = {env[name] for name in names if len(env.get(name, "")) >= MIN_LENGTH}
    return sorted(values, key=len, reverse=True)


def encoded_forms(value: str) -> list[str]:
    """`value` and the forms JSON encoders write it in (escaped quotes, backslashes and
    control characters; non-ASCII as is or as `\\uXXXX`; `/` as is or as `\\/`), longest
    first: text that holds any of them holds the secret."""
    forms = {value}
    for ascii_only in (False, True):
        escaped = json.dumps(value, ensure_ascii=ascii_only)[1:-1]
        forms |= {escaped, escaped.replace("/", "\\/"), _upper_hex(escaped)}
    return sorted(forms, key=len, reverse=True)


def _upper_hex(escaped: str) -> str:
    """`\\u001f` as some encoders write it: `\\u001F`."""
    parts = escaped.split("\\u")
    return "\\u".join([parts[0], *(p[:4].upper() + p[4:] for p in parts[1:])])


def _forms(environ: Mapping[str, str] | None) -> tuple[str, ...]:
    return _forms_of(tuple(secret_values(environ)))


@functools.lru_cache(maxsize=8)
def _forms_of(values: tuple[str, ...]) -> tuple[str, ...]:
    """Every form of these values, longest first: computed once per set of values, not per
    event row or log record (the job event stream masks each one)."""
    forms = {form for value in values for form in encoded_forms(value)}
    return tuple(sorted(forms, key=len, reverse=True))


def redact_text(text: str, environ: Mapping[str, str] | None = None) -> str:
    for value in _forms(environ):
        text = text.replace(value, MASK)
    return text


def redact_bytes(data: bytes, environ: Mapping[str, str] | None = None) -> bytes:
    for value in _forms(environ):
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
