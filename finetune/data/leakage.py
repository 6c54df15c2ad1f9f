"""Benchmark and eval questions must never be training data: finding them in a dataset.

Owns reading every question people are scored on (all BFCL v4 files the `bfcl-eval` wheel ships,
multi-turn and live ones included, and the project's own eval sets: any JSON / JSONL file whose
records carry `request` strings or `messages` with user turns) and matching a dataset's user turns
against them, exactly and after normalisation (Unicode NFKC, case folded, punctuation dropped,
whitespace collapsed), so a question with a changed comma or capital is still found.
Never writes anything.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from finetune.synth import Example


def normalise(text: str) -> str:
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(re.sub(r"[^\w\s]", " ", folded).split())


def _texts(value: Any) -> Iterator[str]:
    """Question texts anywhere in a record: user turns' content and `request` / `question` strings."""
    if isinstance(value, dict):
        if value.get("role") == "user" and isinstance(value.get("content"), str):
            yield value["content"]
        for k in ("request", "question"):
            if isinstance(value.get(k), str):
                yield value[k]
        for v in value.values():
            if isinstance(v, dict | list):
                yield from _texts(v)
    elif isinstance(value, list):
        for v in value:
            yield from _texts(v)


def _records(path: Path) -> Iterator[Any]:
    text = path.read_text()
    try:
        yield json.loads(text)
    except json.JSONDecodeError:
        yield from (json.loads(line) for line in text.splitlines() if line.strip())


def questions(paths: Iterable[Path]) -> set[str]:
    """Every question text in these JSON / JSONL files."""
    return {q for p in paths for record in _records(p) for q in _texts(record) if q.strip()}


def bfcl_files(data: Path | None = None) -> list[Path]:
    """Every BFCL v4 question file in the wheel's data folder (answers excluded)."""
    from finetune.bfcl import data_dir

    return sorted((data or data_dir()).glob("BFCL_v4_*.json"))


class Guard:
    """Questions that must not be training data, ready to match (exact, and normalised)."""

    def __init__(self, banned: Iterable[str]) -> None:
        banned = list(banned)
        self.exact = {q.strip() for q in banned}
        self.normal = {normalise(q) for q in banned} - {""}

    def hit(self, text: str) -> bool:
        return text.strip() in self.exact or normalise(text) in self.normal


def leaks(examples: Iterable[Example], banned: Iterable[str] | Guard) -> list[str]:
    """User turns of `examples` that are one of `banned`, exactly or once normalised."""
    guard = banned if isinstance(banned, Guard) else Guard(banned)
    return [m["content"] for ex in examples for m in ex["messages"] if m["role"] == "user" and guard.hit(m["content"])]


EVAL_DIR = Path(__file__).resolve().parents[1] / "eval"
"""finetune/eval: the project's own eval sets (JSONL) live here."""


def eval_files(root: Path = EVAL_DIR) -> list[Path]:
    return sorted(root.glob("*.jsonl")) if root.is_dir() else []


def default_guard(extra: Iterable[Path] = ()) -> Guard:
    """Every BFCL v4 question, the project's eval sets, and the questions in `extra` files."""
    return Guard(questions([*bfcl_files(), *eval_files(), *extra]))
