"""The MCP conformance suite's server scenarios, served by a real `mcp` SDK server.

The suite (npm `@modelcontextprotocol/conformance`, `conformance server --url URL`) calls
fixed names: tools `test_simple_text`, `test_image_content`, `test_sampling`, ...;
resources `test://static-text`, `test://template/{id}/data`, ...; prompts
`test_simple_prompt`, ...; plus `logging/setLevel`, `completion/complete`,
`resources/subscribe`, SSE resumption (`test_reconnection`) and DNS-rebinding
protection. Its reference server lives in the suite's source repository, not in the npm
package, so this module serves what the scenarios in the package's `dist/index.js` check.
It is the upstream of tests/conformance/test_suite.py, directly and behind the gateway.
The sampling and elicitation tools ask the client as the negotiated era requires: a request
mid-call at 2025 (the suite's client), an input-required result answered on the retry at
2026-07-28 (the gateway's upstream client).

Owns: those names and their answers. Never: anything Warden-specific (it must pass the
suite on its own, so a failure through the gateway is the gateway's).

Run: python -m tests.upstreams.conformance_server PORT   (Streamable HTTP at /mcp)
     python -m tests.upstreams.conformance_server --stdio
"""

from __future__ import annotations

import json
import sys
import warnings
from typing import Any

import anyio
import mcp_types as types
import uvicorn
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.server.session import ServerSession
from mcp.server.stdio import stdio_server
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp.shared.jsonrpc_dispatcher import progress_token_from_params
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from tests.upstreams.conformance_catalog import (
    COMPLETIONS,
    ELICIT_DEFAULTS,
    ELICIT_ENUMS,
    ELICIT_USER,
    PNG,
    PROMPTS,
    RESOURCES,
    STATIC_TEXT,
    TEMPLATE,
    TEMPLATE_PREFIX,
    TEMPLATE_SUFFIX,
    TOOLS,
    WATCHED_URI,
    WAV,
)
from tests.upstreams.conformance_events import MemoryEventStore

# Logging, sampling and server-to-client requests are deprecated in 2026-07-28 but are
# exactly what the 2025 scenarios exercise.
warnings.filterwarnings("ignore", category=MCPDeprecationWarning)

Ctx = ServerRequestContext[Any, Any]


def _text(text: str) -> types.CallToolResult:
    return types.CallToolResult(content=[types.TextContent(text=text)])


def _embedded(uri: str, mime_type: str, text: str) -> types.EmbeddedResource:
    return types.EmbeddedResource(resource=types.TextResourceContents(uri=uri, mime_type=mime_type, text=text))


async def _logging(ctx: Ctx) -> types.CallToolResult:
    for n, message in enumerate(("Tool execution started", "Tool processing data", "Tool execution completed")):
        if n:
            await anyio.sleep(0.05)
        await ctx.session.send_log_message("info", message, related_request_id=ctx.request_id)
    return _text("Tool with logging executed successfully")


async def _progress(ctx: Ctx) -> types.CallToolResult:
    for n, step in enumerate((0, 50, 100)):
        if n:
            await anyio.sleep(0.05)
        await ctx.session.report_progress(step, 100, f"Completed step {step} of 100")
    return _text(f"Progress reported (token {progress_token_from_params(ctx.params)!r})")


class _NeedInput(Exception):
    """At 2026-07-28 a server request rides the call's input-required result, answered on the retry."""

    def __init__(self, result: types.InputRequiredResult) -> None:
        super().__init__("input required")
        self.result = result


def _answered(ctx: Ctx, request: types.InputRequest, result_type: Any) -> Any:
    """2026-07-28: the client's answer to ``request`` from the retry, or raise for the first round."""
    answer = ((ctx.params or {}).get("inputResponses") or {}).get("ask")
    if answer is None:
        raise _NeedInput(types.InputRequiredResult(input_requests={"ask": request}, request_state="ask"))
    return result_type.model_validate(answer)


def _modern(ctx: Ctx) -> bool:
    return ctx.protocol_version in MODERN_PROTOCOL_VERSIONS


async def _sampling(ctx: Ctx, prompt: str) -> types.CallToolResult:
    message = types.SamplingMessage(role="user", content=types.TextContent(text=prompt))
    if _modern(ctx):
        params = types.CreateMessageRequestParams(messages=[message], max_tokens=100)
        result = _answered(ctx, types.CreateMessageRequest(params=params), types.CreateMessageResult)
    else:
        result = await ctx.session.create_message([message], max_tokens=100, related_request_id=ctx.request_id)
    content = result.content
    return _text(f"LLM response: {content.text if isinstance(content, types.TextContent) else '(not text)'}")


