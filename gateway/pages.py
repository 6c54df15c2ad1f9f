"""Client-facing pages of the lists the gateway aggregates (resources, templates, prompts).

Owns: cutting one identity's filtered list into pages and the opaque cursor of the next
page. A cursor only says where the next page starts in the list the caller may see, so a
forged or replayed cursor can at most show another page of that same list; a cursor that
does not parse is refused (``BadCursor``), never read as the first page.

Must never: carry anything of another identity's list, or a name or URI, in a cursor.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import TypeVar

import mcp_types as types
from mcp.shared.exceptions import MCPError

from gateway import answers

T = TypeVar("T")

_TAG = "warden-page:"


class BadCursor(ValueError):
    """The cursor is not one the gateway handed out."""


def page(items: Sequence[T], cursor: str | None, size: int) -> tuple[list[T], str | None]:
    """The page of ``items`` starting at ``cursor`` (None: the first) and the cursor of the next one."""
    start = 0 if cursor is None else _offset(cursor)
    end = start + max(1, size)
    return list(items[start:end]), (_cursor(end) if end < len(items) else None)


def _cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"{_TAG}{offset}".encode()).decode()


def _offset(cursor: str) -> int:
    if len(cursor) > 64:
        raise BadCursor("cursor too long")
    try:
        text = base64.urlsafe_b64decode(cursor.encode("ascii")).decode()
    except (binascii.Error, UnicodeError, ValueError) as exc:
        raise BadCursor("cursor does not decode") from exc
    number = text.removeprefix(_TAG)
    if number == text or not number.isdigit() or len(number) > 9:
        raise BadCursor("not a gateway cursor")
    return int(number)


def paged(items: Sequence[T], cursor: str | None, size: int) -> tuple[list[T], str | None]:
    """``page``, with a bad cursor answered as the JSON-RPC error INVALID_PARAMS."""
    try:
        return page(items, cursor, size)
    except BadCursor:
        raise MCPError(types.INVALID_PARAMS, answers.bad_cursor()) from None
