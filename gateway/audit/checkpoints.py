"""Signed checkpoints of the audit chain: Ed25519 keys, the signed message, signature checks.

Owns: what a checkpoint says and how it is signed. A checkpoint states "the chain at
``seq`` ended in ``hash``"; its signature covers its kind, seq, hash, the seq of the
checkpoint before it (``prev_seq``), its time and the signing key's id. The audit writer
stores one every ``audit_checkpoint_every`` events; a prune stores an ``anchor`` (the
last deleted event) where the remaining chain starts.

Why: the hash chain alone shows edits made without recomputing hashes. Anyone able to
write the database can also recompute every hash after an edit; they cannot forge a
signature without the private key, so a rewrite is caught at the next checkpoint. What
comes after the newest checkpoint is protected by the chain only: deleting or rewriting
that tail (with recomputed hashes) cannot be detected. The writer signs one at start, every
``audit_checkpoint_interval_s`` seconds and at shutdown too; ``warden audit checkpoint --out``
exports the newest as an anchor to keep elsewhere (``verify --anchor``; see ``verify.py``).

Keys: ``audit_signing_key`` is the base64 of a 32-byte Ed25519 seed (``warden audit
keygen`` makes one); verifying needs only the public half (``audit_public_key``, or
derived from the signing key). A key's id is the first 16 hex digits of sha256 of its
raw public key.

Must never: touch the database (``audit/append.py`` writes checkpoints, ``audit/verify.py``
reads them) or log a private key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.types import canonical_json

CheckpointKind = Literal["checkpoint", "anchor"]


def _raw_public(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def key_id(key: Ed25519PublicKey) -> str:
    return hashlib.sha256(_raw_public(key)).hexdigest()[:16]


def _decode32(value: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(value.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what} is not valid base64") from None
    if len(raw) != 32:
        raise ValueError(f"{what} must be 32 bytes, base64-encoded (got {len(raw)} bytes)")
    return raw


@dataclass(frozen=True, slots=True)
class Signer:
    """An Ed25519 private key that signs checkpoints."""

    private: Ed25519PrivateKey

    @classmethod
    def from_base64(cls, seed: str) -> Signer:
        """Raises ``ValueError`` naming the setting when ``seed`` is not a base64 32-byte seed."""
        return cls(Ed25519PrivateKey.from_private_bytes(_decode32(seed, "audit_signing_key")))

    @property
    def public(self) -> Ed25519PublicKey:
        return self.private.public_key()

    @property
    def key_id(self) -> str:
        return key_id(self.public)

    def sign(self, kind: CheckpointKind, seq: int, hash_: str, prev_seq: int, ts: datetime) -> str:
        return base64.b64encode(self.private.sign(message(kind, seq, hash_, prev_seq, ts, self.key_id))).decode()


def load_public_key(value: str) -> Ed25519PublicKey:
    """Raises ``ValueError`` naming the setting when ``value`` is not a base64 32-byte public key."""
    return Ed25519PublicKey.from_public_bytes(_decode32(value, "audit_public_key"))


def audit_keys(signing_key: str | None, public_key: str | None) -> tuple[Signer | None, Ed25519PublicKey | None]:
    """The signer and the verifying key the settings give. Raises ``ValueError`` naming a bad setting."""
    signer = Signer.from_base64(signing_key) if signing_key else None
    public = load_public_key(public_key) if public_key else (signer.public if signer is not None else None)
    if signer is not None and public is not None and key_id(public) != signer.key_id:
        raise ValueError("audit_public_key is not the public half of audit_signing_key")
    return signer, public


def public_key_base64(key: Ed25519PublicKey) -> str:
    return base64.b64encode(_raw_public(key)).decode()


def new_signing_key() -> tuple[str, str]:
    """A fresh ``(seed, public key)``, both base64."""
    private = Ed25519PrivateKey.generate()
    seed = private.private_bytes_raw()
    return base64.b64encode(seed).decode(), public_key_base64(private.public_key())


def message(kind: str, seq: int, hash_: str, prev_seq: int, ts: datetime, key: str) -> bytes:
    """The exact bytes a checkpoint signature covers."""
    when = ts.astimezone(UTC).isoformat()
    fields = {"v": 1, "kind": kind, "seq": seq, "hash": hash_, "prev_seq": prev_seq, "ts": when, "key_id": key}
    return canonical_json(fields).encode()


def signature_valid(
    public: Ed25519PublicKey, kind: str, seq: int, hash_: str, prev_seq: int, ts: datetime, key: str, signature: str
) -> bool:
    """Whether ``signature`` is ``public``'s signature of this checkpoint. Never raises."""
    try:
        raw = base64.b64decode(signature, validate=True)
        public.verify(raw, message(kind, seq, hash_, prev_seq, ts, key))
    except (InvalidSignature, binascii.Error, ValueError, TypeError):
        return False
    return True


def checkpoint_row(signer: Signer, kind: str, seq: int, hash_: str, prev_seq: int) -> dict[str, Any]:
    ts = datetime.now(UTC)
    signature = signer.sign("anchor" if kind == "anchor" else "checkpoint", seq, hash_, prev_seq, ts)
    return {
        "kind": kind,
        "seq": seq,
        "hash": hash_,
        "prev_seq": prev_seq,
        "ts": ts,
        "key_id": signer.key_id,
        "signature": signature,
    }
