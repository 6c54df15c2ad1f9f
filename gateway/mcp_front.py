"""The MCP endpoint agents connect to: the official `mcp` SDK's low-level Server behind
its Streamable HTTP session manager.

Owns: translating MCP `tools/list` and `tools/call` into `Proxy` calls and back. Both
protocol eras are served by the SDK: 2026-07-28 single-exchange requests (stateless) and
the 2025 initialize-handshake revisions (sessions bound to the identity that opened them).
Malformed JSON-RPC, unknown methods and oversized bodies are answered by the SDK with
JSON-RPC / HTTP errors before they reach the proxy. Each identity holds at most
``mcp_sessions_per_identity`` 2025-protocol sessions (gateway.sessions); Host/Origin and body
caps are checked before this endpoint (gateway.edge).
"""

from __future__ import annotations

from typing import Any

import mcp_types as types
from mcp.server.lowlevel.server import Server
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from mcp.shared.exceptions import MCPError
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from gateway.auth import identity_from_scope
from gateway.config import Settings
from gateway.proxy import APPROVAL_INPUT_KEY, Proxy
from gateway.sessions import IdentitySessionManager, SessionCapAnswer
from gateway.types import ClientFeatures

REQUEST_REF_META_KEY = "warden/request_id"
"""`_meta` key an agent sets on tools/call to tie the call to the user request that caused it."""


def _identity(ctx: Any) -> str:
    request = getattr(ctx, "request", None)
    name = identity_from_scope(request.scope) if request is not None else None
    if name is None:  # the auth middleware guarantees it; refuse rather than guess
        raise MCPError(types.INVALID_REQUEST, "unauthenticated request")
    return name


def _client_features(ctx: Any, params: types.CallToolRequestParams) -> ClientFeatures:
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
    return ClientFeatures(url_elicitation=takes_url, resumes=params.request_state)


def build_mcp_server(proxy: Proxy, version: str) -> Server[Any]:
    async def on_list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=await proxy.list_tools(_identity(ctx)))

    async def on_call_tool(
        ctx: Any, params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        ref = (params.meta or {}).get(REQUEST_REF_META_KEY)
        return await proxy.call(
            _identity(ctx),
            params.name,
            params.arguments or {},
            request_ref=str(ref) if ref is not None else None,
            client=_client_features(ctx, params),
        )

    return Server(
        "warden-gateway",
        version=version,
        instructions="Warden gateway: tools of several MCP servers, filtered and checked by policy.",
        on_list_tools=on_list_tools,
        on_call_tool=on_call_tool,
        get_tool_input_schema=proxy.input_schema,
    )


def build_session_manager(server: Server[Any], settings: Settings) -> IdentitySessionManager:
    return IdentitySessionManager(
        app=server,
        json_response=True,
        stateless=False,
        max_request_body_size=settings.max_body_bytes,
        max_sessions=settings.mcp_max_sessions,
        session_idle_timeout=settings.mcp_session_idle_s,
        per_identity=settings.mcp_sessions_per_identity,
    )


def mcp_asgi(manager: IdentitySessionManager) -> SessionCapAnswer:
    return SessionCapAnswer(StreamableHTTPASGIApp(manager), manager)
