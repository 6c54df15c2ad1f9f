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


def test_a_delivered_body_carries_no_secret_whatever_the_payload_holds() -> None:
    """A real HTTP receiver: the body the gateway sends is redacted once more (keys, shapes, text)."""
    import asyncio
    import json
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from gateway.approvals.webhook import Webhook

    bodies: list[bytes] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    leaked = "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz"
    payload = {
        "event": "approval.pending",
        "approval": {"reason": f"key {leaked}", "arguments": {"passWord": "plain-9f8e7d", leaked: 1}},
        "url": "http://gw/approvals/apr_1",
    }
    try:
        delivered = asyncio.run(
            Webhook(f"http://127.0.0.1:{server.server_port}/hook", SECRET, 10).deliver("x", payload)
        )
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert delivered and len(bodies) == 1
    body = bodies[0].decode()
    assert leaked not in body and "plain-9f8e7d" not in body
    assert json.loads(body)["url"] == "http://gw/approvals/apr_1"
