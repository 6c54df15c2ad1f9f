"""Training data: OpenAI chat JSONL (`messages` with `tool_calls`, plus the `tools` offered).

Owns validating examples (structure, offered tools with schemas, every call's arguments valid
against its tool's schema), reading user JSONL line by line with errors that name the line,
deduplicating, splitting into train and eval (by example, or by tool so eval tools are unseen),
and writing files atomically (temp file, then rename). Deterministic for a seed.

The package's modules generate and guard data: `natural` (requests the way people write them, over
real MCP catalogs; `frames/` per server, `values`, `turns` for endings after a call), `teach/` (the
vLLM teacher path with its checks and cache) and `leakage` (BFCL and eval questions never in training).
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator

from finetune.synth import Example, Tool

_ROLES = {"system", "user", "assistant", "tool"}


class DataError(ValueError):
    """Invalid data; the message names the file and line when there is one."""


def tools_by_name(ex: Example) -> dict[str, Tool]:
    return {t["function"]["name"]: t for t in ex.get("tools") or []}


def calls(message: dict[str, Any]) -> list[tuple[str, Any]]:
    """(name, arguments object) of each tool call in an assistant message."""
    out = []
    for tc in message.get("tool_calls") or []:
        fn = tc.get("function", tc)
        args = fn.get("arguments", {})
        out.append((fn.get("name"), json.loads(args) if isinstance(args, str) else args))
    return out


def validate(ex: Any) -> list[str]:
    """Every problem with one example, as short sentences; empty when valid."""
    if not isinstance(ex, dict):
        return ["an example must be a JSON object"]
    tools = ex.get("tools", [])
    if not isinstance(tools, list):
        return ["'tools' must be a list"]
    errors = _tool_problems(tools)
    messages = ex.get("messages")
    if not isinstance(messages, list) or not messages:
        return [*errors, "'messages' must be a non-empty list"]
    if errors:
        return errors
    offered = tools_by_name(ex)
    for i, m in enumerate(messages):
        errors += _message_problems(i, m, offered)
    if isinstance(messages[-1], dict) and messages[-1].get("role") != "assistant":
        errors.append("the last message must be the assistant's")
    return errors


def _tool_problems(tools: list[Any]) -> list[str]:
    errors = []
    for i, t in enumerate(tools):
        fn = t.get("function") if isinstance(t, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            errors.append(f"tools[{i}] must be {{'type': 'function', 'function': {{'name': ...}}}}")
        elif not isinstance(fn.get("parameters"), dict):
            errors.append(f"tool {fn['name']!r} has no parameters schema")
    return errors


def _message_problems(i: int, m: Any, offered: dict[str, Tool]) -> list[str]:
    if not isinstance(m, dict) or m.get("role") not in _ROLES:
        return [f"messages[{i}]: role must be one of {sorted(_ROLES)}"]
    errors = []
    if m["role"] != "assistant" and not isinstance(m.get("content"), str):
        errors.append(f"messages[{i}] ({m['role']}): content must be a string")
    if m["role"] != "assistant" or not m.get("tool_calls"):
        return errors
    try:
        parsed = calls(m)
    except (json.JSONDecodeError, AttributeError, TypeError):
        return [*errors, f"messages[{i}]: tool call arguments are not a JSON object"]
    for name, args in parsed:
        errors += _call_problems(f"messages[{i}]", name, args, offered)
    return errors


def _call_problems(where: str, name: Any, args: Any, offered: dict[str, Tool]) -> list[str]:
    if name not in offered:
        return [f"{where}: calls {name!r}, which is not among the offered tools"]
    if not isinstance(args, dict):
        return [f"{where}: arguments of {name!r} are not a JSON object"]
    schema = offered[name]["function"]["parameters"]
    return [
        f"{where}: call {name!r} violates its schema at {'/'.join(map(str, err.absolute_path)) or '(arguments)'}: "
        f"{err.message}"
        for err in Draft202012Validator(schema).iter_errors(args)
    ]


def normalize(ex: Example) -> Example:
    """Arguments as JSON text (the OpenAI form) and `content` as a string on assistant turns."""
    out = {"messages": [], "tools": ex.get("tools", [])}
    for m in ex["messages"]:
        m = dict(m)
        if m["role"] == "assistant":
            m["content"] = m.get("content") or ""
            if m.get("tool_calls"):
                m["tool_calls"] = [
                    {"type": "function", "function": {"name": n, "arguments": json.dumps(a, ensure_ascii=False)}}
                    for n, a in calls(m)
                ]
        out["messages"].append(m)
    return out


def read_jsonl(path: Path) -> list[Example]:
    """Read and validate user JSONL; the first bad line raises DataError naming `path:line`."""
    out = []
    with path.open() as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                ex = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{lineno}: not valid JSON ({e.msg} at column {e.colno})") from e
            errors = validate(ex)
            if errors:
                raise DataError(f"{path}:{lineno}: " + "; ".join(errors))
            out.append(normalize(ex))
    return out


def key(ex: Example) -> str:
    names = sorted(tools_by_name(ex))
    return hashlib.sha256(json.dumps([ex["messages"], names], sort_keys=True).encode()).hexdigest()


def dedup(examples: Iterable[Example]) -> list[Example]:
    seen: set[str] = set()
    out = []
    for ex in examples:
        k = key(ex)
        if k not in seen:
            seen.add(k)
            out.append(ex)
    return out


def split(examples: list[Example], eval_fraction: float, seed: int) -> tuple[list[Example], list[Example]]:
    """Random split by example."""
    order = list(range(len(examples)))
    random.Random(seed).shuffle(order)
    n_eval = max(1, round(len(examples) * eval_fraction)) if examples else 0
    return [examples[i] for i in order[n_eval:]], [examples[i] for i in order[:n_eval]]


def write_jsonl(path: Path, examples: Iterable[Example]) -> None:
    """Write atomically: a temp file in the same directory, then rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w") as f:
            for ex in examples:
                f.write(json.dumps(ex, ensure_ascii=False) + "\n")
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as f:
        json.dump(value, f, indent=2, ensure_ascii=False)
    os.replace(tmp, path)


