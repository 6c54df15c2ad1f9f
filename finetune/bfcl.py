"""BFCL v4 (PyPI `bfcl-eval`): read its data, score with our AST matcher, guard against leakage.

The data is read straight from the wheel (`pip download --no-deps bfcl-eval`, cached); the
package is never installed (its runner formats prompts itself and pulls heavy dependencies).
Questions and functions become OpenAI examples served through the same template + hermes
parser path as every other eval. Function names have '.' replaced by '_' (OpenAI names allow
neither dots nor BFCL's Python paths; BFCL's own OpenAI handler does the same).
BFCL data must never be used for training: `overlap()` finds any BFCL question in a dataset.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

from filelock import FileLock

from finetune.chat import render_prompt
from finetune.evaluate import Generate, value_matches
from finetune.synth import Example
from finetune.toolcall_parse import parse

PACKAGE = "bfcl-eval==2026.3.23"
CACHE = Path.home() / ".cache" / "warden" / "bfcl"
CATEGORIES = ("simple_python", "multiple", "parallel", "irrelevance")
"""What `warden finetune eval` samples by default (finetune.eval.bfcl runs every single-turn category)."""
SINGLE_TURN = (
    "simple_python",
    "multiple",
    "parallel",
    "parallel_multiple",
    "live_simple",
    "live_multiple",
    "live_parallel",
    "live_parallel_multiple",
    "irrelevance",
    "live_irrelevance",
    "live_relevance",
)
"""Every single-turn category of the wheel's data (finetune.eval.bfcl evaluates all of them)."""
_TYPES = {
    "dict": "object",
    "float": "number",
    "tuple": "array",
    "any": None,
    "list": "array",
    "int": "integer",
    "str": "string",
    "bool": "boolean",
}


def download_wheel(into: Path) -> Path:
    """The pinned `bfcl-eval` wheel (no dependencies), downloaded by pip into ``into``."""
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", PACKAGE, "-d", str(into)],
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"pip download {PACKAGE} failed:\n{proc.stderr}")
    return next(into.glob("*.whl"))


def data_dir(cache: Path = CACHE) -> Path:
    """`bfcl_eval/data` extracted from the wheel, downloaded once (concurrent callers wait for one download)."""
    out = cache / "bfcl_eval" / "data"
    if (out / "BFCL_v4_simple_python.json").is_file():
        return out
    cache.mkdir(parents=True, exist_ok=True)
    with FileLock(cache / ".download.lock"):
        if (out / "BFCL_v4_simple_python.json").is_file():  # the caller we waited for extracted it
            return out
        with tempfile.TemporaryDirectory(dir=cache) as tmp:
            with zipfile.ZipFile(download_wheel(Path(tmp))) as zf:
                members = [m for m in zf.namelist() if m.startswith("bfcl_eval/data/") and "unused" not in m]
                zf.extractall(tmp, members)
            (cache / "bfcl_eval").mkdir(exist_ok=True)
            if out.exists():  # a half-extracted tree an interrupted run left
                shutil.rmtree(out)
            Path(tmp, "bfcl_eval", "data").rename(out)
    return out


def _schema(s: Any) -> Any:
    if isinstance(s, dict):
        out = {k: _schema(v) for k, v in s.items()}
        if isinstance(s.get("type"), str) and s["type"] in _TYPES:
            if _TYPES[s["type"]] is None:
                del out["type"]
            else:
                out["type"] = _TYPES[s["type"]]
        return out
    if isinstance(s, list):
        return [_schema(v) for v in s]
    return s


def _name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def load(category: str, data: Path | None = None) -> list[dict[str, Any]]:
    """Entries with `messages`, `tools` (OpenAI) and `answer` (BFCL ground truth, names mapped; [] if none)."""
    data = data or data_dir()
    questions = _read(data / f"BFCL_v4_{category}.json")
    answers_path = data / "possible_answer" / f"BFCL_v4_{category}.json"
    answers = {a["id"]: a["ground_truth"] for a in _read(answers_path)} if answers_path.is_file() else {}
    out = []
    for q in questions:
        tools = [
            {
                "type": "function",
                "function": {
                    "name": _name(f["name"]),
                    "description": f.get("description", ""),
                    "parameters": _schema(f.get("parameters", {})),
                },
            }
            for f in q["function"]
        ]
        answer = [{_name(n): args for n, args in gt.items()} for gt in answers.get(q["id"], [])]
        out.append({"id": q["id"], "messages": q["question"][0], "tools": tools, "answer": answer})
    return out


