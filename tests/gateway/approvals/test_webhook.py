"""gateway/approvals/webhook.py: the signature scheme receivers verify."""

from __future__ import annotations

import hashlib
import hmac

from gateway.approvals.webhook import sign, verify

SECRET = "whsec-unit"
BODY = b'{"event":"approval.pending"}'


def test_signature_is_hmac_sha256_over_timestamp_and_body() -> None:
    expected = hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, "1700000000", BODY) == f"sha256={expected}"


def test_verify_accepts_a_fresh_signature_and_rejects_tampering_and_replays() -> None:
    signature = sign(SECRET, "1700000000", BODY)
    assert verify(SECRET, "1700000000", BODY, signature, now=1700000010)
    assert not verify(SECRET, "1700000001", BODY, signature, now=1700000010)  # timestamp is signed
    assert not verify(SECRET, "1700000000", BODY + b" ", signature, now=1700000010)
    assert not verify("other", "1700000000", BODY, signature, now=1700000010)
    assert not verify(SECRET, "1700000000", BODY, signature, now=1700000000 + 301)  # too old: a replay
    assert not verify(SECRET, "not-a-time", BODY, signature)
