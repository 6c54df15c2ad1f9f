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
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import mcp_types as types
from mcp.server.lowlevel.server import NotificationOptions, Server
from mcp.server.models import InitializationOptions
from mcp.server.streamable_http import MCP_SESSION_ID_HEADER
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from starlette.types import Receive, Scope, Send

from gateway import answers, cursor, meta
from gateway.auth import identity_from_scope, key_prefix_from_scope
from gateway.changes import ToolListChanges
from gateway.config import Settings
from gateway.proxy import APPROVAL_INPUT_KEY, Proxy
from gateway.sessions import IdentitySessionManager, SessionCapAnswer
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
    return ClientFeatures(url_elicitation=takes_url, resumes=params.request_state, meta=meta.to_upstream(params.meta))


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
    proxy: Proxy, version: str, changes: ToolListChanges, page_size: int = 0, front: Front | None = None
) -> Server[Any]:
    """The MCP server; ``front`` adds the resource, prompt and completion methods (gateway.features)."""

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
            changes.track(name, session_id, ctx.session, proxy.fingerprint(name))
        shown, next_cursor = cursor.page(tools, given, page_size)
        return types.ListToolsResult(tools=shown, next_cursor=next_cursor)

    async def on_call_tool(
        ctx: Any, params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        ref = (params.meta or {}).get(REQUEST_REF_META_KEY)
        return await proxy.call(
            _caller(ctx),
            params.name,
            params.arguments or {},
            request_ref=str(ref) if ref is not None else None,
            client=_client_features(ctx, params),
        )

    async def on_listen(ctx: Any, params: types.SubscriptionsListenRequestParams) -> types.SubscriptionsListenResult:
        if front is not None:  # the stream's resource URIs are decided and subscribed like resources/subscribe
            return await front.listen(ctx, params, lambda admitted: changes.listen(_identity(ctx), ctx, admitted))
        return await changes.listen(_identity(ctx), ctx, params)

    return _GatewayServer(
        "warden-gateway",
        version=version,
        instructions="Warden gateway: tools, resources and prompts of several MCP servers, checked by policy.",
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
        on_subscriptions_listen=on_listen,
        get_tool_input_schema=lambda name: proxy.input_schema(name, _REQUEST_IDENTITY.get()),
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
        try:
            await self.app(scope, receive, send)
        finally:
            _REQUEST_IDENTITY.reset(token)


def mcp_asgi(manager: IdentitySessionManager) -> ProtocolAnswers:
    return ProtocolAnswers(SessionCapAnswer(_MCPApp(manager), manager))
