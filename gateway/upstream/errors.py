"""The three ways a request to an upstream fails, as the rest of the gateway sees them.

Owns: ``UpstreamUnavailable``, ``UpstreamRejected`` and ``UpstreamTimeout``, and telling the
SDK's and the transport's exceptions apart: a JSON-RPC error the upstream itself sent
(``is_rejection``) versus one the SDK made up locally or a broken connection
(``is_connection_failure``, which tears the session down). ``Upstream._failure`` maps every
failed request onto one of the three.

Never: puts exception text in anything a client gets (``gateway.answers`` words the answers;
the text here goes to the audit log and the gateway's own log).
"""

from __future__ import annotations

from typing import TypeGuard

import anyio
import httpx2
import mcp_types as types
from mcp.shared.exceptions import MCPError


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


def describe(exc: BaseException) -> str:
    """One line for the log and the audit error: the exception type and text (every one of a group)."""
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(describe(e) for e in exc.exceptions)
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text != type(exc).__name__ else text


def is_rejection(exc: BaseException) -> TypeGuard[MCPError]:
    """A JSON-RPC error the upstream sent, not one the SDK made up locally (connection closed, timeout)."""
    local = (types.CONNECTION_CLOSED, types.REQUEST_TIMEOUT)
    isolated = "upstream connection failed" in str(exc).lower()  # gateway.upstream.delivery's answer for one request
    return isinstance(exc, MCPError) and exc.code not in local and not isolated and not is_connection_failure(exc)


def is_connection_failure(exc: BaseException) -> bool:
    text = str(exc).lower()
    if isinstance(exc, (anyio.ClosedResourceError, anyio.BrokenResourceError, OSError, httpx2.TransportError)):
        return True
    return "connection closed" in text or ("connection" in text and "refused" in text) or "never sent" in text
