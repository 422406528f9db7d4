"""What every `logist` command shares: the parser class, JSON output, the engine."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

import msgspec

from ..errors import UsageError

Handler = Callable[[argparse.Namespace], int]
JSON = msgspec.json.Encoder()


class OneLineParser(argparse.ArgumentParser):
    """argparse that reports bad usage as one line and exit status 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        sys.exit(2)


def out_json(value: Any) -> None:
    sys.stdout.buffer.write(JSON.encode(value) + b"\n")
    sys.stdout.flush()


def start_dir(args: argparse.Namespace) -> Path:
    """`-C DIR` (given before or after the subcommand), else the current directory."""
    return Path(getattr(args, "directory", None) or args.top_directory or ".").resolve()


def engine_for(args: argparse.Namespace):  # type: ignore[no-untyped-def]
    from ..engine import Engine

    return Engine.for_path(start_dir(args))


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
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got '{text}'")
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