def load(path: Path) -> list[Example]:
    return read_jsonl(path)


def summary(examples: list[Example]) -> dict[str, Any]:
    n_calls = sum(1 for ex in examples if ex["messages"][-1].get("tool_calls"))
    tools = {n for ex in examples for n in tools_by_name(ex)}
    return {"examples": len(examples), "with_call": n_calls, "no_call": len(examples) - n_calls, "tools": len(tools)}


def _hold_out(items: list[Any], fraction: float, rng: random.Random) -> tuple[list[Any], list[Any]]:
    items = list(items)
    rng.shuffle(items)
    n = min(len(items) - 1, max(1, round(len(items) * fraction))) if len(items) > 1 else 0
    return items[n:], items[:n]


def build(  # noqa: PLR0917 (warden/pipeline.py calls it positionally; keyword-only after h1's pipeline edits merge)
    catalogs: list[list[Tool]],
    per_catalog: int,
    synthetic: int,
    extra: list[Example],
    seed: int,
    eval_fraction: float,
    by_tool: bool,
) -> tuple[list[Example], list[Example]]:
    """Train and eval examples from catalogs, synthetic catalogs and ready examples (user, mined).

    `by_tool`: eval examples use only tools (synthetic: domains) that no train example offers.
    Every example is validated; an invalid synthesized one is a bug and raises.
    """
    from finetune import synth

    rng = random.Random(seed)
    train: list[Example] = []
    evals: list[Example] = []
    groups: list[tuple[list[Tool], list[Tool]]] = []
    if synthetic:
        tr_domains, ev_domains = _hold_out(synth.domains(), eval_fraction, rng) if by_tool else (synth.domains(), [])
        n_cat = max(1, synthetic // 200)
        for _ in range(n_cat):
            tr_cat = synth.synthetic_catalog(rng, tr_domains)
            ev_cat = synth.synthetic_catalog(rng, ev_domains) if ev_domains else []
            groups.append((tr_cat, ev_cat))
    for cat in catalogs:
        groups.append(_hold_out(cat, eval_fraction, rng) if by_tool else (cat, []))
    for i, (tr_cat, ev_cat) in enumerate(groups):
        n = (
            synthetic // len([g for g in groups[: len(groups) - len(catalogs)]])
            if i < len(groups) - len(catalogs)
            else per_catalog
        )
        n_eval = round(n * eval_fraction) if ev_cat else 0
        train += synth.synthesize(tr_cat, n - n_eval, rng)
        evals += synth.synthesize(ev_cat, n_eval, rng) if ev_cat else []
    if not by_tool:
        train, evals = split(dedup(train), eval_fraction, seed)
    ex_train, ex_eval = split(dedup(extra), eval_fraction, seed) if extra else ([], [])
    train, evals = dedup(train + ex_train), dedup(evals + ex_eval)
    eval_keys = {key(e) for e in evals}
    train = [e for e in train if key(e) not in eval_keys]
    for ex in train + evals:
        errors = validate(ex)
        if errors:
            raise DataError(f"synthesized example is invalid ({'; '.join(errors)}): {json.dumps(ex)[:500]}")
    return train, evals