def _match_call(name: str, args: Any, gt: dict[str, dict[str, list[Any]]]) -> bool:
    if name not in gt or not isinstance(args, dict):
        return False
    allowed = gt[name]
    if set(args) - set(allowed):
        return False
    for param, options in allowed.items():
        if param not in args:
            if "" not in options:
                return False
            continue
        if not any(_bfcl_value(args[param], o) for o in options if o != ""):
            return False
    return True


def _norm(s: str) -> str:
    return re.sub(r"[ ,./\-_*^]", "", s).lower()


def _bfcl_value(pred: Any, want: Any) -> bool:
    if isinstance(want, str) and isinstance(pred, str):
        return _norm(pred) == _norm(want)
    if isinstance(want, list) and isinstance(pred, list):
        return len(pred) == len(want) and all(_bfcl_value(p, w) for p, w in zip(pred, want, strict=True))
    if isinstance(want, dict) and isinstance(pred, dict):
        return set(pred) <= set(want) and all(any(_bfcl_value(pred[k], o) for o in want[k] if o != "") for k in pred)
    if isinstance(want, float) and isinstance(pred, int) and not isinstance(pred, bool):
        return value_matches(float(pred), want)
    return value_matches(pred, want)


def score(text: str, answer: list[dict[str, Any]]) -> bool:
    """BFCL AST match: irrelevance wants no call; otherwise each ground-truth call matched once, any order."""
    parsed = parse(text)
    if not answer:
        return not parsed.tools_called
    try:
        preds = [(c.name, c.arguments_obj()) for c in parsed.calls]
    except json.JSONDecodeError:
        return False
    if len(preds) != len(answer):
        return False
    left = list(answer)
    for name, args in preds:
        hit = next((gt for gt in left if _match_call(name, args, gt)), None)
        if hit is None:
            return False
        left.remove(hit)
    return True


def run(
    generate: Generate,
    tokenizer: Any,
    *,
    categories: tuple[str, ...] = CATEGORIES,
    limit: int = 50,
    seed: int = 0,
    max_new_tokens: int = 160,
) -> dict[str, Any]:
    """Accuracy per category on `limit` entries drawn with `seed` (0 or less: all)."""
    out: dict[str, Any] = {}
    for cat in categories:
        entries = load(cat)
        if 0 < limit < len(entries):
            entries = random.Random(seed).sample(entries, limit)
        prompts = [render_prompt(tokenizer, e["messages"], e["tools"]) for e in entries]
        texts = generate(prompts, max_new_tokens)
        correct = [score(t, e["answer"]) for t, e in zip(texts, entries, strict=True)]
        out[cat] = {
            "accuracy": sum(correct) / len(correct),
            "n": len(correct),
            "rows": [
                {"id": e["id"], "output": t, "correct": c} for e, t, c in zip(entries, texts, correct, strict=True)
            ],
        }
    return out


def questions(data: Path | None = None, categories: tuple[str, ...] = CATEGORIES) -> set[str]:
    """Every user question text in `categories` (SINGLE_TURN: every category the wheel's eval runs on;
    today's synthetic chit-chat "How are you today?" is a live_irrelevance question, so that guard fails)."""
    out: set[str] = set()
    for cat in categories:
        for e in load(cat, data):
            out.update(m["content"].strip().lower() for m in e["messages"] if m["role"] == "user")
    return out


def overlap(examples: list[Example], data: Path | None = None, categories: tuple[str, ...] = CATEGORIES) -> list[str]:
    """User messages of `examples` that are BFCL questions of `categories` (must be empty for training data)."""
    qs = questions(data, categories)
    return [
        m["content"]
        for ex in examples
        for m in ex["messages"]
        if m["role"] == "user" and m["content"].strip().lower() in qs
    ]
