"""Resource reads, prompt gets and completions through the call pipeline, answered in JSON-RPC terms.

Owns: running a decided non-tool call (``Proxy.context``) to its end — a deny is recorded
and answered here, everything else goes through ``Proxy.admit`` (approval hold, commit,
forward, finish) — and turning what the pipeline answers into the method's result or a
JSON-RPC error (``MCPError``) whose text comes from ``gateway.answers``. Also owns what the
audit log keeps of returned contents: their size and sha256 (``measure``), never the contents.

Must never: put upstream or exception text in an error a client gets (an upstream's JSON-RPC
error on a read answers like a resource that does not exist; its text goes to the audit log),
or store contents anywhere.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import mcp_types as types
from mcp.shared.exceptions import MCPError
from pydantic import BaseModel

from gateway import answers
from gateway.policy.engine import DEFAULT_DENY
from gateway.proxy.context import CallContext, Sent
from gateway.proxy.pipeline import Proxy
from gateway.types import Decision, canonical_json
from gateway.upstream.errors import UpstreamRejected, UpstreamTimeout, UpstreamUnavailable

RESOURCE_NOT_FOUND = -32002
"""The MCP error code of a resource that does not exist (or that the caller may not read)."""

CONTENT_RECORD_VERSION = 3
"""Audit record version that hashes ``content_bytes`` and ``content_sha256`` (gateway.audit.chain)."""


@dataclass(frozen=True, slots=True)
class Refused:
    """An answer the pipeline carries back as a JSON-RPC error instead of a result."""

    code: int
    message: str


def new_id() -> str:
    return uuid.uuid4().hex


def measure(content: Any) -> dict[str, Any]:
    """Audit fields for returned contents: size in bytes of their canonical JSON, and its sha256."""
    if isinstance(content, BaseModel):
        content = content.model_dump(mode="json", by_alias=True, exclude_none=True)
    elif isinstance(content, list):
        content = [c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in content]
    data = canonical_json(content).encode("utf-8", "surrogatepass")
    return {
        "content_bytes": len(data),
        "content_sha256": hashlib.sha256(data).hexdigest(),
        "version": CONTENT_RECORD_VERSION,
    }


async def sent(
    request: Callable[[], Awaitable[Any]],
    *,
    server: str,
    contents: Callable[[Any], Any],
    refused: Refused,
) -> Sent:
    """Forward once and say how it went: the result with its measured contents, or the error to answer.

    ``refused`` is the answer when the upstream refuses the request (a JSON-RPC error).
    """
    try:
        result = await request()
    except UpstreamRejected as exc:
        return refused, "tool_error", {"error": str(exc)}
    except UpstreamTimeout as exc:
        return Refused(types.INTERNAL_ERROR, answers.upstream_failed(server)), "timeout", {"error": str(exc)}
    except UpstreamUnavailable as exc:
        return Refused(types.INTERNAL_ERROR, answers.upstream_failed(server)), "upstream_error", {"error": str(exc)}
    return result, "ok", measure(contents(result))


def mark_unknown(ctx: CallContext, rule: str, reason: str) -> None:
    """Make the call a deny that answers like default deny (nothing upstream has it); audited under ``rule``."""
    ctx.decision = Decision("deny", (DEFAULT_DENY,), reason)
    ctx.update(effect="deny", rule_ids=(rule,), reason=reason)


async def nowhere(timeout_s: float) -> Sent:
    """The ``send`` of a call that has no upstream (it is always denied before forwarding)."""
    raise AssertionError("a call without an upstream is never forwarded")


async def run(proxy: Proxy, ctx: CallContext, unknown: Refused) -> Any:
    """The call to its end: a deny answers ``unknown`` (default deny) or the rule; the rest is admitted."""
    decision = ctx.decision
    if decision.effect == "deny":
        await proxy.end(ctx, "denied")
        raise MCPError(unknown.code, answers.denied_text(decision, unknown.message))
    return settle(await proxy.admit(ctx))


def settle(result: Any) -> Any:
    """The method's result, or the JSON-RPC error for a gateway answer (refusal, hold, fail-closed)."""
    if isinstance(result, Refused):
        raise MCPError(result.code, result.message)
    if isinstance(result, types.CallToolResult):  # the pipeline's own texts: pending, refused, fail-closed
        text = "\n".join(c.text for c in result.content if isinstance(c, types.TextContent))
        raise MCPError(types.INVALID_REQUEST, text)
    return result
