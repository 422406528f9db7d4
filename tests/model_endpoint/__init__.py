"""A scripted model endpoint for the real-agent tests (interface: README.md)."""

from __future__ import annotations

from .dialects import Dialect, load, request_json
from .server import FINAL_TEXT, ModelEndpoint, RequestLog, Turn
from .tokens import tokens

__all__ = [
    "FINAL_TEXT",
    "Dialect",
    "ModelEndpoint",
    "RequestLog",
    "Turn",
    "load",
    "request_json",
    "tokens",
]
