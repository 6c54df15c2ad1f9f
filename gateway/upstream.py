"""Connections to upstream MCP servers (stdio processes and Streamable HTTP endpoints).

Owns: the upstreams file format, one long-lived, supervised MCP client session per
upstream (a crashed stdio process or an unreachable URL is reconnected with capped
exponential backoff), the aggregated catalog of namespaced tools, and forwarding a
`tools/call` (or, through ``send``, any other request: resources/read, prompts/get,
completion/complete) with a timeout. Each upstream's resources, templates and prompts
(``gateway.listings``) are listed with its tools, and again at once when it notifies that
a list changed; its ``notifications/resources/updated`` go to ``on_resource_updated``
(``gateway.subscriptions`` relays them to the subscribed clients only). The URIs it is
subscribed to upstream are subscribed again after every reconnect. Which failed calls are
tried again, and why only those are safe to repeat, is ``gateway/delivery.py``'s: a call
that finds its upstream reconnecting waits for it (it was never sent); a connect failure
is retried by the HTTP transport before any byte is written; nothing that may have
reached the upstream is ever sent twice.

The catalog: each upstream's tools are listed on connect and again by every idle-time
probe; each listed tool gets a ``definition_hash`` (sha256 over its name, title, description,
input and output schema and annotations). ``Upstream.catalog_version`` changes only when
a definition changes, so callers can cache per definition and drop what a refresh
replaced. ``on_catalog`` (set by the pool) is awaited after every listing: tool pinning
(``gateway/pins.py``) reviews the new definitions there.

Per-call relay (``gateway.relay.CallRelay``): the upstream Client declares sampling,
elicitation and roots, and its callbacks deliver each upstream message to the ONE call
it belongs to. Which call that is:

- progress: exact (the SDK gives each outbound request its own progress callback);
- 2026-07-28 upstreams: exact for server requests (they come back embedded in the
  call's own input-required result and are dispatched in the caller's task, where the
  call's relay is in a context variable);
- 2025 upstreams (stdio or HTTP) and log messages of either era: the wire does not say
  which outbound call a server request or a log message relates to (the SDK client drops
  the POST stream it arrived on), so the rule is: deliver only when exactly ONE call of
  that upstream is in flight; with several in flight a server request is refused with a
  JSON-RPC error and a log message is dropped. Never a guess that could reach another
  identity's session.

Tasks (``execution.taskSupport: "required"`` tools, ``tasks/*``) are not supported: the
Client declares no tasks capability, and the proxy refuses such a call (audited) with a
JSON-RPC error before it is forwarded. 2026-07-28 has no tasks: its tool listings carry no
``execution``.

Never: forwards anything from the agent's HTTP request (headers, credentials) upstream.
Headers for HTTP upstreams come only from the gateway's own environment, named in the
upstreams file; stdio upstreams get the SDK's minimal default environment plus what the
file names.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import logging
import math
import os
import re
import time
import warnings
from collections.abc import Awaitable, Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeGuard, TypeVar, cast

import anyio
import httpx2
import mcp_types as types
import yaml
from anyio.abc import TaskGroup
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gateway import names
from gateway.delivery import IsolatingTransport, until_ready
from gateway.listings import Offerings, list_offerings
from gateway.relay import CallRelay
from gateway.types import canonical_json

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")

UpstreamState = Literal["connecting", "ready", "down", "stopped"]


class UpstreamFileError(ValueError):
    """The upstreams file is missing or invalid; the message names the file and the problem."""


class UpstreamUnavailable(RuntimeError):
    """The upstream could not be reached or its connection broke during the call."""


class UpstreamRejected(RuntimeError):
    """The upstream answered a request with a JSON-RPC error (``error``: its code, message and data).

    A tools/call passes it to the client as that error; reads, gets and completions answer
    it like a missing item (gateway.forwarding)."""

    def __init__(self, server: str, error: types.ErrorData) -> None:
        super().__init__(f"upstream {server!r} answered JSON-RPC error {error.code}: {error.message[:200]}")
        self.error = error


class UpstreamTimeout(RuntimeError):
    """The upstream did not answer within the call timeout."""


_CALL_RELAY: ContextVar[CallRelay | None] = ContextVar("warden_call_relay", default=None)
"""The relay of the call running in this task (2026-07-28 input requests are dispatched here)."""

_NO_OWNER = "the gateway cannot tell which client's call this request belongs to; it is refused"
_call_keys = itertools.count()


class UpstreamSpec(BaseModel):
    """One upstream MCP server as declared in the upstreams file."""

    model_config = ConfigDict(extra="forbid")

    name: str
    command: str | None = Field(None, description="Executable of a stdio server.")
    args: list[str] = Field(default_factory=list, description="Arguments of the stdio command.")
    env: dict[str, str] = Field(default_factory=dict, description="Literal environment for the stdio process.")
    env_from: dict[str, str] = Field(
        default_factory=dict, description="Environment for the stdio process: variable -> gateway env var to copy."
    )
    cwd: str | None = Field(None, description="Working directory of the stdio process.")
    url: str | None = Field(None, description="Streamable HTTP endpoint of an HTTP server.")
    headers_from_env: dict[str, str] = Field(
        default_factory=dict, description="HTTP headers to send: header name -> gateway env var holding the value."
    )
    prefix: bool = Field(
        True,
        description="Publish tools as <server><separator><tool>; false: under the upstream's own names "
        "(a name another upstream also claims refuses the start; gateway/names.py).",
    )

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"upstream name {value!r} must match {_NAME.pattern} (lowercase, digits, '-')")
        return value

    @model_validator(mode="after")
    def _one_transport(self) -> UpstreamSpec:
        if (self.command is None) == (self.url is None):
            raise ValueError(f"upstream {self.name!r} needs exactly one of 'command' (stdio) or 'url' (HTTP)")
        if self.url is not None and (self.args or self.env or self.env_from or self.cwd):
            raise ValueError(f"upstream {self.name!r}: args/env/env_from/cwd only apply to stdio upstreams")
        if self.command is not None and self.headers_from_env:
            raise ValueError(f"upstream {self.name!r}: headers_from_env only applies to HTTP upstreams")
        return self

    @property
    def transport(self) -> Literal["stdio", "http"]:
        return "stdio" if self.command is not None else "http"


class _UpstreamsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    servers: dict[str, dict[str, Any]]


def load_upstreams(path: Path) -> list[UpstreamSpec]:
    """Parse the upstreams file. Raises UpstreamFileError with the file name and the problem."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UpstreamFileError(f"{path}: cannot read upstreams file: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise UpstreamFileError(f"{path}: invalid YAML: {exc}") from exc
    try:
        parsed = _UpstreamsFile.model_validate(raw or {"servers": {}})
        return [UpstreamSpec.model_validate({"name": name, **(body or {})}) for name, body in parsed.servers.items()]
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'servers'}: {e['msg']}" for e in exc.errors())
        raise UpstreamFileError(f"{path}: {problems}") from exc


