"""The MCP endpoint agents connect to: the official `mcp` SDK's low-level Server behind
its Streamable HTTP session manager.

Owns: translating MCP `tools/list` and `tools/call` into `Proxy` calls and back. Both
protocol eras are served by the SDK: 2026-07-28 single-exchange requests (stateless) and
the 2025 initialize-handshake revisions (sessions bound to the identity that opened them).
Malformed JSON-RPC, unknown methods and oversized bodies are answered by the SDK with
JSON-RPC / HTTP errors before they reach the proxy. Each identity holds at most
``mcp_sessions_per_identity`` 2025-protocol sessions (gateway.sessions); Host/Origin and body
caps are checked before this endpoint (gateway.edge), protocol-version headers and refused
opening requests are answered around the SDK (gateway.transport).

``tools/list`` pages with the gateway's own cursors (gateway.cursor; a foreign one is -32602)
and registers a 2025 session for list_changed; ``subscriptions/listen`` (2026-07-28) is served
per identity, and ``tools.listChanged`` is advertised on both eras (gateway.changes).

Per call, a ``CallRelay`` (``gateway.relay``) links the upstream call to THIS request of
THIS client (``_FrontLink``): progress under the client's token, log messages at the level
it chose (2025: ``logging/setLevel``, kept per client session in ``LogLevels``; 2026-07-28:
the ``_meta`` opt-in), server requests on its SSE response (2025) or in an input-required
result (2026-07-28). Responses are JSON or SSE per request (``gateway.streaming``). A tool
whose ``execution.taskSupport`` is ``required`` is decided and audited like any call, then
refused with a JSON-RPC error instead of being forwarded (tasks are not supported; the
proxy raises ``JsonRpcRefusal``); ``tasks/*`` methods are unknown methods (-32601).
"""

from __future__ import annotations

import logging
import warnings
from collections import OrderedDict
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import mcp_types as types
from mcp.server.lowlevel.server import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.streamable_http import MCP_SESSION_ID_HEADER
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp.shared.message import ServerMessageMetadata
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from starlette.types import Receive, Scope, Send

from gateway import answers, cursor, meta
from gateway.auth import identity_from_scope, key_prefix_from_scope
from gateway.changes import ToolListChanges
from gateway.config import Settings
from gateway.proxy.context import JsonRpcRefusal
from gateway.proxy.hold import APPROVAL_INPUT_KEY
from gateway.proxy.pipeline import Proxy
from gateway.relay import LOG_LEVELS, STATE_PREFIX, CallRelay, from_client_responses
from gateway.sessions import IdentitySessionManager, SessionCapAnswer
from gateway.streaming import client_accepts_sse, mark_request, unmark
from gateway.transport import ProtocolAnswers
from gateway.types import Caller, ClientFeatures

if TYPE_CHECKING:
    from gateway.features import Front

logger = logging.getLogger(__name__)

REQUEST_REF_META_KEY = "warden/request_id"
"""`_meta` key an agent sets on tools/call to tie the call to the user request that caused it."""


_REQUEST_IDENTITY: ContextVar[str | None] = ContextVar("warden_request_identity", default=None)
"""The authenticated identity of the HTTP request being handled (for the SDK's schema lookup)."""


def _identity(ctx: Any) -> str:
    return _caller(ctx).name


def _caller(ctx: Any) -> Caller:
    request = getattr(ctx, "request", None)
    name = identity_from_scope(request.scope) if request is not None else None
    if request is None or name is None:  # the auth middleware guarantees it; refuse rather than guess
        raise MCPError(types.INVALID_REQUEST, "unauthenticated request")
    return Caller(name, key_prefix_from_scope(request.scope))


def _client_features(ctx: Any, params: Any) -> ClientFeatures:
    """Whether this client takes the approval link as a URL elicitation, and what it resumes.

    Only on 2026-07-28, where the elicitation rides in the input-required result; clients of
    the 2025 revisions, and clients that declined this round's elicitation, get plain text.
    """
    session = getattr(ctx, "session", None)
    capabilities = session.client_capabilities if session is not None else None
    elicitation = capabilities.elicitation if capabilities is not None else None
    takes_url = getattr(ctx, "protocol_version", None) in MODERN_PROTOCOL_VERSIONS and (
        elicitation is not None and elicitation.url is not None
    )
    answer = (params.input_responses or {}).get(APPROVAL_INPUT_KEY)
    if isinstance(answer, types.ElicitResult) and answer.action != "accept":
        takes_url = False
    state = params.request_state
    resumes = state if state is not None and not state.startswith(STATE_PREFIX) else None
    return ClientFeatures(url_elicitation=takes_url, resumes=resumes, meta=meta.to_upstream(params.meta))


