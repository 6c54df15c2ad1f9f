"""BFCL v4, every single-turn category the wheel ships, scored by BFCL's own AST checker.

Owns: reading a category's questions + ground truth (`entries`), drawing a fixed-seed sample of
any size (0: all), generating through a `Generate` (vLLM or transformers, as finetune.evaluate),
parsing with the server's hermes parser, and scoring per category with an n and a 95% Wilson
interval. Scoring, as BFCL does it: `irrelevance` / `live_irrelevance`: right when no call is made;
`live_relevance`: right when at least one call is made; every other category: BFCL's
`ast_checker` (finetune.eval.ast_checker) on the calls, names mapped back to BFCL's own.
Never: uses BFCL data for anything but evaluation (finetune.bfcl.overlap guards training data).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from finetune import bfcl
from finetune.chat import render_prompt
from finetune.eval import ast_checker
from finetune.eval.interval import of
from finetune.evaluate import Generate
from finetune.toolcall_parse import parse

NO_CALL = ("irrelevance", "live_irrelevance")
ANY_CALL = ("live_relevance",)
AST_CATEGORIES = tuple(c for c in bfcl.SINGLE_TURN if c not in (*NO_CALL, *ANY_CALL))
CATEGORIES = (*AST_CATEGORIES, *NO_CALL, *ANY_CALL)
assert set(CATEGORIES) == set(bfcl.SINGLE_TURN), "finetune.bfcl.SINGLE_TURN (the leak guard's list) must match"
"""The single-turn, Python-typed categories of BFCL v4 (java/javascript, multi-turn, memory and web
search need BFCL's own executors or type converters: not run here)."""


@dataclass(frozen=True, slots=True)
class Entry:
    id: str
    category: str
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]]
    """OpenAI tools as served (names with '.' mapped to '_')."""
    functions: list[dict[str, Any]]
    """BFCL's own function descriptions (what its checker reads)."""
    answer: list[dict[str, Any]]
    """BFCL's ground truth ([] for the no-call and any-call categories)."""

    def original_name(self, served: str) -> str:
        return next((f["name"] for f in self.functions if bfcl._name(f["name"]) == served), served)


def entries(category: str, data: Path | None = None) -> list[Entry]:
    if category not in CATEGORIES:
        raise ValueError(f"unknown BFCL category {category!r}; known: {', '.join(CATEGORIES)}")
    data = data or bfcl.data_dir()
    questions = bfcl._read(data / f"BFCL_v4_{category}.json")
    answers_path = data / "possible_answer" / f"BFCL_v4_{category}.json"
    answers = {a["id"]: a["ground_truth"] for a in bfcl._read(answers_path)} if answers_path.is_file() else {}
    served = {e["id"]: e for e in bfcl.load(category, data)}
    return [
        Entry(q["id"], category, q["question"][0], served[q["id"]]["tools"], q["function"], answers.get(q["id"], []))
        for q in questions
    ]


def sample(items: list[Entry], limit: int, seed: int) -> list[Entry]:
    """`limit` entries drawn with `seed` (0 or more than there are: all), in file order."""
    if 0 < limit < len(items):
        keep = set(random.Random(seed).sample(range(len(items)), limit))
        return [e for i, e in enumerate(items) if i in keep]
    return items


def score(text: str, entry: Entry) -> tuple[bool, str]:
    """(right, why) for generated `text` on `entry`."""
    parsed = parse(text)
    if entry.category in NO_CALL:
        return (not parsed.tools_called, "ok" if not parsed.tools_called else "called a tool")
    if entry.category in ANY_CALL:
        return (bool(parsed.calls), "ok" if parsed.calls else "no call")
    if not parsed.calls:
        return False, "no call"
    try:
        calls = [{entry.original_name(c.name): c.arguments_obj()} for c in parsed.calls]
    except json.JSONDecodeError:
        return False, "arguments not JSON"
    verdict = ast_checker.check(entry.functions, calls, entry.answer, entry.category)
    return bool(verdict["valid"]), "ok" if verdict["valid"] else str(verdict.get("error_type", "invalid"))


def run(
    generate: Generate,
    tokenizer: Any,
    *,
    categories: tuple[str, ...] = CATEGORIES,
    limit: int = 0,
    seed: int = 0,
    max_new_tokens: int = 160,
) -> dict[str, Any]:
    """Per category: k, n, accuracy, 95% interval, error types, and every row."""
    out: dict[str, Any] = {}
    for cat in categories:
        chosen = sample(entries(cat), limit, seed)
        prompts = [render_prompt(tokenizer, e.messages, e.tools) for e in chosen]
        texts = generate(prompts, max_new_tokens)
        verdicts = [score(t, e) for t, e in zip(texts, chosen, strict=True)]
        result: dict[str, Any] = of([ok for ok, _ in verdicts]).as_dict()
        result["errors"] = dict(Counter(why for ok, why in verdicts if not ok))
        result["rows"] = [
            {"id": e.id, "output": t, "correct": ok, "why": why}
            for e, t, (ok, why) in zip(chosen, texts, verdicts, strict=True)
        ]
        out[cat] = result
    return out
