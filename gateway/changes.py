"""Telling connected clients that the tools THEY may see changed (`notifications/tools/list_changed`).

What an identity sees is the catalog filtered by tool pins and its grants (``gateway.proxy.visibility``);
it changes when an upstream's listing changes (a list_changed notification or a probe), when
an operator accepts or rejects a definition, and when a policy reload changes grants. Each of
those calls ``poke()``; ``run()`` then recomputes a fingerprint (public name and definition
hash of every visible tool) for each identity with a connected client, and notifies that
identity's clients only if its fingerprint moved.

Where a notification goes:

- 2025 sessions: the session's standalone channel (its GET SSE stream; the SDK drops the
  message when the client holds none open). A session is tracked from its first
  ``tools/list`` (what it was shown is the baseline) until the SDK discards it.
- 2026-07-28: there is no standing stream; a client opts in with ``subscriptions/listen``
  (``tools_list_changed``), whose response is the stream (the SDK's ``ListenHandler``). Each
  identity has its own bus and handler, so an event is only ever published to streams of the
  identity whose view changed, and one identity's streams cannot use up another's cap.

Never: notifies an identity about a change to tools it cannot see (the fingerprint is of its
own view), or says anything in a notification beyond "your list changed".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio
import mcp_types as types
from mcp.server.context import ServerRequestContext
from mcp.server.session import ServerSession
from mcp.server.subscriptions import InMemorySubscriptionBus, ListenHandler, ServerEvent, ToolsListChanged

logger = logging.getLogger(__name__)

Fingerprint = frozenset[tuple[str, str]]
"""(public name, definition hash) of every tool an identity may see."""

VisibleTools = Callable[[str], Fingerprint]

NOTIFY_TIMEOUT_S = 5.0


@dataclass
class _Watched:
    """One identity's connected clients and the view they were last told about."""

    shown: Fingerprint
    sessions: dict[str, ServerSession] = field(default_factory=dict)
    bus: InMemorySubscriptionBus = field(default_factory=InMemorySubscriptionBus)
    listen: ListenHandler | None = None
    streams: int = 0

    @property
    def idle(self) -> bool:
        return not self.sessions and self.streams == 0


class ToolListChanges:
    def __init__(self, streams_per_identity: int = 32) -> None:
        self.streams_per_identity = streams_per_identity
        self._visible: VisibleTools | None = None
        self._watched: dict[str, _Watched] = {}
        self._poked = anyio.Event()

    def bind(self, visible: VisibleTools) -> None:
        """What an identity sees now (the proxy builds after this, so it is bound late)."""
        self._visible = visible

    def poke(self) -> None:
        """Something an identity sees may have changed; ``run`` checks soon. Safe from sync code."""
        self._poked.set()

    # ---- who is connected ------------------------------------------------------------------

    def track(self, identity: str, session_id: str, session: ServerSession, shown: Fingerprint) -> None:
        """A 2025 session listed its tools: notify it when its identity's view moves from ``shown``."""
        watched = self._watched.get(identity)
        if watched is None:
            watched = self._watched[identity] = _Watched(shown)
        watched.sessions[session_id] = session

    def forget(self, session_id: str) -> None:
        """The SDK discarded a 2025 session (DELETE, idle timeout, crash)."""
        for identity, watched in list(self._watched.items()):
            if watched.sessions.pop(session_id, None) is not None and watched.idle:
                del self._watched[identity]

    async def listen(
        self, identity: str, ctx: ServerRequestContext[Any, Any], params: types.SubscriptionsListenRequestParams
    ) -> types.SubscriptionsListenResult:
        """Serve one 2026-07-28 ``subscriptions/listen`` stream on ``identity``'s own bus."""
        watched = self._watched.get(identity)
        if watched is None:
            watched = self._watched[identity] = _Watched(self._fingerprint(identity))
        if watched.listen is None:
            watched.listen = ListenHandler(watched.bus, max_subscriptions=self.streams_per_identity)
        watched.streams += 1
        try:
            return await watched.listen(ctx, params)
        finally:
            watched.streams -= 1
            if watched.idle and self._watched.get(identity) is watched:
                del self._watched[identity]

    async def publish(self, identity: str, event: ServerEvent) -> None:
        """Put ``event`` on ``identity``'s own bus (its 2026 listen streams that asked for it get it)."""
        watched = self._watched.get(identity)
        if watched is not None:
            await watched.bus.publish(event)

    async def publish_all(self, event: ServerEvent) -> None:
        """Put ``event`` (a list change that says nothing about any one item) on every identity's bus."""
        for watched in list(self._watched.values()):
            await watched.bus.publish(event)

    def watching(self, identity: str) -> int:
        """Connected clients of ``identity`` that would be told (tests, diagnostics)."""
        watched = self._watched.get(identity)
        return len(watched.sessions) + watched.streams if watched is not None else 0

    # ---- telling them ----------------------------------------------------------------------

    async def run(self) -> None:
        """Until cancelled: after each poke, notify every identity whose view changed."""
        while True:
            await self._poked.wait()
            self._poked = anyio.Event()
            try:
                await self.notify_changed()
            except Exception:  # boundary: a failed round must not stop later notifications
                logger.exception("tools/list_changed: checking connected clients failed")

    async def notify_changed(self) -> list[str]:
        """One round: the identities notified (each only about its own view)."""
        notified = []
        for identity, watched in list(self._watched.items()):
            now = self._fingerprint(identity)
            if now == watched.shown:
                continue
            watched.shown = now
            notified.append(identity)
            for session in list(watched.sessions.values()):
                with anyio.move_on_after(NOTIFY_TIMEOUT_S):  # a stalled stream must not hold up the others
                    await session.send_tool_list_changed()
            await watched.bus.publish(ToolsListChanged())
        return notified

    def _fingerprint(self, identity: str) -> Fingerprint:
        if self._visible is None:
            return frozenset()
        return self._visible(identity)