async def _elicit(ctx: Ctx, message: str, schema: dict[str, Any], label: str) -> types.CallToolResult:
    if _modern(ctx):
        params = types.ElicitRequestFormParams(message=message, requested_schema=schema)
        result = _answered(ctx, types.ElicitRequest(params=params), types.ElicitResult)
    else:
        result = await ctx.session.elicit_form(message, schema, related_request_id=ctx.request_id)
    return _text(f"{label}: action={result.action}, content={json.dumps(result.content or {})}")


async def _reconnection(ctx: Ctx) -> types.CallToolResult:
    """Close the POST's SSE stream before answering: the result must reach the client
    through the event store when it reconnects with Last-Event-ID."""
    await ctx.session.send_log_message("info", "Before disconnect", related_request_id=ctx.request_id)
    if ctx.close_sse_stream is not None:
        await ctx.close_sse_stream()
    await anyio.sleep(0.2)
    await ctx.session.send_log_message("info", "After reconnect", related_request_id=ctx.request_id)
    return _text("Reconnection test completed")


class Watched:
    """test://watched-resource: its text and the sessions subscribed to it."""

    uri = WATCHED_URI

    def __init__(self) -> None:
        self.text = "Watched resource content"
        self.subscribers: list[ServerSession] = []

    async def update(self, text: str) -> int:
        """Change the text and notify every subscriber; returns how many were notified."""
        self.text = text
        for session in self.subscribers:
            await session.send_resource_updated(self.uri)
        return len(self.subscribers)


async def _call(ctx: Ctx, name: str, args: dict[str, Any], watched: Watched) -> types.CallToolResult:
    match name:
        case "test_simple_text":
            return _text("This is a simple text response for testing.")
        case "test_image_content":
            return types.CallToolResult(content=[types.ImageContent(data=PNG, mime_type="image/png")])
        case "test_audio_content":
            return types.CallToolResult(content=[types.AudioContent(data=WAV, mime_type="audio/wav")])
        case "test_embedded_resource":
            resource = _embedded("test://embedded-resource", "text/plain", "This is an embedded resource content.")
            return types.CallToolResult(content=[resource])
        case "test_multiple_content_types":
            content: list[types.ContentBlock] = [
                types.TextContent(text="Multiple content types test:"),
                types.ImageContent(data=PNG, mime_type="image/png"),
                _embedded("test://mixed-content-resource", "application/json", '{"test":"data","value":123}'),
            ]
            return types.CallToolResult(content=content)
        case "test_tool_with_logging":
            return await _logging(ctx)
        case "test_tool_with_progress":
            return await _progress(ctx)
        case "test_error_handling":
            error = types.TextContent(text="This tool intentionally returns an error for testing")
            return types.CallToolResult(content=[error], is_error=True)
        case "test_sampling":
            return await _sampling(ctx, str(args.get("prompt", "")))
        case "test_elicitation":
            return await _elicit(ctx, str(args.get("message", "")), ELICIT_USER, "User response")
        case "test_elicitation_sep1034_defaults":
            return await _elicit(ctx, "Please provide user information", ELICIT_DEFAULTS, "Elicitation completed")
        case "test_elicitation_sep1330_enums":
            return await _elicit(ctx, "Please select values", ELICIT_ENUMS, "Elicitation completed")
        case "json_schema_2020_12_tool":
            return _text(f"Received: {json.dumps(args, sort_keys=True)}")
        case "test_reconnection":
            return await _reconnection(ctx)
        case "update_watched_resource":
            notified = await watched.update(str(args.get("text", "")))
            return _text(f"Updated {watched.uri}; notified {notified} subscriber(s)")
    raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {name}")


def _template_id(uri: str) -> str | None:
    """The `{id}` of a URI of the template test://template/{id}/data (one non-empty segment)."""
    if not (uri.startswith(TEMPLATE_PREFIX) and uri.endswith(TEMPLATE_SUFFIX)):
        return None
    item = uri[len(TEMPLATE_PREFIX) : -len(TEMPLATE_SUFFIX)]
    return item if item and "/" not in item else None


def _read(uri: str, watched: Watched) -> types.ReadResourceResult:
    contents: types.TextResourceContents | types.BlobResourceContents
    if uri == "test://static-text":
        contents = types.TextResourceContents(uri=uri, mime_type="text/plain", text=STATIC_TEXT)
    elif uri == "test://static-binary":
        contents = types.BlobResourceContents(uri=uri, mime_type="image/png", blob=PNG)
    elif uri == watched.uri:
        contents = types.TextResourceContents(uri=uri, mime_type="text/plain", text=watched.text)
    elif item := _template_id(uri):
        data = json.dumps({"id": item, "templateTest": True, "data": f"Data for ID: {item}"})
        contents = types.TextResourceContents(uri=uri, mime_type="application/json", text=data)
    else:
        raise MCPError(types.INVALID_PARAMS, f"Resource not found: {uri}", {"uri": uri})
    return types.ReadResourceResult(contents=[contents])


