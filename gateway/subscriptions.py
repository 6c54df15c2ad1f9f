"""Resource subscriptions and list-change notices, relayed to the client sessions they belong to.

Owns: which client session (2025 protocol: ``resources/subscribe`` on a session; 2026-07-28:
the resource URIs of a ``subscriptions/listen`` stream, for as long as it is open) is
subscribed to which public URI, under which identity; subscribing the gateway upstream
while at least one client is subscribed to a URI (and unsubscribing when the last one
leaves); relaying an upstream's ``notifications/resources/updated`` ONLY to the sessions
subscribed to that URI whose identity may still read it (policy is asked again at
delivery: a reload that revokes the grant stops the updates); and relaying an upstream's
resources / prompts ``list_changed`` to the sessions that listed them.

A subscribe is decided like a read (``resources/subscribe`` in the audit log): a URI the
identity may not read, or that no upstream owns, gets the read's not-found answer.

Must never: deliver one identity's update to another identity's session, or keep a
session whose connection is gone (a failed delivery drops it).
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import mcp_types as types
from mcp.server.subscriptions import PromptsListChanged, ResourcesListChanged, ResourceUpdated
from mcp.shared.exceptions import MCPError

from gateway import answers
from gateway.changes import ToolListChanges
from gateway.forwarding import RESOURCE_NOT_FOUND, Refused, mark_unknown, new_id, nowhere
from gateway.resources import Resources, Target
from gateway.types import Caller, ToolCall
from gateway.upstream.connection import Upstream
from gateway.upstream.errors import UpstreamRejected, UpstreamTimeout, UpstreamUnavailable
from gateway.upstream.pool import UpstreamPool

logger = logging.getLogger(__name__)

MAX_PER_SESSION = 256
"""Subscriptions one client session may hold; more are refused."""


@dataclass(eq=False, slots=True)
class Subscriber:
    identity: str
    session: Any
    """The client's ``ServerSession`` (2025 protocol), where its updates are sent."""
    public: str


