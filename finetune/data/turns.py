"""After the call: what the tool (or the gateway) answers, and the agent's last words.

Three endings an agent meets behind Warden, each a tool turn plus one short assistant turn:
- a result: the agent answers in a sentence grounded in the result, never repeating the raw result;
- a denial by policy (`gateway.answers.denied`): the agent says it was denied, and why, and stops;
- a call held for approval (`gateway.answers.pending_message`): the agent tells the user it waits for
  a person and stops (it does not call again in the same turn).
The gateway's texts are produced by the gateway's own functions, so the shapes are the real ones, and
the tool turn carries them as the agent does (agent/loop.py: `error: ` + text for an error result).
Deterministic for a `random.Random`; never touches a database (the approval is an unsaved row).
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway import answers
from gateway.models import Approval
from gateway.types import Decision

_ID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"
_DENY_RULES = [
    ("deny-{tool}", "{tool} is not allowed for this agent"),
    ("office-hours", "this tool may only be used on weekdays between 08:00 and 18:00 UTC"),
    ("no-{server}-for-contractors", "contractors may not use the {server} server"),
    ("frozen-{server}", "the {server} server is read-only during the change freeze"),
]
"""Rule ids and reasons that fit any call (`{server}`, `{tool}`: the call's)."""
_APPROVE_RULES = [
    ("approve-{tool}", "{tool} calls need a person's OK", ("maintainer",)),
    ("review-{server}", "every {server} call is reviewed this week", ("admin", "data-owner")),
    ("after-hours", "calls outside office hours wait for review", ("reviewer",)),
]
"""Rule ids, reasons and approver roles that fit any call."""
_DENIED_ANSWERS = [
    "I couldn't do that: the gateway's policy denied the call (rule {rule}: {reason}).",
    "That was refused by policy — rule {rule} says {reason}. I haven't done it.",
    "The gateway blocked it ({reason}, rule {rule}), so nothing was changed.",
]
_PENDING_ANSWERS = [
    "That needs approval first: approval {id} is waiting for someone with the {roles} role. "
    "I'll stop here; ask me again once it's approved.",
    "The call is on hold until a person with the {roles} role approves it (approval {id}). Nothing has run yet.",
    "It's waiting for approval {id} ({reason}). Once someone with the {roles} role approves, ask me to try again.",
]
_UNKNOWN_ANSWERS = [
    "I can't use {tool}: the gateway says it isn't available to me.",
    "{tool} isn't one of the tools I'm allowed to call, so I can't do that.",
]


def approval_id(rng: random.Random) -> str:
    return "apr_" + "".join(rng.choice(_ID_ALPHABET) for _ in range(12))


def denied(public_name: str, server: str, tool: str, rng: random.Random) -> tuple[str, str]:
    """(tool turn content, answer) for a call a policy rule denied."""
    rule, reason = (x.format(server=server, tool=tool) for x in rng.choice(_DENY_RULES))
    text = _text(answers.denied(public_name, Decision("deny", (rule,), reason)))
    return f"error: {text}", rng.choice(_DENIED_ANSWERS).format(rule=rule, reason=reason)


def pending(public_name: str, server: str, tool: str, rng: random.Random) -> tuple[str, str]:
    """(tool turn content, answer) for a call held until a person approves it."""
    rule, reason, roles = rng.choice(_APPROVE_RULES)
    rule, reason = rule.format(server=server, tool=tool), reason.format(server=server, tool=tool)
    decision = Decision("approve", (rule,), reason, approver_roles=roles)
    apr = Approval(
        id=approval_id(rng),
        call_id="call",
        identity="agent",
        server=server,
        tool=tool,
        tool_name=public_name,
        arguments="{}",
        args_hash="",
        expires_at=datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=1),
    )
    link = f"https://gateway.example/approvals/{apr.id}"
    text = answers.pending_message(apr, decision, link)
    answer = rng.choice(_PENDING_ANSWERS).format(id=apr.id, roles=" or ".join(roles), reason=reason)
    return f"error: {text}", answer


def unknown(public_name: str, rng: random.Random) -> tuple[str, str]:
    """(tool turn content, answer) for a tool the gateway does not let this identity see."""
    return f"error: {_text(answers.unknown_tool(public_name))}", rng.choice(_UNKNOWN_ANSWERS).format(tool=public_name)


def _text(result: Any) -> str:
    return str(result.content[0].text)


def ending(content: str, answer: str) -> list[dict[str, Any]]:
    """The tool turn (as the chat template renders it: content only) and the final assistant turn."""
    return [{"role": "tool", "content": content}, {"role": "assistant", "content": answer}]
