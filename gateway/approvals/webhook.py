"""Approval webhooks: tell someone a call is waiting, in a way they can verify.

Owns: the signature scheme and one delivery attempt. A delivery is an HTTP POST of a
JSON body with three headers:

    X-Warden-Event:      approval.pending
    X-Warden-Timestamp:  <unix seconds>
    X-Warden-Signature:  sha256=<hex HMAC-SHA256(secret, "<timestamp>." + body)>

The timestamp is inside the signed material, so a receiver that also checks it is
recent (``verify(..., tolerance_s=...)``) rejects replays of an old delivery.

Must never: block or fail the call it reports (``deliver`` logs every failure and
returns); send the secret; carry unredacted arguments (the body is the approval's
public, already-redacted form).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import time
from dataclasses import dataclass
from typing import Any

import httpx

from gateway.redact import redact_json

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Warden-Signature"
TIMESTAMP_HEADER = "X-Warden-Timestamp"
EVENT_HEADER = "X-Warden-Event"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Warden-Signature`` value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(
    secret: str, timestamp: str, body: bytes, signature: str, *, tolerance_s: float = 300, now: float | None = None
) -> bool:
    """Whether ``signature`` is ours for ``body`` and ``timestamp`` is within ``tolerance_s`` of now."""
    try:
        sent = float(timestamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - sent) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


@dataclass(frozen=True, slots=True)
class Webhook:
    url: str
    secret: str | None
    timeout_s: float

    async def deliver(self, event: str, payload: dict[str, Any]) -> bool:
        """POST ``payload`` once; True on a 2xx answer. Never raises."""
        # The approval is stored redacted already; redact once more so no caller can send a secret out.
        body = redact_json(payload).encode("utf-8", "replace")
        timestamp = str(int(time.time()))
        headers = {"Content-Type": "application/json", EVENT_HEADER: event, TIMESTAMP_HEADER: timestamp}
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(self.secret, timestamp, body)
        try:
            async with httpx.AsyncClient(timeout=self.timeout_s) as client:
                response = await client.post(self.url, content=body, headers=headers)
        except Exception as exc:  # boundary: a notification failure never reaches the call
            logger.warning("approval webhook %s to %s failed: %s", event, self.url, type(exc).__name__)
            return False
        if not response.is_success:
            logger.warning("approval webhook %s to %s answered HTTP %s", event, self.url, response.status_code)
            return False
        return True
