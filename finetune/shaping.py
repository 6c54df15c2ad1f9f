"""Shaping train examples toward what an agent sees at run time.

Synthesized and mined examples offer a few tools and end at the call. An agent behind the gateway
(agent/loop.py) offers its model the identity's whole catalog, and after a call it reads the tool's
answer (a result, or the gateway's denial or pending approval) and must then stop calling and answer
in text. Three shapings make train examples look like that:
- `widen`: some examples are offered the whole catalog their tools come from;
- `follow_ups`: some single-call examples are continued with the tool's answer and a short text
  answer that never repeats the raw result; a refusal is the gateway's own denial or pending-approval
  text (finetune.data.turns), answered by saying so and stopping;
- `sessions` (optional): whole-catalog examples merged, a few at a time, into one conversation with
  that catalog, each call but the last answered as a follow-up is. A whole catalog is ~1,800 tokens
  of prompt and a call ~50: one catalog carrying three requests teaches three calls for ~1.4x the
  tokens of one, which is what a CPU without native bf16 can afford in the demo's minutes.

Train split only (`shape`): eval examples stay as built, and a tool that only eval examples offer is
never added to a train example. Deterministic for a `random.Random`; every shaped example is valid
(finetune.data.validate). Never reads or writes files.
"""

from __future__ import annotations

import json
import random
from typing import Any

from finetune.data import turns
from finetune.schema_values import label
from finetune.synth import Example, Tool

_DONE = ["{What} reported ok.", "That worked: {what} came back ok.", "Done: {what} returned ok."]
"""Short answers after the synthetic success result (`{"ok": true, ...}`): grounded in it, never repeating it."""

REFUSAL_SHARE = 0.3
"""Share of follow-ups whose tool answer is a refusal rather than a result."""


def _names(tools: list[Tool]) -> set[str]:
    return {t["function"]["name"] for t in tools}


def widen(examples: list[Example], catalogs: list[list[Tool]], rng: random.Random, share: float) -> list[Example]:
    """About `share` of the examples that end in calls and whose offered tools all come from one catalog
    are offered that whole catalog instead: the agent offers everything the gateway lists for its
    identity, so some training prompts must look like that. The others are returned unchanged, in order.

    An example answered in text is never widened: its request may be for a tool it was deliberately not
    offered (finetune.synth's irrelevant requests), which the whole catalog would offer again.
    """
    out = []
    for ex in examples:
        names = _names(ex.get("tools") or []) if ex["messages"][-1].get("tool_calls") else set()
        full = next((c for c in catalogs if names and names <= _names(c)), None)
        out.append({**ex, "tools": full} if full is not None and rng.random() < share else ex)
    return out


def follow_ups(examples: list[Example], rng: random.Random, share: float) -> list[Example]:
    """New examples: about `share` of the single-call examples continued past the call with the tool's
    answer (a result, or the gateway's denial or pending approval as the agent reports it) and a short
    text answer. An agent needs both halves: call, then stop calling and answer."""
    out = []
    for ex in examples:
        last = ex["messages"][-1]
        if len(last.get("tool_calls") or []) != 1 or rng.random() >= share:
            continue
        out.append({**ex, "messages": [*ex["messages"], *_ending(last, rng)]})
    return out


def _ending(call: dict[str, Any], rng: random.Random) -> list[dict[str, Any]]:
    """The tool's answer to the assistant turn `call` (one call) and the assistant's short text answer."""
    fn = call["tool_calls"][0]["function"]
    name, args = fn["name"], json.loads(fn["arguments"])
    server, _, tool = name.rpartition("__")
    if rng.random() < REFUSAL_SHARE:
        result, answer = (
            turns.denied(name, server or "tools", tool, rng)
            if rng.random() < 0.5
            else turns.pending(name, server or "tools", tool, rng)
        )
    else:
        result = json.dumps({"ok": True, **args}, ensure_ascii=False)
        what = label(tool)
        answer = rng.choice(_DONE).format(what=what, What=what[:1].upper() + what[1:])
    return turns.ending(result, answer)


def _one_request_one_call(ex: Example) -> bool:
    """A user turn answered by exactly one call, and nothing else (what a session can be made of)."""
    msgs = ex["messages"]
    return (
        len(msgs) == 2
        and msgs[0]["role"] == "user"
        and msgs[1]["role"] == "assistant"
        and len(msgs[1].get("tool_calls") or []) == 1
    )


def sessions(
    examples: list[Example], catalogs: list[list[Tool]], rng: random.Random, size: int, follow_up_share: float
) -> tuple[list[Example], list[Example]]:
    """(sessions, the rest): the examples offered a whole catalog and made of one request and one call,
    merged in order, `size` at a time per catalog, into one conversation offered that catalog; every
    call but the last is followed by its ending (a result, a denial or a pending approval, and the
    answer), the last one too for about `follow_up_share` of the sessions. A catalog's leftover
    examples (fewer than two) stay as they were, in the rest, in order.

    Every request of a session is one of the given examples, so the calls taught are the same; only
    the prompt they share is paid once.
    """
    if size < 1:
        raise ValueError(f"session_size must be at least 1, not {size}")
    full = [_names(c) for c in catalogs]
    groups: dict[int, list[int]] = {}
    for i, ex in enumerate(examples):
        names = _names(ex.get("tools") or [])
        k = next((j for j, c in enumerate(full) if names == c), None)
        if size > 1 and k is not None and _one_request_one_call(ex):
            groups.setdefault(k, []).append(i)
    merged: list[Example] = []
    taken: set[int] = set()
    for k in sorted(groups):
        idx = groups[k]
        for start in range(0, len(idx) - 1, size):
            part = idx[start : start + size]
            if len(part) < 2:
                break
            messages: list[dict[str, Any]] = []
            for n, i in enumerate(part):
                messages += examples[i]["messages"]
                if n < len(part) - 1 or rng.random() < follow_up_share:
                    messages += _ending(examples[i]["messages"][-1], rng)
            merged.append({**examples[part[0]], "tools": catalogs[k], "messages": messages})
            taken.update(part)
    return merged, [ex for i, ex in enumerate(examples) if i not in taken]


def shape(  # noqa: PLR0917 (warden/pipeline.py calls it positionally; keyword-only after h1's pipeline edits merge)
    train: list[Example],
    evals: list[Example],
    catalogs: list[list[Tool]],
    seed: int,
    full_catalog_share: float,
    follow_up_share: float,
    *,
    session_size: int = 1,
) -> list[Example]:
    """The train examples widened, plus their follow-ups (both shares 0: `train` unchanged); with
    `session_size` > 1 the whole-catalog ones are merged into sessions first (follow-ups are then
    drawn from the rest only, and each session ends like a follow-up for about its share).

    Widening offers a catalog without the tools that only eval examples offer, so a split by tool
    keeps its eval tools unseen in train.
    """
    for share, option in ((full_catalog_share, "full_catalog_share"), (follow_up_share, "follow_up_share")):
        if not 0 <= share <= 1:
            raise ValueError(f"{option} must be between 0 and 1, not {share}")
    held_out = _names([t for ex in evals for t in ex.get("tools") or []]) - _names(
        [t for ex in train for t in ex.get("tools") or []]
    )
    visible = [[t for t in c if t["function"]["name"] not in held_out] for c in catalogs]
    rng = random.Random(seed)
    widened = widen(train, visible, rng, full_catalog_share)
    if session_size == 1:
        return widened + follow_ups(widened, rng, follow_up_share)
    merged, rest = sessions(widened, visible, rng, session_size, follow_up_share)
    return rest + merged + follow_ups(rest, rng, follow_up_share)
