"""Making any audit event storable on every supported database, one event at a time.

Owns: the per-event step of the writer's prepare that turns whatever a caller sent into
column values SQLite and PostgreSQL both accept, and the bounds on what one event stores:

- text: lone surrogates (``"\\ud800"``: valid JSON, not encodable as UTF-8) and NUL
  (PostgreSQL text rejects it) become U+FFFD, in every string field, argument keys and
  values included;
- identifiers longer than their column (``request_ref`` VARCHAR(256), ``call_id`` ...)
  are cut to fit and end in ``#`` + 12 hex digits of the original's sha256, so equal
  inputs still map to equal stored values;
- reason and error texts are capped at ``TEXT_MAX_CHARS`` the same way;
- arguments nested deeper than ``MAX_DEPTH`` have the deeper part replaced by a marker;
- an argument document larger than its limit (``audit_denied_args_preview_bytes`` for
  denied calls, ``audit_args_max_bytes`` for the rest) is stored as
  ``{"warden/truncated": {"bytes": N, "sha256": H, "preview": "<first bytes>"}}``: H is the
  sha256 of the full redacted document, the preview is its prefix.

Every change is listed in ``Storable.notes`` (the writer appends them to the stored
``error`` text), so an auditor sees what was changed.

Must never: raise on any input (unexpected values become markers), or undo redaction:
everything here runs on already-redacted text or redacts before it cuts.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from gateway.redact import redact_json
from gateway.types import canonical_json

MAX_DEPTH = 64
"""Deepest nesting of arguments stored as sent; anything below is replaced by ``TOO_DEEP``."""
TEXT_MAX_CHARS = 16384
"""Longest reason or error text stored; longer ones are cut (hash suffix)."""
TOO_DEEP = "[nested too deep]"
TRUNCATED_KEY = "warden/truncated"
REPLACEMENT = "\ufffd"

_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")
_HASH_SUFFIX = 13  # "#" + 12 hex digits


def clean_text(value: str) -> str:
    """``value`` with NUL and lone surrogates replaced by U+FFFD (unchanged when it has none)."""
    if value.isascii():
        return value.replace("\x00", REPLACEMENT) if "\x00" in value else value
    return _BAD_CHARS.sub(REPLACEMENT, value) if _BAD_CHARS.search(value) else value


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def fit(value: str, length: int) -> str:
    """``value`` cut to ``length`` characters ending in ``#<12 hex of its sha256>`` when longer."""
    if len(value) <= length:
        return value
    return f"{value[: max(length - _HASH_SUFFIX, 0)]}#{_digest(value)[:12]}"[:length]


def storable_field(name: str, value: str, length: int | None, notes: list[str]) -> str:
    """One string column's value, cleaned and fitted to ``length`` (None: ``TEXT_MAX_CHARS``)."""
    cleaned = clean_text(value)
    if cleaned != value:
        notes.append(f"{name}: invalid characters replaced")
    limit = TEXT_MAX_CHARS if length is None else length
    fitted = fit(cleaned, limit)
    if fitted is not cleaned:
        notes.append(f"{name}: {len(cleaned)} characters cut to {limit}")
    return fitted


def arguments_document(arguments: Mapping[str, Any], fields: frozenset[str], limit: int, notes: list[str]) -> str:
    """The redacted arguments as canonical JSON, made storable and at most about ``limit`` bytes."""
    try:
        text: str | None = redact_json(arguments, fields)
    except (RecursionError, TypeError, ValueError):  # too deep, or keys that cannot be sorted
        text = None
    if text is None or _BAD_CHARS.search(text):  # NUL is escaped by JSON; surrogates are not
        changes: set[str] = set()
        cleaned = _clean_mapping(arguments, 0, changes)
        cleaned = {TRUNCATED_KEY: cleaned} if isinstance(cleaned, str) else cleaned  # depth 0: never a str
        notes.extend(f"arguments: {change}" for change in sorted(changes))
        try:
            text = redact_json(cleaned, fields)
        except Exception:  # boundary: never fail the event for its arguments
            notes.append("arguments: not serializable; replaced by a marker")
            text = canonical_json({TRUNCATED_KEY: {"unstorable": True}})
    size = len(text.encode())
    if size <= limit:
        return text
    notes.append(f"arguments: {size} bytes stored as sha256 and a {limit}-byte preview")
    preview = text.encode()[:limit].decode("utf-8", "ignore")
    return canonical_json({TRUNCATED_KEY: {"bytes": size, "sha256": _digest(text), "preview": preview}})


def _clean_value(value: Any, depth: int, changes: set[str]) -> Any:
    if isinstance(value, str):
        cleaned = clean_text(value)
        if cleaned != value:
            changes.add("invalid characters replaced")
        return cleaned
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, Mapping):
        return _clean_mapping(value, depth, changes)
    if isinstance(value, list | tuple):
        if depth >= MAX_DEPTH:
            changes.add(f"nesting deeper than {MAX_DEPTH} levels replaced")
            return TOO_DEEP
        return [_clean_value(item, depth + 1, changes) for item in value]
    changes.add("non-JSON values stored as text")
    return clean_text(str(value))


def _clean_mapping(value: Mapping[Any, Any], depth: int, changes: set[str]) -> dict[str, Any] | str:
    if depth >= MAX_DEPTH:
        changes.add(f"nesting deeper than {MAX_DEPTH} levels replaced")
        return TOO_DEEP
    out: dict[str, Any] = {}
    for key, item in value.items():
        name = clean_text(key if isinstance(key, str) else str(key))
        if name != key:
            changes.add("invalid characters replaced" if isinstance(key, str) else "non-text keys stored as text")
        while name in out:  # two keys cleaned to the same text: keep both
            name += REPLACEMENT
        out[name] = _clean_value(item, depth + 1, changes)
    return out
