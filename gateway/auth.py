"""Bearer API-key authentication in front of the MCP endpoint (an ASGI middleware).

Owns: turning `Authorization: Bearer <key>` into an identity name, and the 401s.
``bearer_key`` is the one parser of that header; the HTTP routes' dependency
(``deps.bearer_identity``) uses it too, since this middleware runs outside FastAPI's routing.
The identity goes into the ASGI scope (`scope["state"]["identity"]`) and, for the SDK's
stateful sessions, `scope["user"]`, so that a session can only be reused by the
identity that opened it.

Never: logs or forwards the key. The raw key is dropped as soon as it is verified.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import anyio
from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from starlette.types import ASGIApp, Receive, Scope, Send

Authenticate = Callable[[str], "str | None"]
"""Key -> identity name, or None when the key is unknown or revoked (blocking; run in a thread)."""


def _nothing_cached(_key: str) -> str | None:
    return None


class BearerKeyMiddleware:
    """``cached`` answers a key verified recently without blocking (``IdentityStore.cached``);
    only a key it does not know goes to ``authenticate`` in a worker thread."""

    def __init__(self, app: ASGIApp, authenticate: Authenticate, cached: Authenticate = _nothing_cached) -> None:
        self.app = app
        self.authenticate = authenticate
        self.cached = cached

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = _header(scope, b"authorization")
        if header is None:
            await _unauthorized(
                send,
                "missing_key",
                "no API key: send 'Authorization: Bearer <key>'. "
                "Operators create keys with `warden identity add NAME`.",
            )
            return
        key = bearer_key(header)
        if key is None:
            await _unauthorized(send, "invalid_request", "the Authorization header must be 'Bearer <key>'")
            return
        try:
            name = self.cached(key) or await anyio.to_thread.run_sync(self.authenticate, key)
        except Exception:  # boundary: the identity store failing must reject, never admit
            await _send_json(send, 503, {"error": "unavailable", "message": "identity store unavailable; try again"})
            return
        if name is None:
            await _unauthorized(send, "invalid_key", "the API key is not valid or has been revoked")
            return
        state = scope.setdefault("state", {})
        state["identity"] = name
        state["key_prefix"] = key_prefix(key)
        scope["user"] = AuthenticatedUser(AccessToken(token="", client_id=name, scopes=[]))
        await self.app(scope, receive, send)


def bearer_key(authorization: str | None) -> str | None:
    """The key of an ``Authorization`` header value ``Bearer <key>``; None when absent or not that shape."""
    scheme, _, key = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        return None
    return key.strip()


def key_prefix(key: str) -> str | None:
    """The stored, non-secret prefix of a well-formed key (``wdn_<prefix>_...``): which key made a request."""
    parts = key.split("_")
    return parts[1] if len(parts) >= 3 and parts[0] == "wdn" else None


def key_prefix_from_scope(scope: Scope) -> str | None:
    prefix = (scope.get("state") or {}).get("key_prefix")
    return prefix if isinstance(prefix, str) else None


def identity_from_scope(scope: Scope) -> str | None:
    state = scope.get("state") or {}
    name = state.get("identity")
    return name if isinstance(name, str) else None


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


async def _unauthorized(send: Send, error: str, message: str) -> None:
    await _send_json(
        send,
        401,
        {"error": error, "message": message},
        extra=[(b"www-authenticate", f'Bearer error="{error}", error_description="{message}"'.encode())],
    )


async def _send_json(send: Send, status: int, body: dict[str, str], extra: list[tuple[bytes, bytes]] = []) -> None:  # noqa: B006
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode()), *extra]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