@dataclass(slots=True)
class UpstreamStatus:
    name: str
    transport: str
    state: UpstreamState
    tools: int
    last_error: str
    restarts: int


def definition_hash(tool: types.Tool) -> str:
    """sha256 of what a tool tells a model: name, title, description, input/output schema, annotations."""
    annotations = tool.annotations.model_dump(mode="json", exclude_none=True) if tool.annotations else None
    definition = {
        "name": tool.name,
        "title": tool.title,
        "description": tool.description,
        "inputSchema": tool.input_schema,
        "outputSchema": tool.output_schema,
        "annotations": annotations,
    }
    return hashlib.sha256(canonical_json(definition).encode()).hexdigest()


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
    """Its resources, templates and prompts, as last listed (``gateway.listings``)."""
    on_resource_updated: UpdatedHook | None = None
    on_list_changed: ListChangedHook | None = None
    subscribed: set[str] = field(default_factory=set)
    """Upstream URIs the gateway is subscribed to on this upstream (subscribed again on reconnect)."""
    last_error: str = ""
    restarts: int = 0
    _client: Client | None = None
    _in_flight: dict[int, CallRelay | None] = field(default_factory=dict)
    """Calls sent and not yet answered: their relays (None for a call without one)."""
    _broken: anyio.Event = field(default_factory=anyio.Event)
    _wake: anyio.Event = field(default_factory=anyio.Event)
    """Set by the upstream's notifications/tools/list_changed, and with ``_broken``: ``_watch`` acts now."""
    _ready: anyio.Event = field(default_factory=anyio.Event)

    @property
    def name(self) -> str:
        return self.spec.name

    def status(self) -> UpstreamStatus:
        return UpstreamStatus(
            self.name, self.spec.transport, self.state, len(self.tools), self.last_error, self.restarts
        )

    async def wait_ready(self, timeout_s: float) -> bool:
        with anyio.move_on_after(timeout_s):
            await self._ready.wait()
        return self.state == "ready"

    def _target(self) -> tuple[StdioServerParameters | Any, httpx2.AsyncClient | None]:
        spec = self.spec
        if spec.command is not None:
            env = dict(spec.env)
            for var, source in spec.env_from.items():
                if source not in self.environ:
                    raise UpstreamUnavailable(f"environment variable {source} (for {var}) is not set")
                env[var] = self.environ[source]
            return StdioServerParameters(command=spec.command, args=spec.args, env=env or None, cwd=spec.cwd), None
        headers: dict[str, str] = {}
        for header, source in spec.headers_from_env.items():
            if source not in self.environ:
                raise UpstreamUnavailable(f"environment variable {source} (for header {header}) is not set")
            headers[header] = self.environ[source]
        http = httpx2.AsyncClient(
            headers=headers, timeout=httpx2.Timeout(30.0, read=300.0), transport=IsolatingTransport()
        )
        assert spec.url is not None
        return streamable_http_client(spec.url, http_client=http), http

    async def run(self) -> None:
        """Connect, serve, and reconnect with capped exponential backoff until cancelled."""
        delay = self.backoff_initial_s
        while True:
            connected_at = time.monotonic()
            try:
                await self._serve_once()
            except Exception as exc:  # boundary: any failure of one upstream must not escape the supervisor
                self.last_error = _describe(exc)
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
        target, http = self._target()
        # One scope around the whole session (task groups inside must nest in it); its deadline
        # bounds connecting and listing, and is lifted once the upstream is ready.
        with anyio.CancelScope(deadline=anyio.current_time() + self.connect_timeout_s) as scope:
            async with contextlib.AsyncExitStack() as stack:
                if http is not None:
                    await stack.enter_async_context(http)
                client = await stack.enter_async_context(self._new_client(target))
                listed = await _list_all_tools(client)
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
                _describe(exc),
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
                    listed = await _list_all_tools(client)
                    await self.refresh_catalog(listed)
                    await self._refresh_offerings(client)
            except Exception as exc:  # boundary: any probe failure means reconnect
                self.last_error = f"health probe failed: {_describe(exc)}"
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
            sampling_callback=self._on_sampling,
            elicitation_callback=self._on_elicitation,
            list_roots_callback=self._on_roots,
            logging_callback=self._on_log,
        )

    def _owner(self) -> CallRelay | None:
        """The relay an upstream message belongs to (module docstring: the correlation rule)."""
        relay = _CALL_RELAY.get()
        if relay is not None:
            return relay
        if len(self._in_flight) == 1:
            return next(iter(self._in_flight.values()))
        return None

    async def _server_request(self, request: types.InputRequest) -> types.InputResponse | types.ErrorData:
        relay = self._owner()
        if relay is None:
            logger.info("upstream %s: refused %s (no single calling client)", self.name, request.method)
            return types.ErrorData(code=types.INVALID_REQUEST, message=_NO_OWNER)
        return await relay.server_request(self.name, request)

    async def _on_sampling(
        self, context: Any, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult | types.CreateMessageResultWithTools | types.ErrorData:
        answer = await self._server_request(types.CreateMessageRequest(params=params))
        if isinstance(answer, types.CreateMessageResult | types.CreateMessageResultWithTools | types.ErrorData):
            return answer
        return types.ErrorData(code=types.INTERNAL_ERROR, message="the client answered with the wrong result")

    async def _on_elicitation(
        self, context: Any, params: types.ElicitRequestParams
    ) -> types.ElicitResult | types.ErrorData:
        answer = await self._server_request(types.ElicitRequest(params=params))
        if isinstance(answer, types.ElicitResult | types.ErrorData):
            return answer
        return types.ErrorData(code=types.INTERNAL_ERROR, message="the client answered with the wrong result")

    async def _on_roots(self, context: Any) -> types.ListRootsResult | types.ErrorData:
        answer = await self._server_request(types.ListRootsRequest())
        if isinstance(answer, types.ListRootsResult | types.ErrorData):
            return answer
        return types.ErrorData(code=types.INTERNAL_ERROR, message="the client answered with the wrong result")

    async def _on_log(self, params: types.LoggingMessageNotificationParams) -> None:
        relay = self._owner()
        if relay is not None:
            await relay.log(params)

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
        key = next(_call_keys)
        self._in_flight[key] = relay
        token = _CALL_RELAY.set(relay)
        try:
            with anyio.fail_after(timeout_s):
                result = await _send(client, tool, dict(arguments), relay, dict(meta) if meta else {})
        except Exception as exc:  # boundary: translate every client failure into one gateway error
            raise self._failure(exc, timeout_s) from exc
        finally:
            _CALL_RELAY.reset(token)
            self._in_flight.pop(key, None)
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
        if _is_rejection(exc):
            return UpstreamRejected(self.name, exc.error)
        reason = _describe(exc)
        if _is_connection_failure(exc):
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
            await self.send(lambda client: _subscribe(client, uri, True), timeout_s)

    async def unsubscribe(self, uri: str, timeout_s: float) -> None:
        self.subscribed.discard(uri)
        if self.offerings.subscribe:
            await self.send(lambda client: _subscribe(client, uri, False), timeout_s)

    async def _resubscribe(self, client: Client) -> None:
        if self.offerings.subscribe:
            for uri in sorted(self.subscribed):
                await _subscribe(client, uri, True)


async def _subscribe(client: Client, uri: str, on: bool) -> types.EmptyResult:
    with warnings.catch_warnings():  # resources/subscribe is the 2025 wire; deprecated only for 2026-07-28
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        return await (client.subscribe_resource(uri) if on else client.unsubscribe_resource(uri))


async def _send(
    client: Client, tool: str, arguments: dict[str, Any], relay: CallRelay | None, extra: dict[str, Any]
) -> types.CallToolResult | types.InputRequiredResult | types.Result:
    """The SDK call for one forwarded tools/call: plain, or carrying this call's relay."""
    if relay is None:
        return await client.call_tool(tool, arguments, meta=cast(types.RequestParamsMeta, extra) if extra else None)
    progress = relay.progress if relay.wants_progress else None
    if relay.log_level is not None and relay.link.streams and client.protocol_version in MODERN_PROTOCOL_VERSIONS:
        extra[types.LOG_LEVEL_META_KEY] = relay.log_level
    meta = cast(types.RequestParamsMeta, extra) if extra else None
    if not relay.modern:
        return await client.call_tool(tool, arguments, progress_callback=progress, meta=meta)
    # A 2026-07-28 client answers the upstream's input requests itself (the proxy relays them).
    for attempt in (1, 2):
        try:
            return await client.session.call_tool(
                tool,
                arguments,
                progress_callback=progress,
                input_responses=relay.input_responses or None,
                request_state=relay.upstream_state,
                meta=meta,
                allow_input_required=True,
            )
        except MCPError as exc:  # the spec's recovery from a stale listing, as Client.call_tool does it
            if exc.code != types.HEADER_MISMATCH or attempt == 2:
                raise
            await client.list_tools(cache_mode="refresh")
    raise AssertionError("unreachable")


async def _list_all_tools(client: Client) -> list[types.Tool]:
    tools: list[types.Tool] = []
    cursor: str | None = None
    while True:
        page = await client.list_tools(cursor=cursor) if cursor else await client.list_tools()
        tools.extend(page.tools)
        cursor = page.next_cursor
        if not cursor:
            return tools


def _describe(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text


def _is_rejection(exc: BaseException) -> TypeGuard[MCPError]:
    """A JSON-RPC error the upstream sent, not one the SDK made up locally (connection closed, timeout)."""
    local = (types.CONNECTION_CLOSED, types.REQUEST_TIMEOUT)
    isolated = "upstream connection failed" in str(exc).lower()  # gateway.delivery's answer for one broken request
    return isinstance(exc, MCPError) and exc.code not in local and not isolated and not _is_connection_failure(exc)


def _is_connection_failure(exc: BaseException) -> bool:
    text = str(exc).lower()
    if isinstance(exc, (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError, httpx2.TransportError)):
        return True
    return "connection closed" in text or ("connection" in text and "refused" in text) or "never sent" in text


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    """A namespaced tool: what the agent sees, and where it goes."""

    public_name: str
    upstream: Upstream
    tool: types.Tool
    definition_hash: str

    @property
    def server(self) -> str:
        return self.upstream.name


class UpstreamPool:
    """All upstreams, supervised in one task group, and the aggregated catalog."""

    def __init__(
        self,
        specs: list[UpstreamSpec],
        *,
        separator: str = "__",
        connect_timeout_s: float = 20.0,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        probe_interval_s: float = 15.0,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        servers = [spec.name for spec in specs]
        if len(set(servers)) != len(servers):
            raise UpstreamFileError(f"duplicate upstream names: {sorted(n for n in servers if servers.count(n) > 1)}")
        for name in servers:
            if separator in name:
                raise UpstreamFileError(f"upstream name {name!r} must not contain the separator {separator!r}")
        self.separator = separator
        self.unprefixed = frozenset(spec.name for spec in specs if not spec.prefix)
        self._owner_cache: tuple[tuple[int, ...], dict[str, names.Claim]] | None = None
        env = dict(environ if environ is not None else os.environ)
        self.upstreams = {
            spec.name: Upstream(
                spec,
                connect_timeout_s=connect_timeout_s,
                backoff_initial_s=backoff_initial_s,
                backoff_max_s=backoff_max_s,
                probe_interval_s=probe_interval_s,
                environ=env,
            )
            for spec in specs
        }

    def review_catalogs_with(self, hook: CatalogHook) -> None:
        """Await ``hook`` after every listing of every upstream (tool pinning)."""
        for upstream in self.upstreams.values():
            upstream.on_catalog = hook

    def start(self, tg: TaskGroup) -> None:
        for upstream in self.upstreams.values():
            tg.start_soon(upstream.run, name=f"upstream:{upstream.name}")

    async def wait_ready(self, timeout_s: float) -> bool:
        """Wait until every upstream is ready (True) or the timeout passes (False)."""
        with anyio.move_on_after(timeout_s):
            for upstream in self.upstreams.values():
                await upstream._ready.wait()
            return True
        return False

    # ---- public names: the one mapping (server, upstream tool) <-> public name (gateway/names.py) ----

    def public_name(self, server: str, tool: str) -> str:
        """The name agents see for ``tool`` of ``server`` (prefixed unless mounted with ``prefix: false``)."""
        return names.public_name(server, tool, prefixed=server not in self.unprefixed, separator=self.separator)

    def resolve(self, public_name: str) -> tuple[str, str] | None:
        """(server, upstream tool) serving a public name now; None when unknown or withheld (collision)."""
        claim = self._owners().get(public_name)
        return (claim.server, claim.tool) if claim is not None else None

    def split(self, public_name: str) -> tuple[str, str]:
        """(server, upstream tool) of any name, for the audit of unknown ones: resolved, else by the separator."""
        return self.resolve(public_name) or names.split_offline(public_name, self.separator)

    def collisions(self) -> list[str]:
        """A message per public name more than one upstream claims (the start is refused on any)."""
        return names.collisions(self._claims())

    def refuse_collisions(self) -> None:
        """Raise UpstreamFileError naming both claimants of any public name claimed twice."""
        problems = self.collisions()
        if problems:
            raise UpstreamFileError(
                f"tool name collision ({', '.join(sorted(self.unprefixed))} unprefixed): " + "; ".join(problems)
            )

    def _claims(self) -> dict[str, list[names.Claim]]:
        listed = {upstream.name: list(upstream.tools) for upstream in self.upstreams.values()}
        return names.claims(listed, self.unprefixed, self.separator)

    def _owners(self) -> dict[str, names.Claim]:
        """Public name -> who serves it; rebuilt when any catalog changes (names are part of definitions)."""
        version = self.catalog_version
        if self._owner_cache is None or self._owner_cache[0] != version:
            owners: dict[str, names.Claim] = {}
            for name, contenders in self._claims().items():
                chosen = names.owner(contenders)
                if chosen is not None:
                    owners[name] = chosen
                if len(contenders) > 1:
                    logger.error("tool name collision: %s", names.collisions({name: contenders})[0])
            self._owner_cache = (version, owners)
        return self._owner_cache[1]

    def catalog(self) -> list[CatalogEntry]:
        """Every tool of every ready upstream, under its public name. Down upstreams contribute nothing."""
        found = []
        for public, claim in self._owners().items():
            upstream = self.upstreams[claim.server]
            tool = upstream.tools.get(claim.tool) if upstream.state == "ready" else None
            if tool is not None:
                found.append(self._entry(upstream, tool, public))
        return found

    def entry(self, public_name: str) -> CatalogEntry | None:
        """The catalog entry of a public name, also while its upstream reconnects; None when unknown."""
        resolved = self.resolve(public_name)
        upstream = self.upstreams[resolved[0]] if resolved is not None else None
        tool = upstream.tools.get(resolved[1]) if upstream is not None and resolved is not None else None
        if upstream is None or tool is None:
            return None
        return self._entry(upstream, tool, public_name)

    @property
    def catalog_version(self) -> tuple[int, ...]:
        """Changes whenever any upstream's definitions change."""
        return tuple(upstream.catalog_version for upstream in self.upstreams.values())

    def _entry(self, upstream: Upstream, tool: types.Tool, public_name: str) -> CatalogEntry:
        digest = upstream.hashes.get(tool.name) or definition_hash(tool)
        return CatalogEntry(public_name, upstream, tool, digest)

    def statuses(self) -> list[UpstreamStatus]:
        return [upstream.status() for upstream in self.upstreams.values()]
