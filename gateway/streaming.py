"""Which MCP responses are streams: SSE where the client accepts it and a call may stream, JSON otherwise.

Owns: the per-request choice between a single JSON response and an SSE response, on both
protocol eras, and whether the calling client's request can carry notifications and
server requests (read by ``mcp_front`` to build each call's ``CallRelay``).

- 2025 sessions: the SDK's transport picks JSON or SSE once per session
  (``is_json_response_enabled``). ``RequestModeTransport`` makes it a per-request value: a
  ``tools/call`` POST from a client that accepts ``text/event-stream`` is answered as SSE
  when the call can use it: it carries a progress token, or its session declared
  sampling, elicitation or roots at ``initialize``, or called ``logging/setLevel``
  (progress, log messages and server requests of that call ride it, and the SDK reports
  ``can_send_request`` for it). Every other POST, and every POST of a client that accepts
  only ``application/json``, is answered as JSON as before: plain tool calls keep the
  single JSON response. The checks are byte searches on the body the SDK reads anyway;
  a false positive only costs an SSE frame. The
  session's message router runs outside any request and sees "not JSON", so it routes
  request-related messages to their request stream; the gateway sends such messages only
  for SSE requests (``CallRelay`` checks ``ClientLink.streams``), so a JSON request's
  stream only ever receives its response.
- 2026-07-28: the SDK's single-exchange entry in SSE mode answers JSON unless the handler
  emits a notification (then it commits ``text/event-stream``) and cancels the handler
  when the client closes the response: that is also how a modern client cancels. It is
  chosen per request for clients that accept SSE; JSON-only clients keep JSON mode.

Never: changes what a response contains, only how it is framed; never reads credentials.
"""

from __future__ import annotations

from contextvars import ContextVar

from mcp.server.streamable_http import StreamableHTTPServerTransport
from starlette.requests import Request
from starlette.types import Receive, Scope, Send

_REQUEST_SSE: ContextVar[bool | None] = ContextVar("warden_request_sse", default=None)
"""This HTTP request is answered as SSE (True) or JSON (False); None outside any request."""

_ACCEPTS_SSE: ContextVar[bool] = ContextVar("warden_accepts_sse", default=False)
"""The client of the HTTP request being handled accepts ``text/event-stream`` (set by ``mcp_front``)."""


def accepts_sse(scope: Scope) -> bool:
    """Whether the request's Accept header names ``text/event-stream`` (or ``*/*``-free wildcard forms)."""
    for key, value in scope.get("headers", ()):
        if key == b"accept":
            types = [part.split(b";")[0].strip().lower() for part in value.split(b",")]
            if b"text/event-stream" in types or b"text/*" in types:
                return True
    return False


def mark_request(scope: Scope) -> object:
    """Remember for this request whether its client accepts SSE; returns a token for ``unmark``."""
    return _ACCEPTS_SSE.set(accepts_sse(scope))


def unmark(token: object) -> None:
    _ACCEPTS_SSE.reset(token)  # type: ignore[arg-type]


def client_accepts_sse() -> bool:
    """The current request's client accepts SSE (valid in the 2026-07-28 handler's task)."""
    return _ACCEPTS_SSE.get()


_TAKES_REQUESTS = (b'"sampling"', b'"elicitation"', b'"roots"')


class RequestModeTransport(StreamableHTTPServerTransport):
    """The SDK's 2025 Streamable HTTP transport with the JSON/SSE choice made per POST (module docstring)."""

    _session_streams = False
    """The session's client takes server requests (declared at initialize) or asked for log messages."""

    @property
    def is_json_response_enabled(self) -> bool:
        sse = _REQUEST_SSE.get()
        return sse is not None and not sse

    @is_json_response_enabled.setter
    def is_json_response_enabled(self, value: bool) -> None:
        """Ignored: the mode is chosen per request."""

    async def _handle_post_request(self, scope: Scope, request: Request, receive: Receive, send: Send) -> None:
        body = await request.body()  # cached on `request`: the SDK reads the same bytes again
        if b'"logging/setLevel"' in body or (b'"initialize"' in body and any(c in body for c in _TAKES_REQUESTS)):
            self._session_streams = True
        streams = self._session_streams or b'"progressToken"' in body
        token = _REQUEST_SSE.set(streams and b'"tools/call"' in body and accepts_sse(scope))
        try:
            await super()._handle_post_request(scope, request, receive, send)
        finally:
            _REQUEST_SSE.reset(token)
