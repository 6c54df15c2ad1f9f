"""The gateway core's own small types.

A request is parsed once at the edge (mcp_front) into these; everything inside the
gateway (policy, approvals, audit, upstream) receives typed, immutable values and
never raw JSON-RPC dicts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

Effect = Literal["allow", "deny", "approve"]
"""What policy says about a call. Precedence: deny > approve > allow."""

Outcome = Literal[
    "ok",  # upstream answered with a normal result
    "tool_error",  # upstream answered with isError=true
    "upstream_error",  # upstream unreachable, crashed, or protocol error
    "timeout",  # upstream did not answer within the call timeout
    "denied",  # policy (or fail-closed) refused the call; never forwarded
    "approval_required",  # held for a human; never forwarded
    "invalid_arguments",  # arguments violate the tool's inputSchema; never forwarded
    "cancelled",  # the client cancelled the call (or closed its stream) before it ended
    "input_required",  # the upstream asked the client for input (2026-07-28); the client retries the call
]

Phase = Literal["decision", "outcome"]

RequestKind = Literal["tool", "resource", "prompt", "completion", "sampling", "elicitation", "roots"]
"""What a request asks for: a tool call, a resource read, a prompt get, a completion, or an upstream's
request to the client (sampling, elicitation, roots). Policy decides each kind (policies/README.md)."""

KIND_LABELS: Mapping[str, str] = {
    "tool": "tool call",
    "resource": "resource read",
    "prompt": "prompt get",
    "completion": "completion",
    "sampling": "sampling request",
    "elicitation": "elicitation request",
    "roots": "roots request",
}
"""How a person reads each kind (what an approver approves): the console and the CLI show these."""

ScopeMatch = Literal["exact", "tool"]
"""What an approval covers: the one call (tool + arguments), or the tool with any arguments the rule matches."""


@dataclass(frozen=True, slots=True)
class Identity:
    """An authenticated caller. `roles` come from the policy files, not from the key."""

    name: str
    roles: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class Caller:
    """Who made a request: the identity and which of its keys (the key's stored prefix), read at the edge."""

    name: str
    key_prefix: str | None = None


@dataclass(frozen=True, slots=True)
class ToolCall:
    """One request policy decides, after namespacing has been resolved; a `tools/call` by default.

    `name` is the public, namespaced name the agent sees (e.g. ``time__get_current_time``);
    `server` and `tool` say where it goes upstream. For the other kinds (`kind`):
    resource: name = public URI, tool = upstream URI, arguments = {"uri": upstream URI};
    prompt: name/tool = public/upstream prompt name, arguments = prompt arguments;
    completion: name/tool = public/upstream ref (prompt name or template URI), arguments =
    {"ref_type": "ref/prompt"|"ref/resource", "argument": {...}, "context": {...}};
    sampling/elicitation/roots: name = server, tool = method, arguments = the request params.
    """

    name: str
    server: str
    tool: str
    arguments: Mapping[str, Any]
    call_id: str
    definition_hash: str = ""
    """``definition_hash`` of the tool definition the call was made against (approvals bind it)."""
    kind: RequestKind = "tool"
    """What is asked for; the last field so that existing positional constructions keep working."""

    @property
    def args_hash(self) -> str:
        return args_hash(self.arguments)


@dataclass(frozen=True, slots=True)
class ApprovalScope:
    """How far an approval reaches once granted, as stated by an `approve` rule's `scope`.

    ``exact``: one run of the identical call (identity, tool, arguments hash).
    ``tool``: the same identity may call the same tool with any arguments the rule still
    asks approval for, for ``ttl_s`` seconds after the decision.
    """

    match: ScopeMatch
    ttl_s: float
    """Seconds the granted approval stays usable after the decision."""


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer of `decide()`: an effect plus the ids of the rules that produced it."""

    effect: Effect
    rule_ids: tuple[str, ...]
    reason: str
    approver_roles: tuple[str, ...] = ()
    """For `approve`: roles whose holders may approve (issue: approvals)."""
    approval_scope: ApprovalScope | None = None
    """For `approve`: how far a granted approval reaches; None means one exact call."""


@dataclass(frozen=True, slots=True)
class ClientFeatures:
    """What the calling MCP client can do beyond a plain tools/call, read once at the edge."""

    url_elicitation: bool = False
    """It takes a URL elicitation in an input-required result (2026-07-28) and did not decline this round's."""
    resumes: str | None = None
    """The ``requestState`` it echoed from an earlier input-required round (untrusted; a hint only)."""
    meta: Mapping[str, Any] | None = None
    """The request's ``_meta`` keys the upstream gets (gateway.meta took out what the gateway owns)."""


@dataclass(frozen=True, slots=True)
class AuditEvent:
    """One flat, versioned audit record. The writer redacts `arguments` before storage."""

    call_id: str
    phase: Phase
    method: str
    identity: str
    server: str = ""
    tool: str = ""
    arguments: Mapping[str, Any] = field(default_factory=dict)
    args_hash: str = ""
    effect: Effect | None = None
    rule_ids: tuple[str, ...] = ()
    reason: str = ""
    outcome: Outcome | None = None
    error: str = ""
    approval_id: str | None = None
    latency_policy_ms: float | None = None
    latency_upstream_ms: float | None = None
    latency_total_ms: float | None = None
    request_ref: str | None = None
    """Correlation id supplied by the agent in the request's `_meta` (pairs a user request with its calls)."""
    ts: datetime | None = None
    """Set by the writer when absent."""
    version: int = 2
    """Record version: 1 hashed every field but `risk`; 2 hashes `risk` too (audit/chain.py)."""
    risk: str = ""
    """Risk classes of the called tool, comma-joined, most severe first (`gateway.risk`); "" if none."""
    content_bytes: int | None = None
    """Size of what came back (resource contents, prompt messages, completion values), never the contents."""
    content_sha256: str = ""
    """sha256 of what came back (see ``content_bytes``); hashed from record version 3."""


def canonical_json(value: Any) -> str:
    """Deterministic JSON: sorted keys, no whitespace, UTF-8 kept. Used for hashes and approvals."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def args_hash(arguments: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON; never raises for valid JSON input (lone surrogates hash as themselves)."""
    return hashlib.sha256(canonical_json(dict(arguments)).encode("utf-8", "surrogatepass")).hexdigest()
