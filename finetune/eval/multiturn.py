"""Final answers after a tool's answer: a result, a policy denial, a pending approval.

Owns `multiturn_mcp.jsonl` (hand-written conversations over the five servers' real tools: a
request, the assistant's call, then the tool message the gateway returns, in gateway/answers.py's
wording for denials and approvals) and the check of the model's next turn:
- words: it answers in text (no new tool call, tagged or as bare JSON; no `<tool_call>` / `<tool_response>`);
- stopped: it ends before `max_new_tokens` (no loop to the limit);
- said so: after a result it states a fact from the result (one of `grounded`); after a denial it
  says the call was denied/not allowed; after a pending approval it says approval is pending.
A case is right when all three hold. Never used for training (like finetune.eval.natural).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from typing import Any

from finetune.chat import render_prompt
from finetune.eval.interval import of
from finetune.eval.natural import as_hermes, catalogs
from finetune.evaluate import Generate
from finetune.toolcall_parse import parse

CASES = "multiturn_mcp.jsonl"
_DENIED = re.compile(
    r"\b(denied|deny|not allowed|isn'?t allowed|not permitted|blocked|refused|can(?:no|')t|unable|policy)\b", re.I
)
_PENDING = re.compile(r"\b(approv\w*|pending|waiting|review)\b", re.I)
_MARKUP = ("<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>")


@dataclass(frozen=True, slots=True)
class Case:
    id: str
    server: str
    kind: str
    """result | denied | pending"""
    messages: list[dict[str, Any]]
    grounded: tuple[str, ...]


def cases() -> list[Case]:
    rows = [json.loads(line) for line in resources.files("finetune.eval").joinpath(CASES).read_text().splitlines()]
    return [Case(r["id"], r["server"], r["kind"], r["messages"], tuple(r["grounded"])) for r in rows]


def check(text: str, n_tokens: int, case: Case, max_new_tokens: int) -> dict[str, bool]:
    """The three properties of the model's next turn (see the module docstring)."""
    parsed = parse(as_hermes(text))  # a call written as bare JSON is a call too, not words
    words = not parsed.tools_called and not any(m in text for m in _MARKUP) and bool(text.strip())
    stopped = n_tokens < max_new_tokens
    if case.kind == "result":
        said = any(g.lower() in text.lower() for g in case.grounded)
    elif case.kind == "denied":
        said = bool(_DENIED.search(text))
    else:
        said = bool(_PENDING.search(text))
    return {"words": words, "stopped": stopped, "said_so": said}


def run(generate: Generate, tokenizer: Any, *, max_new_tokens: int = 160) -> dict[str, Any]:
    """Per kind and overall: right (all three properties), with 95% intervals, and each property's rate."""
    chosen, cats = cases(), catalogs()
    texts = generate([render_prompt(tokenizer, c.messages, cats[c.server]) for c in chosen], max_new_tokens)
    rows: list[dict[str, Any]] = []
    for c, t in zip(chosen, texts, strict=True):
        n = len(tokenizer(t, add_special_tokens=False)["input_ids"])
        props = check(t, n, c, max_new_tokens)
        rows.append({"id": c.id, "kind": c.kind, "output": t, "tokens": n, **props, "correct": all(props.values())})
    out: dict[str, Any] = {"all": of([r["correct"] for r in rows]).as_dict()}
    for kind in ("result", "denied", "pending"):
        out[kind] = of([r["correct"] for r in rows if r["kind"] == kind]).as_dict()
    out["properties"] = {p: of([r[p] for r in rows]).as_dict() for p in ("words", "stopped", "said_so")}
    out["failed"] = dict(Counter(p for r in rows for p in ("words", "stopped", "said_so") if not r[p]))
    out["rows"] = rows
    return out
