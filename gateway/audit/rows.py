"""Shaping one audit event into the row the writer stores: redacted, storable, serialized.

Owns: ``prepare()``, which turns an ``AuditEvent`` into a ``PreparedEvent``: its arguments
redacted (policy fields plus secret shapes) and its reason and error texts too (also of the
arguments' secret values), every field made storable by ``audit/storable.py`` (invalid
characters, over-long identifiers, deep nesting, size caps: ``StorageLimits``), each change
noted at the end of the stored ``error``, and the hashed fields serialized once as canonical
JSON (``audit/chain.py``), split around ``seq`` so chaining it later costs one sha256.
The writer runs it on the caller's loop, beside the previous batch's commit.

Must never: touch the database or the chain state (the seq and the previous hash are given
to ``PreparedEvent.chained`` by the writer thread), fail for what a caller sent, or let an
unredacted argument or error text through.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Table

from gateway.audit.chain import HASHED_FIELDS, canonical_encoder, hash_ts, hashed_names
from gateway.audit.storable import TEXT_MAX_CHARS, arguments_document, clean_text, fit, storable_field
from gateway.models import AuditRecord
from gateway.redact import redact_secret_values, redact_text
from gateway.types import AuditEvent

_EVENTS: Table = AuditRecord.__table__  # type: ignore[attr-defined]
_TS = HASHED_FIELDS.index("ts")
_SEQ_KEY = '"seq":'
_ENCODE = canonical_encoder()
_LENGTHS: dict[str, int | None] = {c.name: getattr(c.type, "length", None) for c in _EVENTS.c}


@dataclass(frozen=True, slots=True)
class StorageLimits:
    """How much of one event's arguments is stored (see ``audit/storable.py``)."""

    args_max_bytes: int = 65536
    """An argument document larger than this is stored as sha256 + a preview of this many bytes."""
    denied_args_preview_bytes: int = 1024
    """The same for denied calls: they keep at most this many bytes of their arguments."""


@dataclass(frozen=True, slots=True)
class PreparedEvent:
    """An event made storable before it has a place in the chain: redacted and serialized.

    ``head`` and ``tail`` are the canonical JSON of its hashed fields split around the
    value of ``seq``, so chaining it costs one sha256: ``sha256(prev + head + seq + tail)``
    (the same text ``chain_hash`` hashes). ``values`` are its columns after ``seq`` and
    before ``prev_hash``, as the driver stores them.
    """

    values: tuple[Any, ...]
    head: str
    tail: str

    @property
    def call_id(self) -> str:
        """The stored ``call_id`` (for the operator log)."""
        return str(self.values[0])

    def chained(self, seq: int, prev_hash: str) -> tuple[tuple[Any, ...], str]:
        """The row to insert at ``seq`` after ``prev_hash`` (``insert.ROW_COLUMNS`` order), and its hash."""
        digest = hashlib.sha256(f"{prev_hash}{self.head}{seq}{self.tail}".encode()).hexdigest()
        return (seq, *self.values, prev_hash, digest), digest


def _float(value: float | None) -> float | None:
    return None if value is None else float(value)


@lru_cache(maxsize=1024)
def _rule_ids_json(rule_ids: tuple[str, ...]) -> str:
    return _ENCODE(list(rule_ids))


@lru_cache(maxsize=4096)
def _redacted_reason(reason: str) -> str:
    """Reasons come from policy files and repeat: redact each distinct one once."""
    return redact_text(reason)


def _texts(event: AuditEvent, redact_fields: frozenset[str], notes: list[str]) -> tuple[str, str]:
    """The reason and error as stored: redacted (also of the arguments' secret values), storable."""
    reason = _redacted_reason(event.reason)
    error = redact_text(event.error) if event.error else ""
    if error or (reason and redact_fields):  # errors echo arguments: a redacted value must not survive there
        error = redact_secret_values(error, event.arguments, redact_fields)
        reason = redact_secret_values(reason, event.arguments, redact_fields)
    return storable_field("reason", reason, None, notes), storable_field("error", error, None, notes)


def prepare(
    event: AuditEvent, redact_fields: frozenset[str], store_ts: Callable[[Any], Any], limits: StorageLimits
) -> PreparedEvent:
    """Redact, make storable (``audit/storable.py``) and serialize ``event`` (its time defaults to now).

    CPU only; no chain state. Never fails for what the caller sent: every change made to
    store it is noted at the end of the stored ``error``. ``store_ts`` gives the time as the
    driver stores it (``insert.RowInserter.store_ts``).
    """
    ts = event.ts or datetime.now(UTC)
    ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    notes: list[str] = []

    def column(name: str, value: str | None) -> str | None:
        return None if value is None else storable_field(name, value, _LENGTHS[name], notes)

    limit = limits.denied_args_preview_bytes if event.effect == "deny" else limits.args_max_bytes
    arguments = arguments_document(event.arguments, redact_fields, limit, notes)
    request_ref = None if event.request_ref is None else column("request_ref", redact_text(event.request_ref))
    reason, error = _texts(event, redact_fields, notes)
    fields: dict[str, Any] = {  # in HASHED_FIELDS order
        "seq": 0,
        "call_id": column("call_id", event.call_id),
        "phase": column("phase", event.phase),
        "method": column("method", event.method),
        "ts": hash_ts(ts),
        "identity": column("identity", event.identity),
        "server": column("server", event.server),
        "tool": column("tool", event.tool),
        "arguments": arguments,
        "args_hash": column("args_hash", event.args_hash),
        "effect": column("effect", event.effect),
        "rule_ids": _rule_ids_json(tuple(clean_text(r) for r in event.rule_ids)),
        "reason": reason,
        "outcome": column("outcome", event.outcome),
        "error": error,
        "approval_id": column("approval_id", event.approval_id),
        # Floats as stored: an int latency would read back as 5.0 and change the hash.
        "latency_policy_ms": _float(event.latency_policy_ms),
        "latency_upstream_ms": _float(event.latency_upstream_ms),
        "latency_total_ms": _float(event.latency_total_ms),
        "request_ref": request_ref,
        "version": int(event.version),
        "risk": event.risk,
        "content_bytes": event.content_bytes,
        "content_sha256": column("content_sha256", event.content_sha256),
    }
    if notes:  # every change made to store the event, for the auditor
        fields["error"] = fit(f"{error}\n[audit: {'; '.join(notes)}]".lstrip("\n"), TEXT_MAX_CHARS)
    names = hashed_names(event.version, fields)
    text = _ENCODE(fields if len(names) == len(fields) else {k: fields[k] for k in names})
    # Only a top-level key can read '"seq":' (a quote inside a JSON string is escaped).
    at = text.index(_SEQ_KEY) + len(_SEQ_KEY)
    values = list(fields.values())
    values[_TS] = store_ts(ts)
    return PreparedEvent(tuple(values[1:]), text[:at], text[at + 1 :])
