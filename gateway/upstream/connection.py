"""One supervised connection to an upstream MCP server (a stdio process or a Streamable HTTP endpoint).

Owns: ``Upstream``, one long-lived MCP client session per upstream (a crashed stdio process
or an unreachable URL is reconnected with capped exponential backoff), its lifecycle state,
its catalog of tools and its offerings, and sending requests over it: forwarding a
`tools/call` (or, through ``send``, any other request: resources/read, prompts/get,
completion/complete) with a timeout. Each upstream's resources, templates and prompts
(``gateway.upstream.listings``) are listed with its tools, and again at once when it
notifies that a list changed; its ``notifications/resources/updated`` go to
``on_resource_updated`` (``gateway.subscriptions`` relays them to the subscribed clients
only). The URIs it is subscribed to upstream are subscribed again after every reconnect.
Which failed calls are tried again, and why only those are safe to repeat, is
``gateway/upstream/delivery.py``'s: a call that finds its upstream reconnecting waits for it
(it was never sent); a connect failure is retried by the HTTP transport before any byte is
written; nothing that may have reached the upstream is ever sent twice.

The catalog: each upstream's tools are listed on connect and again by every idle-time
probe; each listed tool gets a ``definition_hash`` (``gateway.upstream.catalog``).
``Upstream.catalog_version`` changes only when a definition changes, so callers can cache
per definition and drop what a refresh replaced. ``on_catalog`` (set by the pool) is
awaited after every listing: tool pinning (``gateway/pins.py``) reviews the new definitions
there.

Per-call relay (``gateway.relay.CallRelay``): the upstream Client declares sampling,
elicitation and roots; its callbacks are the upstream's ``CallRouter``
(``gateway.upstream.correlation``, which documents the rule for which call a message
belongs to), and every call is in flight with it while it runs.

Tasks (``execution.taskSupport: "required"`` tools, ``tasks/*``) are not supported: the
Client declares no tasks capability, and the proxy refuses such a call (audited) with a
JSON-RPC error before it is forwarded. 2026-07-28 has no tasks: its tool listings carry no
``execution``.

Never: forwards anything from the agent's HTTP request (headers, credentials) upstream
(what it connects to, and with what, is ``gateway.upstream.target``'s), and never names
tools publicly (``gateway.upstream.pool``).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import anyio
import mcp_types as types
from mcp.client.client import Client
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from gateway.relay import CallRelay
from gateway.upstream import calls
from gateway.upstream.catalog import definition_hash
from gateway.upstream.correlation import CallRouter
from gateway.upstream.delivery import until_ready
from gateway.upstream.errors import (
    UpstreamRejected,
    UpstreamTimeout,
    UpstreamUnavailable,
    describe,
    is_connection_failure,
    is_rejection,
)
from gateway.upstream.listings import Offerings, list_all_tools, list_offerings
from gateway.upstream.spec import UpstreamSpec
from gateway.upstream.target import connect_target

logger = logging.getLogger(__name__)

UpstreamState = Literal["connecting", "ready", "down", "stopped"]


@dataclass(slots=True)
class UpstreamStatus:
    name: str
    transport: str
    state: UpstreamState
    tools: int
    last_error: str
    restarts: int


CatalogHook = Callable[["Upstream"], Awaitable[None]]
"""Awaited after every listing of an upstream's tools (tool pinning reviews them)."""

UpdatedHook = Callable[["Upstream", str], Awaitable[None]]
"""Awaited with the upstream's own URI when it says a subscribed resource changed."""

ListChangedHook = Callable[["Upstream", str], Awaitable[None]]
"""Awaited with ``resources`` or ``prompts`` after a relisting that changed that list."""

T = TypeVar("T")

_LIST_CHANGED = (
    types.ToolListChangedNotification,
    types.ResourceListChangedNotification,
    types.PromptListChangedNotification,
)


