"""Corrections around the SDK's Streamable HTTP answers on /mcp, for clients that read them literally.

Owns two fixes, both outside the SDK so it stays unmodified:

- An ``MCP-Protocol-Version`` header naming no version this gateway speaks is refused with
  HTTP 400 and JSON-RPC error -32022 (``UNSUPPORTED_PROTOCOL_VERSION``) whose message lists
  the supported versions of both eras (``data``: ``supported`` and ``requested``). The SDK
  routes any unknown value to the 2026-07-28 path, which answers with a misleading complaint
  about ``params._meta``.
- A request that opens no session (no ``Mcp-Session-Id``) and is refused (status >= 400) gets
  no ``Mcp-Session-Id`` header: the SDK allocates one before it reads the body and discards the
  session again when the opening request fails, so handing it out would give the client an id
  that only ever answers 404.

Never: reads the body, or changes an answer that succeeded or belongs to an existing session.
"""

from __future__ import annotations

import json

from mcp_types import UNSUPPORTED_PROTOCOL_VERSION
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SUPPORTED_VERSIONS: tuple[str, ...] = (*HANDSHAKE_PROTOCOL_VERSIONS, *MODERN_PROTOCOL_VERSIONS)
_VERSION_HEADER = b"mcp-protocol-version"
_SESSION_HEADER = b"mcp-session-id"


def _header(scope: Scope, name: bytes) -> str | None:
    return next((v.decode("latin-1") for k, v in scope.get("headers", []) if k == name), None)


def unsupported_version(requested: str) -> dict[str, object]:
    """The JSON-RPC error body for an MCP-Protocol-Version header naming no supported version."""
    shown = requested[:64]
    message = (
        f"unsupported MCP-Protocol-Version {shown!r}: this gateway speaks {', '.join(SUPPORTED_VERSIONS)} "
        f"(send one of them, or omit the header on an initialize request)"
    )
    error = {
        "code": UNSUPPORTED_PROTOCOL_VERSION,
        "message": message,
        "data": {"supported": list(SUPPORTED_VERSIONS), "requested": shown},
    }
    return {"jsonrpc": "2.0", "id": None, "error": error}


class ProtocolAnswers:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        version = _header(scope, _VERSION_HEADER)
        if version is not None and version not in SUPPORTED_VERSIONS:
            await _answer(send, 400, unsupported_version(version))
            return
        if _header(scope, _SESSION_HEADER) is not None:
            await self.app(scope, receive, send)
            return

        async def without_dead_session_id(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] >= 400:
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != _SESSION_HEADER]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, without_dead_session_id)


async def _answer(send: Send, status: int, body: dict[str, object]) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