class Subscriptions:
    def __init__(self, resources: Resources, *, timeout_s: float) -> None:
        self.resources = resources
        self.timeout_s = timeout_s
        self._subscribers: dict[tuple[str, str], list[Subscriber]] = {}
        self._listers: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
        self.changes: ToolListChanges | None = None

    def attach(self, pool: UpstreamPool) -> None:
        """Receive every upstream's resource updates and list changes."""
        for upstream in pool.upstreams.values():
            upstream.on_resource_updated = self.updated
            upstream.on_list_changed = self.list_changed

    def deliver_to(self, changes: ToolListChanges) -> None:
        """Where 2026-07-28 listen streams get their events: each identity's own bus (gateway.changes)."""
        self.changes = changes

    def listed(self, session: Any, identity: str) -> None:
        """``session`` listed resources or prompts: it hears when those lists change."""
        if session is not None:
            self._listers[session] = identity

    # ---- subscribe / unsubscribe ---------------------------------------------------------

    async def subscribe(self, caller: Caller, session: Any, public: str) -> None:
        target = await self._admitted(caller, public, "resources/subscribe")
        subscribers = self._subscribers.setdefault((target.upstream.name, target.uri), [])
        held = sum(1 for subs in self._subscribers.values() for s in subs if s.session is session)
        if any(s.session is session for s in subscribers):
            return
        if held >= MAX_PER_SESSION:
            raise MCPError(RESOURCE_NOT_FOUND, answers.too_many_subscriptions(MAX_PER_SESSION))
        await self._add(target, Subscriber(caller.name, session, public))

    async def unsubscribe(self, caller: Caller, session: Any, public: str) -> None:
        target = self.resources.target(public)
        if target is None:
            return
        key = (target.upstream.name, target.uri)
        subscribers = [s for s in self._subscribers.get(key, []) if s.session is not session]
        await self._set(target.upstream, target.uri, subscribers)

    async def listen(
        self,
        caller: Caller,
        params: types.SubscriptionsListenRequestParams,
        serve: Callable[[types.SubscriptionsListenRequestParams], Awaitable[types.SubscriptionsListenResult]],
    ) -> types.SubscriptionsListenResult:
        """A 2026-07-28 listen stream: its URIs are decided like subscribes, only admitted ones kept.

        A URI the identity may not read is dropped from the stream's filter like one that does
        not exist (the ack lists what is honoured); the admitted ones are subscribed (upstream
        too) until the stream ends.
        """
        wanted = list(params.notifications.resource_subscriptions or ())[:MAX_PER_SESSION]
        sink = _Stream(self, caller.name)
        admitted: list[Target] = []
        for public in wanted:
            try:
                admitted.append(await self._admitted(caller, public, "resources/subscribe"))
            except MCPError:
                continue
        for target in admitted:
            await self._add(target, Subscriber(caller.name, sink, target.public))
        notifications = params.notifications.model_copy(
            update={"resource_subscriptions": [t.public for t in admitted] or None}
        )
        try:
            return await serve(params.model_copy(update={"notifications": notifications}))
        finally:
            for target in admitted:
                key = (target.upstream.name, target.uri)
                rest = [s for s in self._subscribers.get(key, []) if s.session is not sink]
                await self._set(target.upstream, target.uri, rest)

    async def _add(self, target: Target, subscriber: Subscriber) -> None:
        subscribers = self._subscribers.setdefault((target.upstream.name, target.uri), [])
        subscribers.append(subscriber)
        if len(subscribers) == 1:
            await self._upstream(target.upstream.subscribe, target.uri)

    async def _admitted(self, caller: Caller, public: str, method: str) -> Target:
        """Decide a subscribe like a read; audit it; raise the read's not-found answer when refused."""
        unknown = Refused(RESOURCE_NOT_FOUND, answers.unknown_resource(public))
        target = self.resources.target(public)
        server, uri = (target.upstream.name, target.uri) if target is not None else ("", public[:256])
        call = ToolCall(public, server, uri, {"uri": uri}, new_id(), kind="resource")
        ctx = await self.resources.proxy.context(caller, call, nowhere, method=method)
        if target is None:
            mark_unknown(ctx, "unknown-resource", "no such resource")
        if ctx.decision.effect == "deny":
            await self.resources.proxy.end(ctx, "denied")
            raise MCPError(unknown.code, answers.denied_text(ctx.decision, unknown.message))
        await self.resources.proxy.end(ctx, "ok")
        assert target is not None
        return target

    async def _set(self, upstream: Upstream, uri: str, subscribers: list[Subscriber]) -> None:
        key = (upstream.name, uri)
        if subscribers:
            self._subscribers[key] = subscribers
            return
        if self._subscribers.pop(key, None) is not None:
            await self._upstream(upstream.unsubscribe, uri)

    async def _upstream(self, change: Any, uri: str) -> None:
        """Subscribe or unsubscribe upstream; a failure is logged (it is retried on reconnect)."""
        try:
            await change(uri, self.timeout_s)
        except (UpstreamRejected, UpstreamTimeout, UpstreamUnavailable) as exc:
            logger.warning("upstream (un)subscribe of %s failed: %s", uri, exc)

    # ---- relaying ------------------------------------------------------------------------

    async def updated(self, upstream: Upstream, uri: str) -> None:
        """The upstream says ``uri`` changed: tell the sessions subscribed to it that may still read it."""
        key = (upstream.name, uri)
        gone = []
        streamed: set[tuple[str, str]] = set()
        for subscriber in list(self._subscribers.get(key, [])):
            identity = self.resources.identity(subscriber.identity)
            if not self.resources.granted(identity, upstream, uri):
                gone.append(subscriber)  # the grant was revoked: the subscription ends
                continue
            if isinstance(subscriber.session, _Stream):  # one event on the bus reaches all of its streams
                if (subscriber.identity, subscriber.public) in streamed:
                    continue
                streamed.add((subscriber.identity, subscriber.public))
            try:
                await subscriber.session.send_resource_updated(subscriber.public)
            except Exception:  # boundary: a session whose connection is gone is dropped
                logger.info("dropping a subscription of %s: its session is gone", subscriber.identity)
                gone.append(subscriber)
        if gone:
            await self._set(upstream, uri, [s for s in self._subscribers.get(key, []) if s not in gone])

    async def list_changed(self, upstream: Upstream, kind: str) -> None:
        """An upstream's resources or prompts changed: tell the sessions that listed them (and 2026 streams)."""
        if self.changes is not None:
            await self.changes.publish_all(ResourcesListChanged() if kind == "resources" else PromptsListChanged())
        for session in list(self._listers.keys()):
            try:
                if kind == "resources":
                    await session.send_resource_list_changed()
                else:
                    await session.send_prompt_list_changed()
            except Exception:  # boundary: a session whose connection is gone is forgotten
                self._listers.pop(session, None)


class _Stream:
    """The "session" of a 2026-07-28 listen stream: an update goes onto its identity's bus."""

    def __init__(self, subscriptions: Subscriptions, identity: str) -> None:
        self.subscriptions = subscriptions
        self.identity = identity

    async def send_resource_updated(self, public: str) -> None:
        changes = self.subscriptions.changes
        if changes is not None:
            await changes.publish(self.identity, ResourceUpdated(public))
