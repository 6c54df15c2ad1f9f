"""An upstream that uses everything a server may send a client during a call (the gateway's relay tests).

A real `mcp` SDK low-level server over Streamable HTTP (SSE responses), run by uvicorn in
its own process. Tools:

- ``progress(steps)``: one progress notification per step (under the caller's token), then "done";
- ``chatty(text)``: log messages at debug, info and warning, then the text;
- ``ask_model(prompt)``, ``ask_user(question)``, ``client_roots()``: a sampling, elicitation or
  roots request to the client (2025: a request on the call's stream; 2026-07-28: an
  input-required result, answered on the retry), answering with what the client said;
- ``wait_for_cancel(tag)``: writes ``started <tag>`` to RELAY_EVENTS, then waits until the call
  is cancelled and writes ``cancelled <tag>`` (or ``finished <tag>`` after 30 s);
- ``needs_task()``: declares ``execution.taskSupport: required``.

With RELAY_ERA=legacy it refuses 2026-07-28 requests (HTTP 400; over stdio, ``server/discover``
is an unknown method), so clients fall back to the 2025 initialize handshake: the same tools
over the other era.

Run: python -m tests.upstreams.relay_server PORT   (Streamable HTTP)
     python -m tests.upstreams.relay_server stdio  (stdio)
"""

from __future__ import annotations

import os
import sys
import warnings
from typing import Any

import anyio
import mcp_types as types
import uvicorn
from mcp.server.lowlevel.server import Server
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp.shared.message import ServerMessageMetadata
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from starlette.types import ASGIApp, Receive, Scope, Send

warnings.simplefilter("ignore", MCPDeprecationWarning)

_OBJECT: dict[str, Any] = {"type": "object"}


def _tool(name: str, properties: dict[str, Any] | None = None, **extra: Any) -> types.Tool:
    schema = {"type": "object", "properties": properties or {}}
    return types.Tool(name=name, description=f"relay test tool {name}", input_schema=schema, **extra)


TOOLS = [
    _tool("progress", {"steps": {"type": "integer"}}),
    _tool("chatty", {"text": {"type": "string"}}),
    _tool("ask_model", {"prompt": {"type": "string"}}),
    _tool("ask_user", {"question": {"type": "string"}}),
    _tool("client_roots"),
    _tool("wait_for_cancel", {"tag": {"type": "string"}}),
    _tool("needs_task", execution=types.ToolExecution(task_support="required")),
]


def _event(line: str) -> None:
    path = os.environ.get("RELAY_EVENTS")
    if path:
        with open(path, "a", encoding="utf-8") as log:
            log.write(line + "\n")


def _text(text: str, *, error: bool = False) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=error)


def _input_request(name: str, args: dict[str, Any]) -> types.InputRequest:
    if name == "ask_model":
        message = types.SamplingMessage(role="user", content=types.TextContent(type="text", text=str(args["prompt"])))
        return types.CreateMessageRequest(params=types.CreateMessageRequestParams(messages=[message], max_tokens=64))
    if name == "ask_user":
        schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"]}
        params = types.ElicitRequestFormParams(message=str(args["question"]), requested_schema=schema)
        return types.ElicitRequest(params=params)
    return types.ListRootsRequest()


def _describe(answer: Any) -> str:
    if isinstance(answer, types.CreateMessageResult):
        return f"model said: {getattr(answer.content, 'text', '')}"
    if isinstance(answer, types.ElicitResult):
        return f"user {answer.action}: {(answer.content or {}).get('answer', '')}"
    if isinstance(answer, types.ListRootsResult):
        return "roots: " + ",".join(str(root.uri) for root in answer.roots)
    return f"unexpected answer {type(answer).__name__}"


_RESULT_TYPES: dict[str, Any] = {
    "ask_model": types.CreateMessageResult,
    "ask_user": types.ElicitResult,
    "client_roots": types.ListRootsResult,
}


async def _ask(ctx: Any, name: str, args: dict[str, Any], params: types.CallToolRequestParams) -> Any:
    """2025: a request on the call's stream. 2026-07-28: an input-required round."""
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
        answer = (params.input_responses or {}).get("ask")
        if answer is None:
            return types.InputRequiredResult(input_requests={"ask": _input_request(name, args)}, request_state=name)
        return _text(_describe(answer))
    metadata = ServerMessageMetadata(related_request_id=ctx.request_id)
    try:
        answer = await ctx.session.send_request(_input_request(name, args), _RESULT_TYPES[name], metadata=metadata)
    except MCPError as exc:
        return _text(f"refused: {exc.message}", error=True)
    return _text(_describe(answer))


