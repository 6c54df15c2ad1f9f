"""Getting one tools/call to an upstream at most once, and a broken connection failing only its own call.

Owns: the HTTP transport of Streamable HTTP upstreams (``IsolatingTransport``) and the rule of
which failed deliveries are tried again (``until_ready``).

Retried, because the request provably never left the gateway:
- a connection that could not be opened (refused, unreachable, connect timeout): the
  transport retries the connect (``CONNECT_RETRIES``, httpcore's backoff) before any byte of
  the request is written, since there is no connection to write it on;
- a call that arrives while its upstream is reconnecting (state not ``ready``): it waits up to
  ``READY_WAIT_S`` (within its call timeout) for the session to be back and is sent then; it was
  never handed to any connection.

Never retried: anything that failed after the request may have been written (a read or
write error, a reset, the server closing the connection without answering, a timeout). A
tool call is not idempotent (it may have moved money or sent mail), so such a call fails
with ``upstream_error`` and the agent decides. Keep-alive connections expire after
``KEEPALIVE_EXPIRY_S``, below the 5 s servers such as uvicorn keep them, so the gateway does
not write a request on a connection the upstream is closing at that moment.

Isolation: the `mcp` client runs every POST of a session in one task group, so a transport
exception escaping one POST would cancel every call in flight on that session (issue 15 saw
one ``ReadError`` fail 48 calls). ``IsolatingTransport`` turns a transport failure into
that request's own answer: a JSON-RPC error with the SDK's own ``CONNECTION_CLOSED`` code
(so it is never mistaken for an error the upstream sent) before a response started, a stream error
(which the client reports for that request only) while its body is read.

Must never: retry a request after a byte of it may have been written; put the transport's
exception text anywhere but the call's audit error (it names no other call).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio
import httpx2
import mcp_types as types

CONNECT_RETRIES = 2
"""Extra connect attempts of one request (httpcore retries only connect failures: nothing was written)."""
READY_WAIT_S = 5.0
"""How long a call waits for its reconnecting upstream before it fails (it was never sent)."""
KEEPALIVE_EXPIRY_S = 2.0
"""Idle seconds after which a pooled upstream connection is closed rather than reused."""
LIMITS = httpx2.Limits(max_connections=128, max_keepalive_connections=64, keepalive_expiry=KEEPALIVE_EXPIRY_S)
FAILED_STATUS = 502
"""HTTP status of the answer ``IsolatingTransport`` gives for a request whose connection failed."""


class BrokenResponse(httpx2.StreamError):
    """The connection broke while a response body was read (the request had been sent)."""


class _Guarded(httpx2.AsyncByteStream):
    """A response body whose transport failure is this response's stream error, not the session's."""

    def __init__(self, inner: httpx2.AsyncByteStream) -> None:
        self._inner = inner

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except httpx2.TransportError as exc:
            raise BrokenResponse(f"upstream connection broke during the response ({_name(exc)}); not retried") from exc

    async def aclose(self) -> None:
        await self._inner.aclose()


class IsolatingTransport(httpx2.AsyncBaseTransport):
    """``httpx2.AsyncHTTPTransport`` with connect retries, whose failures stay with their own request."""

    def __init__(self, retries: int = CONNECT_RETRIES, limits: httpx2.Limits = LIMITS) -> None:
        self._inner = httpx2.AsyncHTTPTransport(retries=retries, limits=limits)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        try:
            response = await self._inner.handle_async_request(request)
        except httpx2.TransportError as exc:
            return failed_response(request, exc)
        assert isinstance(response.stream, httpx2.AsyncByteStream)
        response.stream = _Guarded(response.stream)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def failed_response(request: httpx2.Request, exc: httpx2.TransportError) -> httpx2.Response:
    """The answer to a request whose connection failed: a JSON-RPC error the client gives that call only."""
    if isinstance(exc, (httpx2.ConnectError, httpx2.ConnectTimeout)):
        message = f"upstream unreachable ({_name(exc)}, after {CONNECT_RETRIES} retries); the request was never sent"
    else:
        message = f"upstream connection failed ({_name(exc)}); the request may have been sent, not retried"
    error = {"code": types.CONNECTION_CLOSED, "message": message}
    body = json.dumps({"jsonrpc": "2.0", "id": None, "error": error}).encode()
    return httpx2.Response(FAILED_STATUS, headers={"content-type": "application/json"}, content=body, request=request)


async def until_ready(
    is_ready: Callable[[], bool], wait_ready: Callable[[float], Awaitable[bool]], within_s: float
) -> bool:
    """Whether the upstream is ready to be sent a call, waiting up to ``min(within_s, READY_WAIT_S)``.

    The only call-level retry: a call found its upstream reconnecting before it was handed
    to any connection, so sending it once the session is back cannot duplicate it.
    """
    limit = max(0.0, min(within_s, READY_WAIT_S))
    with anyio.move_on_after(limit):
        while not is_ready():
            if not await wait_ready(limit):
                await anyio.sleep(0.05)  # the ready event was of the session just lost: look again shortly
    return is_ready()


def _name(exc: BaseException) -> str:
    return type(exc).__name__