class LogLevels:
    """``logging/setLevel`` per 2025 client session, keyed by (identity, session id); oldest dropped past ``cap``."""

    def __init__(self, cap: int) -> None:
        self.cap = cap
        self._levels: OrderedDict[tuple[str, str], types.LoggingLevel] = OrderedDict()

    def set(self, identity: str, session_id: str, level: types.LoggingLevel) -> None:
        self._levels[(identity, session_id)] = level
        self._levels.move_to_end((identity, session_id))
        while len(self._levels) > self.cap:
            self._levels.popitem(last=False)

    def get(self, identity: str, session_id: str | None) -> types.LoggingLevel | None:
        return self._levels.get((identity, session_id)) if session_id is not None else None


_RESULT_TYPES: dict[str, Any] = {
    "elicitation/create": types.ElicitResult,
    "roots/list": types.ListRootsResult,
}


class _FrontLink:
    """The calling client's request, for its ``CallRelay``: notifications and requests ride this request only."""

    def __init__(self, ctx: Any) -> None:
        self.ctx = ctx
        self.modern = getattr(ctx, "protocol_version", None) in MODERN_PROTOCOL_VERSIONS
        back_channel = bool(ctx.session.can_send_request)
        self.streams = client_accepts_sse() if self.modern else back_channel
        self.can_request = back_channel and not self.modern

    async def notify(self, notification: types.ServerNotification) -> None:
        await self.ctx.session.send_notification(notification, related_request_id=self.ctx.request_id)

    async def request(self, request: types.InputRequest) -> types.InputResponse | types.ErrorData:
        if not self.ctx.session.check_client_capability(_needed(request)):
            return types.ErrorData(code=types.INVALID_REQUEST, message=f"the client does not support {request.method}")
        result_type = _RESULT_TYPES.get(request.method, types.CreateMessageResult)
        if isinstance(request, types.CreateMessageRequest) and request.params.tools:
            result_type = types.CreateMessageResultWithTools
        metadata = ServerMessageMetadata(related_request_id=self.ctx.request_id)
        try:
            answer: types.InputResponse = await self.ctx.session.send_request(request, result_type, metadata=metadata)
        except MCPError as exc:
            return types.ErrorData(code=exc.code, message=exc.message)
        return answer


def _needed(request: types.InputRequest) -> types.ClientCapabilities:
    if isinstance(request, types.CreateMessageRequest):
        return types.ClientCapabilities(sampling=types.SamplingCapability())
    if isinstance(request, types.ElicitRequest):
        return types.ClientCapabilities(elicitation=types.ElicitationCapability())
    return types.ClientCapabilities(roots=types.RootsCapability())


def _relay(ctx: Any, params: types.CallToolRequestParams, levels: LogLevels, identity: str) -> CallRelay:
    link = _FrontLink(ctx)
    meta = params.meta or {}
    if link.modern:
        requested = meta.get(types.LOG_LEVEL_META_KEY)
        level = requested if requested in LOG_LEVELS else None  # only a known level is forwarded upstream
    else:
        level = levels.get(identity, _session_id(ctx))
    state = params.request_state
    return CallRelay(
        link=link,
        progress_token=meta.get("progress_token"),
        log_level=level,
        modern=link.modern,
        input_responses=from_client_responses(params.input_responses),
        returned_state=state if state is not None and state.startswith(STATE_PREFIX) else None,
    )


class _GatewayServer(Server[Any]):
    """The SDK's Server, advertising ``tools.listChanged`` to 2025-handshake clients too.

    At 2026-07-28 the SDK derives ``listChanged`` from ``subscriptions/listen`` being served;
    the handshake era takes it from ``NotificationOptions``, which the session manager never
    passes (it calls this method without arguments).
    """

    def create_initialization_options(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
    ) -> InitializationOptions:
        options = notification_options or NotificationOptions(
            tools_changed=True, prompts_changed=True, resources_changed=True
        )
        return super().create_initialization_options(options, experimental_capabilities, extensions)


def _session_id(ctx: Any) -> str | None:
    """The 2025 session this request belongs to (None at 2026-07-28, which has no sessions)."""
    request = getattr(ctx, "request", None)
    if request is None or getattr(ctx, "protocol_version", None) in MODERN_PROTOCOL_VERSIONS:
        return None
    value = request.headers.get(MCP_SESSION_ID_HEADER)
    return str(value) if value else None


