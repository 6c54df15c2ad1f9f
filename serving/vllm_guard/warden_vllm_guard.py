"""An ASGI middleware loaded *inside* vLLM (``--middleware warden_vllm_guard.KeyOnEveryRoute``).

vLLM's own ``--api-key`` check guards only paths under /v1, /v2, /inference and /cohere. With
runtime LoRA updating on, vLLM 0.32 also mounts the SageMaker routes ``POST /adapters`` (loads an
adapter), ``DELETE /adapters/{name}`` and ``POST /invocations``, which that check never sees. This
middleware requires the same key (``VLLM_API_KEY``) on every path but ``GET /health`` (the
launcher's liveness probe); without a key configured it refuses everything else (fail closed).

This file is imported by vLLM's Python (its own environment), from a directory that holds
nothing else (serving.process puts it on PYTHONPATH): it may import only the standard library and
starlette, and nothing of Warden.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets

from starlette.types import ASGIApp, Receive, Scope, Send

OPEN = frozenset({("GET", "/health")})


class KeyOnEveryRoute:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        key = os.environ.get("VLLM_API_KEY") or ""
        self.digest = hashlib.sha256(key.encode()).digest() if key else None

    def allowed(self, scope: Scope) -> bool:
        if (scope.get("method", "GET"), scope.get("path", "")) in OPEN:
            return True
        if self.digest is None:
            return False
        header = next((v for k, v in scope.get("headers", []) if k == b"authorization"), b"")
        scheme, _, token = header.decode("latin-1").partition(" ")
        offered = hashlib.sha256(token.strip().encode()).digest()
        return scheme.lower() == "bearer" and secrets.compare_digest(offered, self.digest)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.allowed(scope):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        body = json.dumps({"error": "Unauthorized"}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": body})
