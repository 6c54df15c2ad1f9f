"""Client-facing pagination of list results (tools/list; any list the gateway assembles itself).

A cursor is opaque to the client: ``w1.<offset>`` in URL-safe base64. It names a position in
the list as the caller sees it now, nothing else: it carries no identity, tool name or
catalog state, so a cursor copied from another identity only pages through the caller's own
list. A list that shrank between two pages ends early (an empty last page), never an error.

Never: accepts a cursor it did not make. Anything that does not decode to ``w1.<offset>`` with
0 < offset raises ``BadCursor``, which the MCP front answers as JSON-RPC -32602.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")

_PREFIX = "w1."
MAX_CURSOR_CHARS = 64


class BadCursor(ValueError):
    """The client sent a cursor this gateway did not hand out."""


def encode(offset: int) -> str:
    return base64.urlsafe_b64encode(f"{_PREFIX}{offset}".encode()).decode().rstrip("=")


def decode(cursor: str) -> int:
    if len(cursor) > MAX_CURSOR_CHARS:
        raise BadCursor("cursor too long")
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadCursor("cursor does not decode") from None
    digits = text.removeprefix(_PREFIX)
    if not text.startswith(_PREFIX) or not digits.isdigit() or int(digits) <= 0 or encode(int(digits)) != cursor:
        raise BadCursor("cursor was not issued by this gateway")
    return int(digits)


def page(items: Sequence[T], cursor: str | None, size: int) -> tuple[list[T], str | None]:
    """The page ``cursor`` points at (the first page without one) and the next page's cursor."""
    start = decode(cursor) if cursor is not None else 0
    if size <= 0:
        return list(items[start:]), None
    end = start + size
    return list(items[start:end]), encode(end) if end < len(items) else None