@dataclass
class Upstream:
    """One supervised connection. `run()` keeps it alive until cancelled."""

    spec: UpstreamSpec
    connect_timeout_s: float = 20.0
    backoff_initial_s: float = 0.5
    backoff_max_s: float = 30.0
    probe_interval_s: float = 15.0
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))
    state: UpstreamState = "connecting"
    tools: dict[str, types.Tool] = field(default_factory=dict)
    hashes: dict[str, str] = field(default_factory=dict)
    """Tool name -> ``definition_hash`` of the listed definition."""
    catalog_version: int = 0
    """Bumped whenever a listing changed any definition (added, removed or edited tools)."""
    on_catalog: CatalogHook | None = None
    offerings: Offerings = field(default_factory=Offerings)
    """Its resources, templates and prompts, as last listed (``gateway.upstream.listings``)."""
    on_resource_updated: UpdatedHook | None = None
    on_list_changed: ListChangedHook | None = None
    subscribed: set[str] = field(default_factory=set)
    """Upstream URIs the gateway is subscribed to on this upstream (subscribed again on reconnect)."""
    last_error: str = ""
    restarts: int = 0
    _client: Client | None = None
    _router: CallRouter = field(init=False, repr=False)
    """The calls in flight, and where the upstream's server requests and log messages go."""
    _broken: anyio.Event = field(default_factory=anyio.Event)
    _wake: anyio.Event = field(default_factory=anyio.Event)
    """Set by the upstream's notifications/tools/list_changed, and with ``_broken``: ``_watch`` acts now."""
    _ready: anyio.Event = field(default_factory=anyio.Event)

    def __post_init__(self) -> None:
        self._router = CallRouter(self.spec.name)

    @property
    def name(self) -> str:
        return self.spec.name

    def status(self) -> UpstreamStatus:
        return UpstreamStatus(
            self.name, self.spec.transport, self.state, len(self.tools), self.last_error, self.restarts
        )

    async def wait_until_ready(self) -> None:
        """Wait, without a limit, until the upstream is (next) ready: the caller bounds the wait."""
        await self._ready.wait()

    async def wait_ready(self, timeout_s: float) -> bool:
        with anyio.move_on_after(timeout_s):
            await self.wait_until_ready()
        return self.state == "ready"

    async def run(self) -> None:
        """Connect, serve, and reconnect with capped exponential backoff until cancelled."""
        delay = self.backoff_initial_s
        while True:
            connected_at = time.monotonic()
            try:
                await self._serve_once()
            except Exception as exc:  # boundary: any failure of one upstream must not escape the supervisor
                self.last_error = describe(exc)
                logger.warning("upstream %s failed: %s", self.name, self.last_error)
            finally:
                self._client = None
                self.state = "down"
                self._ready = anyio.Event()
            if time.monotonic() - connected_at > 60:
                delay = self.backoff_initial_s
            self.restarts += 1
            logger.info("upstream %s: reconnecting in %.1fs", self.name, delay)
            await anyio.sleep(delay)
            delay = min(delay * 2, self.backoff_max_s)

    async def _serve_once(self) -> None:
        self.state = "connecting"
        self._broken = anyio.Event()
        self._wake = anyio.Event()
        target, http = connect_target(self.spec, self.environ)
        # One scope around the whole session (task groups inside must nest in it); its deadline
        # bounds connecting and listing, and is lifted once the upstream is ready.
        with anyio.CancelScope(deadline=anyio.current_time() + self.connect_timeout_s) as scope:
            async with contextlib.AsyncExitStack() as stack:
                if http is not None:
                    await stack.enter_async_context(http)
                client = await stack.enter_async_context(self._new_client(target))
                listed = await list_all_tools(client)
                await self.refresh_catalog(listed)
                await self._refresh_offerings(client)
                await self._resubscribe(client)
                scope.deadline = math.inf
                self._client = client
                self.state = "ready"
                self.last_error = ""
                self._ready.set()
                logger.info("upstream %s ready (%s, %d tools)", self.name, self.spec.transport, len(self.tools))
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._listen, client, name=f"upstream-listen:{self.name}")
                    await self._watch(client)
                    tg.cancel_scope.cancel()
                raise UpstreamUnavailable(self.last_error or "connection lost")
        if scope.cancelled_caught:
            raise UpstreamUnavailable(f"could not connect within {self.connect_timeout_s:g}s")

    async def _listen(self, client: Client) -> None:
        """A 2026-07-28 upstream announces list changes on a ``subscriptions/listen`` stream only."""
        tools = client.server_capabilities.tools
        if client.protocol_version not in MODERN_PROTOCOL_VERSIONS or tools is None or not tools.list_changed:
            return
        try:
            async with client.listen(tools_list_changed=True) as subscription:
                async for _event in subscription:
                    self._wake.set()
        except Exception as exc:  # boundary: without the stream the idle-time probe still refreshes
            logger.info(
                "upstream %s: list_changed stream ended (%s); probing every %gs",
                self.name,
                describe(exc),
                self.probe_interval_s,
            )

    async def _watch(self, client: Client) -> None:
        """Return when the connection is broken: a call saw it fail, or an idle-time probe
        (tools/list, which also refreshes the catalog) failed or timed out. An upstream's
        list_changed (either era) lists at once instead of waiting for the probe."""
        while True:
            with anyio.move_on_after(self.probe_interval_s):
                await self._wake.wait()
            if self._broken.is_set():
                return
            self._wake = anyio.Event()
            try:
                with anyio.fail_after(self.connect_timeout_s):
                    listed = await list_all_tools(client)
                    await self.refresh_catalog(listed)
                    await self._refresh_offerings(client)
            except Exception as exc:  # boundary: any probe failure means reconnect
                self.last_error = f"health probe failed: {describe(exc)}"
                return

    async def _refresh_offerings(self, client: Client) -> None:
        """List resources, templates and prompts again; tell ``on_list_changed`` which lists changed."""
        old, new = self.offerings, await list_offerings(client)
        self.offerings = new
        changed = []
        if (old.resources, old.templates) != (new.resources, new.templates):
            changed.append("resources")
        if old.prompts != new.prompts:
            changed.append("prompts")
        for kind in changed:
            if self.on_list_changed is None:
                break
            try:
                await self.on_list_changed(self, kind)
            except Exception:  # boundary: a failing relay must not drop the upstream
                logger.exception("upstream %s: relaying a %s list change failed", self.name, kind)

    async def _on_message(self, message: Any) -> None:
        """Notifications of a 2025-era upstream: a list_changed (tools, resources, prompts) lists again
        now; a resource update the gateway subscribed to is relayed (``on_resource_updated``)."""
        if isinstance(message, _LIST_CHANGED):
            self._wake.set()
        elif isinstance(message, types.ResourceUpdatedNotification) and self.on_resource_updated is not None:
            uri = str(message.params.uri)
            if uri in self.subscribed:  # an update the gateway did not ask for is dropped
                try:
                    await self.on_resource_updated(self, uri)
                except Exception:  # boundary: a failing relay must not break the upstream session
                    logger.exception("upstream %s: relaying an update of %s failed", self.name, uri)

    async def refresh_catalog(self, listed: list[types.Tool]) -> None:
        """Take a fresh listing as the catalog; bump ``catalog_version`` if any definition changed."""
        hashes = {tool.name: definition_hash(tool) for tool in listed}
        if hashes != self.hashes:
            self.catalog_version += 1
        self.tools = {tool.name: tool for tool in listed}
        self.hashes = hashes
        if self.on_catalog is not None:
            try:
                await self.on_catalog(self)
            except Exception:  # boundary: a failing review hides new definitions; it must not drop the upstream
                logger.exception("upstream %s: reviewing the tool catalog failed", self.name)

    def _is_ready(self) -> bool:
        return self._client is not None and self.state == "ready"

    def mark_broken(self, reason: str) -> None:
        """Called when a call saw the connection fail: tear down and reconnect."""
        if self.state == "ready":
            self.last_error = reason
            self.state = "down"
            self._ready = anyio.Event()  # calls arriving now wait for the reconnect (delivery.until_ready)
            self._broken.set()
            self._wake.set()

    def _new_client(self, target: Any) -> Client:
        return Client(
            target,
            mode="auto",
            cache=None,
            message_handler=self._on_message,
            sampling_callback=self._router.on_sampling,
            elicitation_callback=self._router.on_elicitation,
            list_roots_callback=self._router.on_roots,
            logging_callback=self._router.on_log,
        )

    async def call(
        self,
        tool: str,
        arguments: Mapping[str, Any],
        timeout_s: float,
        meta: Mapping[str, Any] | None = None,
        *,
        relay: CallRelay | None = None,
    ) -> types.CallToolResult | types.InputRequiredResult:
        """Forward one tools/call with ``meta`` as its ``_meta``; ``relay`` carries where this call's
        progress, logs and server requests go.

        An input-required result is returned only to a relay of a 2026-07-28 client (which
        answers it); every other caller gets a CallToolResult or an Upstream* error.
        """
        client = await self._ready_client(timeout_s)
        with self._router.calling(relay):
            try:
                with anyio.fail_after(timeout_s):
                    result = await calls.call_tool(client, tool, dict(arguments), relay, dict(meta) if meta else {})
            except Exception as exc:  # boundary: translate every client failure into one gateway error
                raise self._failure(exc, timeout_s) from exc
        if isinstance(result, types.InputRequiredResult) and relay is not None and relay.modern:
            return result
        if not isinstance(result, types.CallToolResult):
            raise UpstreamUnavailable(f"upstream {self.name!r} asked for input the gateway cannot relay")
        return result

    async def _ready_client(self, timeout_s: float) -> Client:
        """The connected client, after waiting (bounded) for a reconnecting upstream: nothing was sent yet."""
        if not await until_ready(self._is_ready, self.wait_ready, timeout_s):
            detail = f": {self.last_error}" if self.last_error else ""
            raise UpstreamUnavailable(f"upstream {self.name!r} is {self.state}{detail}")
        client = self._client
        assert client is not None
        return client

    def _failure(self, exc: Exception, timeout_s: float) -> Exception:
        """One gateway error for a failed request: timeout, the upstream's JSON-RPC error, or a broken connection."""
        if isinstance(exc, TimeoutError):
            return UpstreamTimeout(f"upstream {self.name!r} did not answer within {timeout_s:g}s")
        if is_rejection(exc):
            return UpstreamRejected(self.name, exc.error)
        reason = describe(exc)
        if is_connection_failure(exc):
            self.mark_broken(reason)
        return UpstreamUnavailable(f"upstream {self.name!r} failed: {reason}")

    async def send(self, request: Callable[[Client], Awaitable[T]], timeout_s: float) -> T:
        """Send one request (resources/read, prompts/get, completion/complete, ...) with a timeout.

        Raises UpstreamRejected when the upstream answers with a JSON-RPC error, UpstreamTimeout,
        or UpstreamUnavailable (the connection is down or broke: it is torn down and reconnected).
        """
        client = await self._ready_client(timeout_s)
        try:
            with anyio.fail_after(timeout_s):
                return await request(client)
        except Exception as exc:  # boundary: translate every client failure into one gateway error
            raise self._failure(exc, timeout_s) from exc

    async def subscribe(self, uri: str, timeout_s: float) -> None:
        """Subscribe to the upstream's ``uri`` (where it takes 2025 subscriptions; else only remembered)."""
        self.subscribed.add(uri)
        if self.offerings.subscribe:
            await self.send(lambda client: calls.subscribe(client, uri, True), timeout_s)

    async def unsubscribe(self, uri: str, timeout_s: float) -> None:
        self.subscribed.discard(uri)
        if self.offerings.subscribe:
            await self.send(lambda client: calls.subscribe(client, uri, False), timeout_s)

    async def _resubscribe(self, client: Client) -> None:
        if self.offerings.subscribe:
            for uri in sorted(self.subscribed):
                await calls.subscribe(client, uri, True)
