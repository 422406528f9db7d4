"""What every `logist` command shares: the parser class, JSON output, the engine."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import msgspec

from logist_server.domain.errors import UsageError
from logist_server.support.redaction import redact_bytes

Handler = Callable[[argparse.Namespace], int]
JSON = msgspec.json.Encoder()


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports bad usage as one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        if message.endswith("expected one argument"):  # `--file -rf`: the value looks like a flag
            message += " (a value that starts with '-' is given as --flag=VALUE)"
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def out_json(value: Any) -> None:
    sys.stdout.buffer.write(redact_bytes(JSON.encode(value)) + b"\n")  # declared secrets
    sys.stdout.flush()


def start_dir(args: argparse.Namespace) -> Path:
    """`-C DIR` (given before or after the subcommand), else the current directory."""
    given = getattr(args, "directory", None) or args.top_directory
    if given and not os.path.isdir(given):
        why = "no such directory" if not os.path.lexists(given) else "not a directory"
        raise UsageError(f"-C {given}: {why}")
    return Path(given or ".").resolve()


def engine_for(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from logist_server.engine.facade import Engine

    return Engine.for_path(start_dir(args))


def read_text_file(path: Path, flag: str, given: str) -> str:
    """The UTF-8 text of the file a flag names; a UsageError names the flag and the file."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {flag} {given}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UsageError(
            f"{flag} {given} is not UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x})"
        ) from None


def parse_kv(items: Sequence[str], flag: str) -> dict[str, str]:
    result: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"{flag} expects KEY=VALUE, got '{item}'")
        result[key] = value
    return result


def _whole(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got '{text}'") from None


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive finite number, got '{text}'")
    return value


def positive_int(text: str) -> int:
    value = _whole(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got '{text}'")
    return value


def non_negative_int(text: str) -> int:
    value = _whole(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected zero or more, got '{text}'")
    return value


def bounded(parse: Callable[[str], int], most: int) -> Callable[[str], int]:
    """`parse`, then at most `most` (the bounds configuration files have too)."""

    def check(text: str) -> int:
        value = parse(text)
        if value > most:
            raise argparse.ArgumentTypeError(f"expected at most {most}, got '{text}'")
        return value

    return check
