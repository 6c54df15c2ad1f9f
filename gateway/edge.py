"""Checks on the raw HTTP request before any route runs: Host/Origin allow list and body caps.

Owns two ASGI middlewares, outermost first:

- ``HostOriginGuard``: DNS-rebinding protection (the MCP transport spec asks servers to
  validate Origin). The Host header's name must be a loopback name, the listen address, the
  host of ``public_base_url`` or one of ``allowed_hosts``; an Origin header, when sent, must
  name such a host or be one of ``allowed_origins``. Anything else is 403 before routing.
- ``BodyCap``: a per-route cap on request bodies. A declared Content-Length above the cap is
  answered 413; up to ``drain_limit`` bytes the body is read and discarded first (MCP clients
  send the whole body before reading, and would otherwise see a reset connection instead of
  the JSON-RPC error), beyond it the answer comes without reading a byte. A body without a
  length is counted as it streams and stopped at the cap (413 when no answer has started yet).

Errors on /mcp are JSON-RPC error objects (what an MCP client reads); elsewhere FastAPI's
``{"detail": ...}``. Never: reads a body it does not have to, authenticates, or logs headers'
values beyond the refused host name.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.config import Settings

logger = logging.getLogger(__name__)

MCP_PATH = "/mcp"
LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})
INVALID_REQUEST = -32600


async def refuse(scope: Scope, send: Send, status: int, message: str) -> None:
    """Answer `status` with `message`: a JSON-RPC error on /mcp, FastAPI's shape elsewhere."""
    if scope.get("path", "").startswith(MCP_PATH):
        body: dict[str, object] = {"jsonrpc": "2.0", "id": None, "error": {"code": INVALID_REQUEST, "message": message}}
    else:
        body = {"detail": message}
    payload = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        (b"connection", b"close"),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _hostname(authority: str) -> str | None:
    """`name` of `name[:port]` (brackets off IPv6, lower case); None when it does not parse."""
    try:
        parsed = urlsplit(f"//{authority}")
        _ = parsed.port  # raises on a malformed port
    except ValueError:
        return None
    if parsed.username is not None or parsed.path or parsed.query or parsed.fragment:
        return None
    return parsed.hostname or None


def allowed_host_names(settings: Settings) -> frozenset[str] | None:
    """Host names this gateway answers to; None when `allowed_hosts` contains '*' (no check)."""
    if "*" in settings.allowed_hosts:
        return None
    names = set(LOOPBACK_NAMES)
    names.add(settings.host.lower().strip("[]"))  # also 0.0.0.0: clients of a wildcard bind use it; no DNS name
    if settings.public_base_url:
        public = urlsplit(settings.public_base_url).hostname
        if public:
            names.add(public)
    names.update(h.lower() for h in settings.allowed_hosts)
    return frozenset(names)


class HostOriginGuard:
    def __init__(self, app: ASGIApp, hosts: frozenset[str] | None, origins: Iterable[str]) -> None:
        self.app = app
        self.hosts = hosts
        self.origins = frozenset(o.rstrip("/").lower() for o in origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        problem = self.problem(_header(scope, b"host"), _header(scope, b"origin"))
        if problem is not None:
            logger.warning("refused %s %s: %s", scope.get("method"), scope.get("path"), problem)
            await refuse(scope, send, 403, f"{problem}; operators allow more with WARDEN_ALLOWED_HOSTS")
            return
        await self.app(scope, receive, send)

    def problem(self, host: str | None, origin: str | None) -> str | None:
        if self.hosts is not None:
            name = _hostname(host or "")
            if name is None or name not in self.hosts:
                return f"this gateway does not answer to host {(name or host or '')[:100]!r}"
        if origin is None or origin.rstrip("/").lower() in self.origins:
            return None
        parsed = urlsplit(origin)
        name = _hostname(parsed.netloc) if parsed.scheme in ("http", "https") else None
        if name is None or (self.hosts is not None and name not in self.hosts):
            return f"requests from origin {origin[:100]!r} are not accepted"
        return None


class BodyTooLarge(Exception):
    """Raised from `receive` once a streamed body passes its cap."""


async def _drain(receive: Receive) -> None:
    """Read and discard the rest of a request body (it is within the drain limit)."""
    while True:
        message = await receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            return


class BodyCap:
    def __init__(self, app: ASGIApp, default_cap: int, caps: Mapping[str, int], drain_limit: int = 0) -> None:
        self.app = app
        self.default_cap = default_cap
        self.drain_limit = drain_limit
        self.caps = sorted(caps.items(), key=lambda item: len(item[0]), reverse=True)

    def cap_for(self, path: str) -> int:
        return next((cap for prefix, cap in self.caps if path.startswith(prefix)), self.default_cap)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cap = self.cap_for(scope.get("path", ""))
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.strip().isdigit() or int(declared) > cap):
            if declared.strip().isdigit() and int(declared) <= self.drain_limit:
                await _drain(receive)  # a client that sends the whole body before reading can read the error
            await refuse(scope, send, 413, f"request body too large: at most {cap} bytes")
            return
        received = 0
        answered = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    raise BodyTooLarge
            return message

        async def watched(message: Message) -> None:
            nonlocal answered
            answered = answered or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except* BodyTooLarge:
            if not answered:
                await refuse(scope, send, 413, f"request body too large: at most {cap} bytes")