async def _progress(ctx: Any, steps: int) -> types.CallToolResult:
    token = (ctx.meta or {}).get("progress_token")
    for step in range(1, steps + 1):
        if token is not None:
            params = types.ProgressNotificationParams(
                progress_token=token, progress=step, total=steps, message=f"step {step}"
            )
            await ctx.session.send_notification(
                types.ProgressNotification(params=params), related_request_id=ctx.request_id
            )
    return _text("done")


async def _chatty(ctx: Any, text: str) -> types.CallToolResult:
    for level in ("debug", "info", "warning"):
        await ctx.session.send_log_message(level, f"{level}: {text}", logger="relay", related_request_id=ctx.request_id)
    return _text(text)


async def _wait_for_cancel(tag: str) -> types.CallToolResult:
    _event(f"started {tag}")
    try:
        await anyio.sleep(30)
    except anyio.get_cancelled_exc_class():
        _event(f"cancelled {tag}")
        raise
    _event(f"finished {tag}")
    return _text("not cancelled")


async def on_call_tool(
    ctx: Any, params: types.CallToolRequestParams
) -> types.CallToolResult | types.InputRequiredResult:
    args = params.arguments or {}
    name = params.name
    if name == "progress":
        return await _progress(ctx, int(args.get("steps", 3)))
    if name == "chatty":
        return await _chatty(ctx, str(args.get("text", "")))
    if name in _RESULT_TYPES:
        result: types.CallToolResult | types.InputRequiredResult = await _ask(ctx, name, args, params)
        return result
    if name == "wait_for_cancel":
        return await _wait_for_cancel(str(args.get("tag", "")))
    return _text(f"{name} ran without a task", error=True)


async def on_list_tools(ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
    return types.ListToolsResult(tools=TOOLS)


async def on_set_logging_level(ctx: Any, params: types.SetLevelRequestParams) -> types.EmptyResult:
    return types.EmptyResult()


server: Server[Any] = Server(
    "relay", on_list_tools=on_list_tools, on_call_tool=on_call_tool, on_set_logging_level=on_set_logging_level
)


class LegacyOnly:
    """Refuses 2026-07-28 requests with HTTP 400, so clients fall back to the 2025 handshake."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        versions = [v for k, v in scope.get("headers", ()) if k == b"mcp-protocol-version"]
        if scope["type"] == "http" and any(v.decode() in MODERN_PROTOCOL_VERSIONS for v in versions):
            await send({"type": "http.response.start", "status": 400, "headers": [(b"content-length", b"0")]})
            await send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, send)


async def _stdio() -> None:
    from mcp.server.stdio import stdio_server
    from mcp.shared.message import SessionMessage

    async with stdio_server() as (read_stream, write_stream):
        if os.environ.get("RELAY_ERA") != "legacy":
            await server.run(read_stream, write_stream, server.create_initialization_options())
            return
        inbound, server_reads = anyio.create_memory_object_stream[Any](0)

        async def refuse_discover() -> None:
            async with inbound:
                async for item in read_stream:
                    message = getattr(item, "message", None)
                    if isinstance(message, types.JSONRPCRequest) and message.method == "server/discover":
                        error = types.ErrorData(code=types.METHOD_NOT_FOUND, message="2025 only")
                        await write_stream.send(
                            SessionMessage(types.JSONRPCError(jsonrpc="2.0", id=message.id, error=error))
                        )
                        continue
                    await inbound.send(item)

        async with anyio.create_task_group() as tg:
            tg.start_soon(refuse_discover)
            await server.run(server_reads, write_stream, server.create_initialization_options())
            tg.cancel_scope.cancel()


def main() -> None:
    if sys.argv[1] == "stdio":
        anyio.run(_stdio)
        return
    port = int(sys.argv[1])
    app: ASGIApp = server.streamable_http_app()
    if os.environ.get("RELAY_ERA") == "legacy":
        app = LegacyOnly(app)
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
