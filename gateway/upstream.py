"""Connections to upstream MCP servers (stdio processes and Streamable HTTP endpoints).

Owns: the upstreams file format, one long-lived, supervised MCP client session per
upstream (a crashed stdio process or an unreachable URL is reconnected with capped
exponential backoff), the aggregated catalog of namespaced tools, and forwarding a
`tools/call` with a timeout. Which failed calls are tried again, and why only those are safe
to repeat, is ``gateway/delivery.py``'s: a call that finds its upstream reconnecting waits
for it (it was never sent); a connect failure is retried by the HTTP transport before any
byte is written; nothing that may have reached the upstream is ever sent twice.

The catalog: each upstream's tools are listed on connect and again by every idle-time
probe; each listed tool gets a ``definition_hash`` (sha256 over its name, title, description,
input and output schema and annotations). ``Upstream.catalog_version`` changes only when
a definition changes, so callers can cache per definition and drop what a refresh
replaced. ``on_catalog`` (set by the pool) is awaited after every listing: tool pinning
(``gateway/pins.py``) reviews the new definitions there.

Never: forwards anything from the agent's HTTP request (headers, credentials) upstream.
Headers for HTTP upstreams come only from the gateway's own environment, named in the
upstreams file; stdio upstreams get the SDK's minimal default environment plus what the
file names.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import math
import os
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import anyio
import httpx2
import mcp_types as types
import yaml
from anyio.abc import TaskGroup
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gateway.delivery import IsolatingTransport, until_ready
from gateway.types import canonical_json

logger = logging.getLogger(__name__)

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")

UpstreamState = Literal["connecting", "ready", "down", "stopped"]


class UpstreamFileError(ValueError):
    """The upstreams file is missing or invalid; the message names the file and the problem."""


class UpstreamUnavailable(RuntimeError):
    """The upstream could not be reached or its connection broke during the call."""


class UpstreamTimeout(RuntimeError):
    """The upstream did not answer within the call timeout."""


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
    last_error: str = ""
    restarts: int = 0
    _client: Client | None = None
    _broken: anyio.Event = field(default_factory=anyio.Event)
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
        target, http = self._target()
        # One scope around the whole session (task groups inside must nest in it); its deadline
        # bounds connecting and listing, and is lifted once the upstream is ready.
        with anyio.CancelScope(deadline=anyio.current_time() + self.connect_timeout_s) as scope:
            async with contextlib.AsyncExitStack() as stack:
                if http is not None:
                    await stack.enter_async_context(http)
                client = await stack.enter_async_context(Client(target, mode="auto", cache=None))
                listed = await _list_all_tools(client)
                await self.refresh_catalog(listed)
                scope.deadline = math.inf
                self._client = client
                self.state = "ready"
                self.last_error = ""
                self._ready.set()
                logger.info("upstream %s ready (%s, %d tools)", self.name, self.spec.transport, len(self.tools))
                await self._watch(client)
                raise UpstreamUnavailable(self.last_error or "connection lost")
        if scope.cancelled_caught:
            raise UpstreamUnavailable(f"could not connect within {self.connect_timeout_s:g}s")

    async def _watch(self, client: Client) -> None:
        """Return when the connection is broken: a call saw it fail, or an idle-time probe
        (tools/list, which also refreshes the catalog) failed or timed out."""
        while True:
            with anyio.move_on_after(self.probe_interval_s):
                await self._broken.wait()
                return
            try:
                with anyio.fail_after(self.connect_timeout_s):
                    listed = await _list_all_tools(client)
            except Exception as exc:  # boundary: any probe failure means reconnect
                self.last_error = f"health probe failed: {_describe(exc)}"
                return
            await self.refresh_catalog(listed)

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

    async def call(self, tool: str, arguments: Mapping[str, Any], timeout_s: float) -> types.CallToolResult:
        if not await until_ready(self._is_ready, self.wait_ready, timeout_s):  # never sent: safe to wait
            detail = f": {self.last_error}" if self.last_error else ""
            raise UpstreamUnavailable(f"upstream {self.name!r} is {self.state}{detail}")
        client = self._client
        assert client is not None
        try:
            with anyio.fail_after(timeout_s):
                result = await client.call_tool(tool, dict(arguments))
        except TimeoutError as exc:
            raise UpstreamTimeout(f"upstream {self.name!r} did not answer within {timeout_s:g}s") from exc
        except Exception as exc:  # boundary: translate every client failure into one gateway error
            reason = _describe(exc)
            if _is_connection_failure(exc):
                self.mark_broken(reason)
            raise UpstreamUnavailable(f"upstream {self.name!r} failed: {reason}") from exc
        if not isinstance(result, types.CallToolResult):
            raise UpstreamUnavailable(f"upstream {self.name!r} asked for input the gateway cannot relay")
        return result


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
        names = [spec.name for spec in specs]
        if len(set(names)) != len(names):
            raise UpstreamFileError(f"duplicate upstream names: {sorted(n for n in names if names.count(n) > 1)}")
        for name in names:
            if separator in name:
                raise UpstreamFileError(f"upstream name {name!r} must not contain the separator {separator!r}")
        self.separator = separator
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

    def public_name(self, server: str, tool: str) -> str:
        return f"{server}{self.separator}{tool}"

    def catalog(self) -> list[CatalogEntry]:
        """Every tool of every ready upstream, namespaced. Down upstreams contribute nothing."""
        return [
            self._entry(upstream, tool)
            for upstream in self.upstreams.values()
            if upstream.state == "ready"
            for tool in upstream.tools.values()
        ]

    def entry(self, public_name: str) -> CatalogEntry | None:
        """The catalog entry of a public name, also while its upstream reconnects; None when unknown."""
        server, sep, name = public_name.partition(self.separator)
        upstream = self.upstreams.get(server)
        tool = upstream.tools.get(name) if sep and upstream is not None else None
        if upstream is None or tool is None:
            return None
        return self._entry(upstream, tool)

    @property
    def catalog_version(self) -> tuple[int, ...]:
        """Changes whenever any upstream's definitions change."""
        return tuple(upstream.catalog_version for upstream in self.upstreams.values())

    def _entry(self, upstream: Upstream, tool: types.Tool) -> CatalogEntry:
        digest = upstream.hashes.get(tool.name) or definition_hash(tool)
        return CatalogEntry(self.public_name(upstream.name, tool.name), upstream, tool, digest)

    def statuses(self) -> list[UpstreamStatus]:
        return [upstream.status() for upstream in self.upstreams.values()]