def build_mcp_server(
    proxy: Proxy,
    version: str,
    changes: ToolListChanges,
    page_size: int = 0,
    front: Front | None = None,
    *,
    log_levels: LogLevels | None = None,
) -> Server[Any]:
    """The MCP server; ``front`` adds the resource, prompt and completion methods (gateway.features)."""
    levels = log_levels if log_levels is not None else LogLevels(10_000)

    async def on_list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        name = _identity(ctx)
        given = params.cursor if params is not None else None
        try:
            if given is not None:
                cursor.decode(given)  # a bogus cursor is refused before anything is listed
        except cursor.BadCursor:
            raise MCPError(types.INVALID_PARAMS, answers.BAD_CURSOR) from None
        try:
            tools = await proxy.list_tools(name)
        except Exception:  # boundary: the agent gets a plain error, never the internal text (audit, database)
            logger.exception("tools/list for %s failed", name)
            raise MCPError(types.INTERNAL_ERROR, "the gateway could not list tools right now; try again") from None
        session_id = _session_id(ctx)
        if session_id is not None:
            changes.track(name, session_id, ctx.session, proxy.visibility.fingerprint(name))
        shown, next_cursor = cursor.page(tools, given, page_size)
        return types.ListToolsResult(tools=shown, next_cursor=next_cursor)

    async def on_call_tool(
        ctx: Any, params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        ref = (params.meta or {}).get(REQUEST_REF_META_KEY)
        caller = _caller(ctx)
        try:
            return await proxy.call(
                caller,
                params.name,
                params.arguments or {},
                request_ref=str(ref) if ref is not None else None,
                client=_client_features(ctx, params),
                relay=_relay(ctx, params, levels, caller.name),
            )
        except JsonRpcRefusal as refusal:
            raise MCPError(refusal.code, refusal.message) from None

    async def on_set_logging_level(ctx: Any, params: types.SetLevelRequestParams) -> types.EmptyResult:
        session_id = _session_id(ctx)
        if session_id is not None:
            levels.set(_identity(ctx), session_id, params.level)
        return types.EmptyResult()

    async def on_listen(ctx: Any, params: types.SubscriptionsListenRequestParams) -> types.SubscriptionsListenResult:
        if front is not None:  # the stream's resource URIs are decided and subscribed like resources/subscribe
            return await front.listen(ctx, params, lambda admitted: changes.listen(_identity(ctx), ctx, admitted))
        return await changes.listen(_identity(ctx), ctx, params)

    with warnings.catch_warnings():  # logging is deprecated at 2026-07-28 and still served to 2025 clients
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        return _GatewayServer(
            "warden-gateway",
            version=version,
            instructions="Warden gateway: tools, resources and prompts of several MCP servers, checked by policy.",
            on_list_tools=on_list_tools,
            on_call_tool=on_call_tool,
            on_subscriptions_listen=on_listen,
            on_set_logging_level=on_set_logging_level,
            get_tool_input_schema=lambda name: proxy.visibility.input_schema(name, _REQUEST_IDENTITY.get()),
            **(front.handlers() if front is not None else {}),
        )


def build_session_manager(server: Server[Any], settings: Settings, changes: ToolListChanges) -> IdentitySessionManager:
    return IdentitySessionManager(
        app=server,
        json_response=True,
        stateless=False,
        max_request_body_size=settings.max_body_bytes,
        max_sessions=settings.mcp_max_sessions,
        session_idle_timeout=settings.mcp_session_idle_s,
        per_identity=settings.mcp_sessions_per_identity,
        on_discard=changes.forget,
    )


class _MCPApp:
    """The SDK's ASGI app, with the request's identity in a context variable while it runs.

    The SDK checks `Mcp-Param-*` headers against a tool's schema before dispatch, asking
    ``get_tool_input_schema(name)`` without the caller: the variable lets the proxy answer
    only for tools that caller may see, so the check cannot reveal other tools.
    """

    def __init__(self, manager: IdentitySessionManager) -> None:
        self.app = StreamableHTTPASGIApp(manager)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = _REQUEST_IDENTITY.set(identity_from_scope(scope))
        sse = mark_request(scope)
        try:
            await self.app(scope, receive, send)
        finally:
            unmark(sse)
            _REQUEST_IDENTITY.reset(token)


def mcp_asgi(manager: IdentitySessionManager) -> ProtocolAnswers:
    return ProtocolAnswers(SessionCapAnswer(_MCPApp(manager), manager))
