"""What links audit records: the hash of one record from its predecessor's hash and its fields.

Owns: ``GENESIS_HASH``, the fields a record's hash covers (per record version: 2 added ``risk``, 3 the
size and sha256 of returned contents, ``content_bytes`` / ``content_sha256``) and
``chain_hash``. The writer computes hashes with it (``audit/rows.py`` serializes,
``audit/append.py`` chains); the verifier (``audit/verify.py``) recomputes them. Changing
anything here invalidates every stored chain: add a record version instead.

Must never: read or write the database.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from gateway.types import canonical_json

GENESIS_HASH = "0" * 64
"""``prev_hash`` of the first record."""

HASHED_FIELDS = (
    "seq", "call_id", "phase", "method", "ts", "identity", "server", "tool", "arguments", "args_hash", "effect",
    "rule_ids", "reason", "outcome", "error", "approval_id", "latency_policy_ms", "latency_upstream_ms",
    "latency_total_ms", "request_ref", "version", "risk", "content_bytes", "content_sha256",
)  # fmt: skip
"""Fields covered by ``hash`` (record version 3): every column except prev_hash and hash."""
HASHED_FIELDS_V2 = HASHED_FIELDS[:-2]
"""Record version 2 (before the content fields). A version 2 record with content fields set is hashed
with them (as for ``risk`` in version 1), so content written into an old record is caught."""
HASHED_FIELDS_V1 = HASHED_FIELDS_V2[:-1]
"""Record version 1 (before ``risk``): every column of its time except prev_hash and hash. A version 1
record whose ``risk`` is not empty is hashed with it, so a risk written into an old record is caught."""


def chain_hash(prev_hash: str, fields: Mapping[Any, Any]) -> str:
    """The hash of one record from its predecessor's hash and its stored field values.

    ``ts`` may be an aware datetime or the ISO text of one in UTC (as ``hash_ts`` gives).
    """
    names = hashed_names(int(fields["version"]), fields)
    hashed = {name: fields[name] for name in names}
    ts = hashed["ts"]
    hashed["ts"] = hash_ts(ts) if isinstance(ts, datetime) else ts
    return hashlib.sha256((prev_hash + canonical_json(hashed)).encode()).hexdigest()


def hashed_names(version: int, fields: Mapping[Any, Any]) -> tuple[str, ...]:
    """The fields a record of ``version`` is hashed over, given its values (see the HASHED_FIELDS notes)."""
    if version >= 3 or fields.get("content_bytes") is not None or fields.get("content_sha256"):
        return HASHED_FIELDS
    return HASHED_FIELDS_V2 if version >= 2 or fields.get("risk") else HASHED_FIELDS_V1


def hash_ts(ts: datetime) -> str:
    """How a timestamp enters the hash: ISO 8601 in UTC."""
    return ts.astimezone(UTC).isoformat()


def canonical_encoder() -> Callable[[Any], str]:
    """``types.canonical_json`` for a dict or a list, with the encoder built once (same text, less per-call work).

    Uses the C encoder behind ``json.dumps`` directly where CPython has it, else ``JSONEncoder.encode``.
    """
    encoder = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    make = getattr(json.encoder, "c_make_encoder", None)
    if make is None:
        return encoder.encode
    iterencode = make(None, str, json.encoder.encode_basestring, None, ":", ",", True, False, True)
    return lambda value: "".join(iterencode(value, 0))


def stored_ts(value: Any) -> datetime:
    """A timestamp as a driver returns it without type processing (SQLite: text), as aware UTC.

    Raises ``ValueError`` when ``value`` is not a timestamp.
    """
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise ValueError(f"not a timestamp: {value!r}")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
