"""A tiny HTTP forwarder that adds `Authorization: Bearer <key>` to every request.

The conformance suite's server mode sends no credentials, and the gateway refuses a
request without a key; this sits between the two. It forwards method, path, query, body
and headers unchanged (Host and Origin included, so the gateway's own Host/Origin checks
are what the suite's DNS-rebinding scenario sees), replaces any Authorization header with
the key, and streams the answer back as it arrives (SSE included).

Owns: that one header. Never: reads, rewrites or logs bodies; holds a key in argv (it comes
from the environment variable BEARER_PROXY_KEY).

Run: BEARER_PROXY_KEY=... python -m tests.conformance.bearer_proxy PORT TARGET_BASE_URL
"""

from __future__ import annotations

import os
import sys

import httpx
import uvicorn
from starlette.types import Message, Receive, Scope, Send

# Hop-by-hop headers (RFC 9110 7.6.1) and those httpx/uvicorn recompute for their own connection.
_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"}


class BearerProxy:
    def __init__(self, target: str, key: str) -> None:
        self.target = target.rstrip("/")
        self.key = key
        self.client = httpx.AsyncClient(timeout=httpx.Timeout(60, read=None))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        body = await _read_body(receive)
        headers = [(k, v) for k, v in scope["headers"] if k.decode("latin-1").lower() not in _HOP | {"authorization"}]
        headers.append((b"authorization", f"Bearer {self.key}".encode()))
        query = scope.get("query_string", b"").decode("latin-1")
        url = f"{self.target}{scope['path']}" + (f"?{query}" if query else "")
        request = self.client.build_request(scope["method"], url, headers=headers, content=body)
        try:
            response = await self.client.send(request, stream=True)
        except httpx.HTTPError:
            await _answer(send, 502, b"bearer proxy: the gateway could not be reached")
            return
        try:
            kept = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers.items() if k not in _HOP]
            await send({"type": "http.response.start", "status": response.status_code, "headers": kept})
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        finally:
            await response.aclose()


async def _read_body(receive: Receive) -> bytes:
    parts: list[bytes] = []
    while True:
        message: Message = await receive()
        parts.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(parts)


async def _answer(send: Send, status: int, text: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": text})


def main() -> None:
    port, target = int(sys.argv[1]), sys.argv[2]
    app = BearerProxy(target, os.environ["BEARER_PROXY_KEY"])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
