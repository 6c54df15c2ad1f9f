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

Never: closes or evicts another session, or looks at anything but the owner of each session.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthorizationContext
from mcp.server.streamable_http import StreamableHTTPServerTransport
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.auth import identity_from_scope
from gateway.edge import refuse

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
        return super()._admit_session(requestor)


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
