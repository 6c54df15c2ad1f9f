"""Per-identity caps on 2025-protocol MCP sessions (the initialize handshake keeps state per session).

The SDK's session manager caps open sessions globally (``max_sessions``): one key opening
sessions until that cap would make it answer 503 to every other identity. Here each identity
may hold at most ``per_identity`` open sessions; one more is refused with HTTP 429 and a
JSON-RPC error naming the limit, while other identities keep opening theirs. Sessions end on
``DELETE /mcp`` or after the idle timeout, which frees the slot.

The count is taken where the SDK admits a session (under its admission lock, so concurrent
opens by one identity cannot slip past the cap); this leans on two SDK internals
(``_admit_session`` and ``_session_owners``, mcp 2.3) that the tests exercise; ``_discard_session``
tells ``on_discard`` (gateway.changes stops notifying the session).

Sessions are served by ``gateway.streaming.RequestModeTransport`` (JSON or SSE chosen per
request), and 2026-07-28 requests in the SDK's SSE mode when the client accepts it; see
``gateway/streaming.py``.

Never: closes or evicts another session, or looks at anything but the owner of each session.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any
from uuid import uuid4

from mcp.server.auth.middleware.bearer_auth import AuthorizationContext
from mcp.server.streamable_http import StreamableHTTPServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.auth import identity_from_scope
from gateway.edge import refuse
from gateway.streaming import RequestModeTransport, client_accepts_sse

_refused: ContextVar[list[int] | None] = ContextVar("warden_session_refused", default=None)
"""Set per request by `SessionCapAnswer`; `_admit_session` appends the refused identity's count."""


class IdentitySessionManager(StreamableHTTPSessionManager):
    def __init__(
        self, *args: Any, per_identity: int, on_discard: Callable[[str], None] | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self.per_identity = per_identity
        self.on_discard = on_discard
        """Called with a session's id once the SDK forgets it (list_changed stops tracking it)."""

    async def _discard_session(self, session_id: str, transport: StreamableHTTPServerTransport) -> None:
        if self.on_discard is not None:
            self.on_discard(session_id)
        await super()._discard_session(session_id, transport)

    @property
    def json_response(self) -> bool:
        """2026-07-28 requests: SSE mode for a client that accepts SSE (streaming.py), JSON otherwise."""
        return not client_accepts_sse()

    @json_response.setter
    def json_response(self, value: bool) -> None:
        """Ignored: chosen per request."""

    def held_by(self, requestor: AuthorizationContext) -> int:
        return sum(1 for owner in self._session_owners.values() if owner == requestor)

    def _admit_session(self, requestor: AuthorizationContext | None) -> StreamableHTTPServerTransport | None:
        if requestor is not None:
            held = self.held_by(requestor)
            if held >= self.per_identity:
                refused = _refused.get()
                if refused is not None:
                    refused.append(held)
                return None
        return self._register(requestor)

    def _register(self, requestor: AuthorizationContext | None) -> StreamableHTTPServerTransport | None:
        """The SDK's admission (mcp 2.3 ``_admit_session``) with a per-request-mode transport."""
        if self.max_sessions is not None and len(self._server_instances) >= self.max_sessions:
            return None
        transport = RequestModeTransport(
            mcp_session_id=uuid4().hex,
            is_json_response_enabled=True,
            event_store=self.event_store,
            security_settings=self.security_settings,
            retry_interval=self.retry_interval,
            idle_timeout=self.session_idle_timeout,
        )
        session_id = transport.mcp_session_id
        assert session_id is not None
        if requestor is not None:
            self._session_owners[session_id] = requestor
        self._server_instances[session_id] = transport
        return transport


class SessionCapAnswer:
    """Turns the SDK's generic refusal of a session over an identity's cap into a clear 429."""

    def __init__(self, app: ASGIApp, manager: IdentitySessionManager) -> None:
        self.app = app
        self.manager = manager

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        refused: list[int] = []
        token = _refused.set(refused)

        async def unless_refused(message: Message) -> None:
            if not refused:
                await send(message)

        try:
            await self.app(scope, receive, unless_refused)
        finally:
            _refused.reset(token)
        if refused:
            idle = self.manager.session_idle_timeout
            await refuse(
                scope,
                send,
                429,
                f"identity {identity_from_scope(scope)!r} already holds {refused[0]} open MCP sessions "
                f"(the limit is {self.manager.per_identity}): end one with DELETE /mcp and its Mcp-Session-Id, "
                f"reuse one, or wait until one has been idle {idle:.0f} s",
            )
