"""The floor of bench/gateway_overhead.py: what any Python HTTP hop costs on this machine.

A do-nothing reverse proxy: uvicorn (the same loop and parser the gateway gets by default,
gateway.http_server) receives each request, one pooled ``httpx.AsyncClient`` sends its body
and headers to the upstream, and the upstream's status, headers and body go back. No MCP,
no policy, no audit, no authentication. Whatever the gateway adds beyond this row is
Warden's own cost; this row is what a Python hop costs before any of it.

    python bench/floor_proxy.py PORT UPSTREAM_BASE_URL
"""

from __future__ import annotations

import sys
from typing import Any

import httpx
import uvicorn
from starlette.types import Receive, Scope, Send

HOP_HEADERS = {b"host", b"content-length", b"connection", b"keep-alive", b"transfer-encoding"}


class Forward:
    """ASGI app: each HTTP request re-sent to ``upstream`` + its path, answered with what came back."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.client: httpx.AsyncClient | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = [(k, v) for k, v in scope["headers"] if k not in HOP_HEADERS]
        assert self.client is not None
        url = self.upstream + scope["path"]
        answer = await self.client.request(scope["method"], url, headers=headers, content=body)
        out = [(k.encode(), v.encode()) for k, v in answer.headers.items() if k.encode() not in HOP_HEADERS]
        await send({"type": "http.response.start", "status": answer.status_code, "headers": out})
        await send({"type": "http.response.body", "body": answer.content})

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message: dict[str, Any] = dict(await receive())
            if message["type"] == "lifespan.startup":
                self.client = httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_keepalive_connections=32))
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.client is not None:
                    await self.client.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return


def main() -> None:
    sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    from gateway.config import Settings
    from gateway.http_server import server_options

    port, upstream = int(sys.argv[1]), sys.argv[2]
    options = server_options(Settings()).uvicorn_kwargs()
    uvicorn.run(Forward(upstream), host="127.0.0.1", port=port, log_level="warning", **options)


if __name__ == "__main__":
    main()
