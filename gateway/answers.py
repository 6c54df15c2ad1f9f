"""What agents are told when a call does not simply run: in their terms, never internal text.

Owns: every text the call pipeline (``gateway/proxy/``) answers an agent with instead of an
upstream result. Texts name what happened and what the agent can do; the details behind
them (exception text, database errors, upstream failures) go to the operator log and the
audit log, never here. A tool the identity cannot see (unknown, not granted, or its
definition not accepted) always gets the same ``unknown_tool`` answer, so an identity
cannot learn which tools exist outside its tools/list.

Must never: take an exception or its text as input.
"""

from __future__ import annotations

import mcp_types as types
from mcp.shared.exceptions import MCPError

from gateway.models import Approval
from gateway.policy.engine import DEFAULT_DENY
from gateway.types import Decision


def tool_error(message: str) -> types.CallToolResult:
    """An MCP tool error result: the agent (and its model) reads `message`."""
    return types.CallToolResult(content=[types.TextContent(type="text", text=message)], is_error=True)


def fail_closed(what: str) -> str:
    return f"call denied: {what}. The gateway fails closed."


def upstream_timeout(server: str, timeout_s: float) -> types.CallToolResult:
    return tool_error(
        f"upstream timeout: the {server!r} server did not answer within {timeout_s:g}s; "
        "the call may still have run there."
    )


def upstream_error(server: str) -> types.CallToolResult:
    return tool_error(
        f"upstream error: the {server!r} server could not complete the call (it is unreachable or its connection "
        "broke); try again later."
    )


def revoked_while_held(approval: Approval) -> str:
    return (
        f"denied: the API key this call was made with was revoked while it waited for approval {approval.id}; "
        "the call did not run."
    )


def redefined_while_held(public_name: str, approval: Approval) -> str:
    return (
        f"denied: the definition of {public_name} changed while the call waited for approval {approval.id}; "
        "the approval does not cover the new definition and the call did not run."
    )


def denied_on_release(decision: Decision, approval: Approval) -> str:
    rules = ", ".join(decision.rule_ids)
    why = "the tool is no longer granted to you" if decision.rule_ids == (DEFAULT_DENY,) else decision.reason
    return (
        f"denied by policy (rule {rules}): {why}. The policy changed while the call waited for approval "
        f"{approval.id}; the call did not run."
    )


def unknown_tool(public_name: str) -> types.CallToolResult:
    """The one answer for a tool the identity cannot see, whether it exists or not."""
    return tool_error(f"unknown tool: {public_name!r}. Call tools/list to see the tools you may call.")


def denied(public_name: str, decision: Decision) -> types.CallToolResult:
    """A policy deny in the agent's terms. Default deny answers like an unknown tool (existence stays hidden)."""
    if decision.rule_ids == (DEFAULT_DENY,):
        return unknown_tool(public_name)
    if decision.rule_ids == ("fail-closed",):
        return tool_error(fail_closed("the policy could not be evaluated"))
    return tool_error(f"denied by policy (rule {', '.join(decision.rule_ids)}): {decision.reason}")


def pending_message(approval: Approval, decision: Decision, link: str) -> str:
    rules = ", ".join(decision.rule_ids)
    roles = ", ".join(decision.approver_roles)
    return (
        f"pending approval {approval.id}: rule {rules} ({decision.reason}) holds this call until a person "
        f"with role {roles} decides ({link}). Call again with the same arguments once it is approved; "
        "an approved call runs once."
    )


def refusal_message(approval: Approval) -> str:
    if approval.state == "denied":
        return f"denied: approval {approval.id} was denied by {approval.decided_by}: {approval.decided_reason}"
    if approval.state == "expired":
        return f"denied: approval {approval.id} expired undecided at {approval.expires_at:%Y-%m-%d %H:%M:%S} UTC"
    return (
        f"denied: approval {approval.id} was already used by another call (state {approval.state}); "
        "call again to ask for a new approval"
    )


def server_request_refused(method: str, server: str, decision: Decision) -> str:
    """What an upstream is told when policy refuses its request to the client (sampling, elicitation, roots)."""
    rules = ", ".join(decision.rule_ids)
    return f"{method} from {server!r} refused by the gateway's policy (rule {rules}): {decision.reason}"


def server_request_failed(method: str) -> str:
    return f"{method} refused: the gateway could not record it (it fails closed)"


def input_refused(public_name: str) -> types.CallToolResult:
    """A 2026-07-28 call whose upstream asked for input policy refuses: the call ends here."""
    return tool_error(
        f"{public_name}: the upstream asked for input (sampling, elicitation or roots) that the gateway's policy "
        "refuses; the call did not complete."
    )


def stale_input_state(public_name: str) -> types.CallToolResult:
    return tool_error(
        f"{public_name}: the requestState sent back does not belong to this identity and tool (or has expired); "
        "call the tool again without it."
    )


def task_required(public_name: str) -> str:
    return (
        f"{public_name} requires task-augmented execution (execution.taskSupport: required), which the gateway "
        "does not support; it cannot be called through the gateway."
    )


BAD_CURSOR = "invalid cursor: pass back the nextCursor of the previous page unchanged, or no cursor for the first page"


def unknown_resource(public_uri: str) -> str:
    """The one answer for a resource the identity cannot read, whether it exists or not."""
    return (
        f"resource not found: {public_uri!r}. Call resources/list or resources/templates/list to see what you may read."
    )


def unknown_prompt(public_name: str) -> str:
    """The one answer for a prompt the identity cannot get (unknown, not granted, or arguments it refuses)."""
    return (
        f"unknown prompt: {public_name!r}, or arguments it does not take. "
        "Call prompts/list to see the prompts you may get."
    )


def unknown_reference(ref: str) -> str:
    """The one answer for a completion of a prompt or resource template the identity cannot see."""
    return f"nothing to complete for {ref!r}. Call prompts/list or resources/templates/list to see what you may use."


def denied_text(decision: Decision, unknown: str) -> str:
    """A policy deny of a read, get or completion. Default deny answers ``unknown`` (existence stays hidden)."""
    if decision.rule_ids == (DEFAULT_DENY,):
        return unknown
    if decision.rule_ids == ("fail-closed",):
        return fail_closed("the policy could not be evaluated")
    return f"denied by policy (rule {', '.join(decision.rule_ids)}): {decision.reason}"


def upstream_failed(server: str) -> str:
    return (
        f"upstream error: the {server!r} server could not answer (it is unreachable, slow or its connection broke); "
        "try again later."
    )


def too_many_subscriptions(limit: int) -> str:
    return f"too many subscriptions: a session may hold {limit}; unsubscribe from some first."


RELAYED_MESSAGE_CHARS = 2000


def relayed_error(error: types.ErrorData) -> MCPError:
    """An upstream's JSON-RPC error for the client: its code, message (capped) and data, unchanged otherwise.

    It is the upstream's answer, like a tool result's content, not gateway-internal text."""
    return MCPError(error.code, error.message[:RELAYED_MESSAGE_CHARS], error.data)
