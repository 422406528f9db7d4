"""The endpoint's token count, the same for every dialect: bytes / 4, rounded up."""

from __future__ import annotations


def tokens(data: bytes | str) -> int:
    """Tokens for `data`: its UTF-8 size divided by 4, rounded up (0 for nothing)."""
    size = len(data.encode() if isinstance(data, str) else data)
    return (size + 3) // 4