def _user(content: types.ContentBlock) -> types.PromptMessage:
    return types.PromptMessage(role="user", content=content)


def _prompt(name: str, args: dict[str, str]) -> types.GetPromptResult:
    match name:
        case "test_simple_prompt":
            messages = [_user(types.TextContent(text="This is a simple prompt for testing."))]
        case "test_prompt_with_arguments":
            text = f"Prompt with arguments: arg1='{args.get('arg1', '')}', arg2='{args.get('arg2', '')}'"
            messages = [_user(types.TextContent(text=text))]
        case "test_prompt_with_embedded_resource":
            uri = args.get("resourceUri", "test://example-resource")
            messages = [
                _user(_embedded(uri, "text/plain", "Embedded resource content for testing.")),
                _user(types.TextContent(text="Please process the embedded resource above.")),
            ]
        case "test_prompt_with_image":
            messages = [
                _user(types.ImageContent(data=PNG, mime_type="image/png")),
                _user(types.TextContent(text="Please analyze the image above.")),
            ]
        case _:
            raise MCPError(types.INVALID_PARAMS, f"Unknown prompt: {name}")
    return types.GetPromptResult(messages=messages)


def _complete(params: types.CompleteRequestParams) -> types.CompleteResult:
    """Values of the argument's list that start with what the client typed (may be none)."""
    values = [v for v in COMPLETIONS.get(params.argument.name, []) if v.startswith(params.argument.value)]
    return types.CompleteResult(completion=types.Completion(values=values, total=len(values), has_more=False))


def build_server() -> Server[Any]:
    """A fresh server with its own state (the watched resource and its subscribers)."""
    watched = Watched()

    async def list_tools(ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListToolsResult:
        return types.ListToolsResult(tools=TOOLS)

    async def call_tool(
        ctx: Ctx, params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        try:
            return await _call(ctx, params.name, params.arguments or {}, watched)
        except _NeedInput as need:
            return need.result

    async def list_resources(ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListResourcesResult:
        return types.ListResourcesResult(resources=RESOURCES)

    async def list_templates(
        ctx: Ctx, params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=[TEMPLATE])

    async def read_resource(ctx: Ctx, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
        return _read(str(params.uri), watched)

    async def subscribe(ctx: Ctx, params: types.SubscribeRequestParams) -> types.EmptyResult:
        _read(str(params.uri), watched)  # an unknown URI is an error, not a silent subscription
        if str(params.uri) == watched.uri:
            watched.subscribers.append(ctx.session)
        return types.EmptyResult()

    async def unsubscribe(ctx: Ctx, params: types.UnsubscribeRequestParams) -> types.EmptyResult:
        if str(params.uri) == watched.uri and ctx.session in watched.subscribers:
            watched.subscribers.remove(ctx.session)
        return types.EmptyResult()

    async def list_prompts(ctx: Ctx, params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
        return types.ListPromptsResult(prompts=PROMPTS)

    async def get_prompt(ctx: Ctx, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        return _prompt(params.name, params.arguments or {})

    async def complete(ctx: Ctx, params: types.CompleteRequestParams) -> types.CompleteResult:
        return _complete(params)

    async def set_level(ctx: Ctx, params: types.SetLevelRequestParams) -> types.EmptyResult:
        return types.EmptyResult()

    return Server(
        "warden-conformance-upstream",
        version="1.0.0",
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_templates,
        on_read_resource=read_resource,
        on_subscribe_resource=subscribe,
        on_unsubscribe_resource=unsubscribe,
        on_list_prompts=list_prompts,
        on_get_prompt=get_prompt,
        on_completion=complete,
        on_set_logging_level=set_level,
    )


async def _serve_stdio() -> None:
    server = build_server()
    async with stdio_server() as (read, write):
        await server.run(read, write, server.create_initialization_options())


def main() -> None:
    if sys.argv[1:] == ["--stdio"]:
        anyio.run(_serve_stdio)
        return
    port = int(sys.argv[1])
    # An event store makes the SSE streams resumable (Last-Event-ID), which test_reconnection needs;
    # host 127.0.0.1 turns on the SDK's DNS-rebinding protection (Host/Origin checks).
    app = build_server().streamable_http_app(event_store=MemoryEventStore(), retry_interval=100, host="127.0.0.1")
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


if __name__ == "__main__":
    main()
