"""The hand-written natural-language eval over the real schemas of five MCP servers.

Owns `natural_mcp.jsonl` (requests written by hand the way people ask, with the values inside the
prose; 53 need one call, 14 need none, several of them near misses) and
`mcp_catalogs.json` (the servers' `tools/list` snapshots: mcp-server-time, mcp-server-git,
server-everything, server-filesystem, server-memory), the loader, the scorer and the run.
Each request is offered its server's whole catalog, as an agent connected to that server sees it.
This set is for evaluation only: `overlap()` finds its requests in a dataset, and
tests/finetune/eval/test_natural.py checks that generated training data never contains them.

Scoring a call: the tool name is one of the expected names; every expected argument is there and
matches (strings trimmed and case-insensitive; numbers by value; lists in any order; objects key by
key; `{"$any": [...]}` one of; `{"$contains": s}` a string containing s); an argument not expected is
allowed only when the schema has it and the value is the schema's default. A no-call case is right
when nothing is called.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from importlib import resources
from typing import Any

from finetune.catalog import to_openai
from finetune.chat import render_prompt
from finetune.eval.interval import of
from finetune.evaluate import Generate
from finetune.toolcall_parse import parse

CASES = "natural_mcp.jsonl"
CATALOGS = "mcp_catalogs.json"
"""In finetune.data (one shipped copy of the five servers' tools/list; schemas, not eval requests)."""


@dataclass(frozen=True, slots=True)
class Case:
    id: str
    server: str
    request: str
    names: tuple[str, ...]
    """Acceptable tool names; empty: the right answer is no call."""
    arguments: dict[str, Any]


def _read(name: str) -> str:
    return resources.files("finetune.eval").joinpath(name).read_text()


def catalogs() -> dict[str, list[dict[str, Any]]]:
    """Server name -> its tools as OpenAI tools."""
    raw = json.loads(resources.files("finetune.data").joinpath(CATALOGS).read_text())
    return {server: [to_openai(t, f"{CATALOGS}:{server}") for t in tools] for server, tools in raw.items()}


def cases() -> list[Case]:
    out = []
    for line in _read(CASES).splitlines():
        row = json.loads(line)
        call = row["call"]
        names: tuple[str, ...] = ()
        if call is not None:
            names = tuple(call["name"]) if isinstance(call["name"], list) else (call["name"],)
        out.append(Case(row["id"], row["server"], row["request"], names, call["arguments"] if call else {}))
    return out


def requests() -> set[str]:
    """Every request text of the set, normalized as `overlap` compares them."""
    return {_norm(c.request) for c in cases()}


def _norm(text: str) -> str:
    return " ".join(text.lower().split())


def overlap(examples: list[dict[str, Any]]) -> list[str]:
    """User messages of `examples` that are requests of this eval set (must be empty for training data)."""
    reqs = requests()
    return [
        str(m["content"])
        for ex in examples
        for m in ex.get("messages", [])
        if m.get("role") == "user" and isinstance(m.get("content"), str) and _norm(m["content"]) in reqs
    ]


def value_ok(pred: Any, want: Any) -> bool:
    if isinstance(want, dict) and set(want) == {"$any"}:
        return any(value_ok(pred, w) for w in want["$any"])
    if isinstance(want, dict) and set(want) == {"$contains"}:
        return isinstance(pred, str) and want["$contains"].lower() in pred.lower()
    if isinstance(want, bool) or isinstance(pred, bool):
        return isinstance(pred, bool) and pred == want
    if isinstance(want, int | float):
        return isinstance(pred, int | float) and float(pred) == float(want)
    if isinstance(want, str):
        return isinstance(pred, str) and pred.strip().lower() == want.strip().lower()
    if isinstance(want, list):
        return isinstance(pred, list) and len(pred) == len(want) and _any_order(pred, want)
    if isinstance(want, dict):
        return isinstance(pred, dict) and set(pred) == set(want) and all(value_ok(pred[k], want[k]) for k in want)
    return bool(pred == want)


def _any_order(pred: list[Any], want: list[Any]) -> bool:
    left = list(pred)
    for w in want:
        hit = next((i for i, p in enumerate(left) if value_ok(p, w)), None)
        if hit is None:
            return False
        left.pop(hit)
    return True


def _defaults(tool: dict[str, Any]) -> dict[str, Any]:
    props = tool["function"]["parameters"].get("properties", {})
    return {k: v["default"] for k, v in props.items() if isinstance(v, dict) and "default" in v}


def score(text: str, case: Case, tools: list[dict[str, Any]]) -> tuple[bool, str]:
    """(right, why) for generated `text` on `case` offered `tools`."""
    parsed = parse(text)
    if not case.names:
        return (not parsed.tools_called, "ok" if not parsed.tools_called else "called a tool")
    if not parsed.calls:
        return False, "no call"
    if len(parsed.calls) != 1:
        return False, f"{len(parsed.calls)} calls"
    call = parsed.calls[0]
    if call.name not in case.names:
        return False, "wrong tool"
    try:
        args = call.arguments_obj()
    except json.JSONDecodeError:
        return False, "arguments not JSON"
    if not isinstance(args, dict):
        return False, "arguments not an object"
    return _arguments_ok(args, case, next(t for t in tools if t["function"]["name"] == call.name))


def _arguments_ok(args: dict[str, Any], case: Case, tool: dict[str, Any]) -> tuple[bool, str]:
    missing = [k for k in case.arguments if k not in args]
    if missing:
        return False, "missing argument"
    defaults = _defaults(tool)
    extra = [k for k in args if k not in case.arguments and (k not in defaults or args[k] != defaults[k])]
    if extra:
        return False, "unexpected argument"
    if not all(value_ok(args[k], v) for k, v in case.arguments.items()):
        return False, "wrong value"
    return True, "ok"


_FENCE = re.compile(r"```(?:json)?\s*(\{.*?\})\s*```", re.DOTALL)


def as_hermes(text: str) -> str:
    """`text` with JSON calls written outside `<tool_call>` tags (```json blocks, the whole answer as one
    JSON object, or one object per line) rewritten as tags: a diagnostic of understanding apart from format.
    The server's parser does not do this; the figures it yields are reported separately ("JSON read as calls")."""
    if "<tool_call>" in text:
        return text
    calls = [c for c in (_call(b) for b in _FENCE.findall(text)) if c]
    if not calls and text.strip().startswith("{"):
        whole = _call(text.strip())
        calls = [whole] if whole else [c for c in map(_call, text.splitlines()) if c]
    return "\n".join(f"<tool_call>\n{c}\n</tool_call>" for c in calls) if calls else text


def _call(body: str) -> str | None:
    try:
        obj = json.loads(body)
    except json.JSONDecodeError:
        return None
    if isinstance(obj, dict) and isinstance(obj.get("name"), str) and "arguments" in obj:
        return json.dumps(obj)
    return None


def prompts(tokenizer: Any, chosen: list[Case]) -> list[str]:
    cats = catalogs()
    return [render_prompt(tokenizer, [{"role": "user", "content": c.request}], cats[c.server]) for c in chosen]


def run(generate: Generate, tokenizer: Any, *, max_new_tokens: int = 160) -> dict[str, Any]:
    """Calls right (of the one-call cases) and no-call right (of the rest), with 95% intervals and rows."""
    chosen, cats = cases(), catalogs()
    texts = generate(prompts(tokenizer, chosen), max_new_tokens)
    verdicts = [score(t, c, cats[c.server]) for t, c in zip(texts, chosen, strict=True)]
    rows = [
        {"id": c.id, "output": t, "correct": ok, "why": why}
        for c, t, (ok, why) in zip(chosen, texts, verdicts, strict=True)
    ]
    lenient = [score(as_hermes(t), c, cats[c.server])[0] for t, c in zip(texts, chosen, strict=True)]
    return {
        "calls": of([ok for c, (ok, _) in zip(chosen, verdicts, strict=True) if c.names]).as_dict(),
        "no_call": of([ok for c, (ok, _) in zip(chosen, verdicts, strict=True) if not c.names]).as_dict(),
        "calls_json_read": of([ok for c, ok in zip(chosen, lenient, strict=True) if c.names]).as_dict(),
        "no_call_json_read": of([ok for c, ok in zip(chosen, lenient, strict=True) if not c.names]).as_dict(),
        "errors": dict(Counter(r["why"] for r in rows if not r["correct"])),
        "rows": rows,
    }
