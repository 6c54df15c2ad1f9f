"""Evaluate tool calling: AST match and irrelevance, base vs adapter, through the serving path.

Each example's prompt is rendered with the model's chat template (chat.render_prompt, as vLLM
does), the model generates greedily, and the text is parsed with the server's hermes parser
(toolcall_parse). A call is correct when the name matches, every required argument is present,
no argument is invented, and every value matches type-aware (bool is not a number; an integer
parameter needs an integer; strings compare trimmed and case-insensitively; lists in order;
objects key by key). An example with several expected calls needs all of them, in any order.
An example whose right answer is no call is correct when nothing is called (irrelevance).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from finetune.chat import render_prompt
from finetune.data import calls, tools_by_name
from finetune.precision import Capability, choose, probe
from finetune.synth import Example
from finetune.toolcall_parse import parse

Expected = list[tuple[str, dict[str, Any]]]


def value_matches(pred: Any, want: Any, schema: dict[str, Any] | None = None) -> bool:
    schema = schema or {}
    if isinstance(want, bool) or isinstance(pred, bool):
        return isinstance(pred, bool) and isinstance(want, bool) and pred == want
    if isinstance(want, int | float):
        if not isinstance(pred, int | float):
            return False
        if schema.get("type") == "integer" and not isinstance(pred, int):
            return False
        return abs(float(pred) - float(want)) < 1e-9
    if isinstance(want, str):
        return isinstance(pred, str) and pred.strip().lower() == want.strip().lower()
    if isinstance(want, list):
        items = schema.get("items") if isinstance(schema.get("items"), dict) else {}
        return (
            isinstance(pred, list)
            and len(pred) == len(want)
            and all(value_matches(p, w, items) for p, w in zip(pred, want, strict=True))
        )
    if isinstance(want, dict):
        props = schema.get("properties", {})
        return (
            isinstance(pred, dict)
            and set(pred) == set(want)
            and all(value_matches(pred[k], want[k], props.get(k)) for k in want)
        )
    return bool(pred == want)


def call_matches(pred: tuple[str, Any], want: tuple[str, dict[str, Any]], schema: dict[str, Any]) -> bool:
    name, args = pred
    if name != want[0] or not isinstance(args, dict):
        return False
    if any(r not in args for r in schema.get("required", [])) or set(args) != set(want[1]):
        return False
    props = schema.get("properties", {})
    return all(value_matches(args[k], v, props.get(k)) for k, v in want[1].items())


def score(text: str, expected: Expected, tools: dict[str, dict[str, Any]]) -> bool:
    """Whether generated `text`, parsed as the server would, is the expected answer."""
    parsed = parse(text)
    if not expected:
        return not parsed.tools_called
    try:
        preds = [(c.name, c.arguments_obj()) for c in parsed.calls]
    except json.JSONDecodeError:
        return False
    if len(preds) != len(expected):
        return False
    left = list(preds)
    for want in expected:
        schema = tools.get(want[0], {}).get("function", {}).get("parameters", {})
        hit = next((p for p in left if call_matches(p, want, schema)), None)
        if hit is None:
            return False
        left.remove(hit)
    return True


Generate = Callable[[list[str], int], list[str]]
"""Greedy completions of rendered prompts: (prompts, max_new_tokens) -> text up to the end of turn."""


class EvalError(RuntimeError):
    """Generation failed (the served model answered with an error, or not at all)."""


def load_model(base: Path, adapter: Path | None, capability: Capability | None = None) -> tuple[Any, Any]:
    """Base (or base + adapter, merged) for generation, and its tokenizer: bf16 where the machine
    (`capability`, default probed) computes it natively, fp32 elsewhere (finetune.precision)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    bf16 = choose("auto", capability or probe()).value == "bf16"
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter).merge_and_unload()
    return tokenizer, model.to(torch.bfloat16 if bf16 else torch.float32).eval()  # type: ignore[arg-type]


def hf_generator(model: Any, tokenizer: Any, batch_size: int = 8) -> Generate:
    """Generation with transformers in this process (no server needed; ~10x slower than vLLM on CPU)."""

    def run(prompts: list[str], max_new_tokens: int) -> list[str]:
        return generate(model, tokenizer, prompts, max_new_tokens=max_new_tokens, batch_size=batch_size)

    return run


def completion_body(model: str, prompt: str, max_new_tokens: int) -> dict[str, Any]:
    """The `/completions` request for one rendered prompt: greedy, no special tokens added (the rendered
    prompt has them) and none skipped in the answer, as serving's hermes parser asks of vLLM
    (adjust_request); otherwise vLLM drops <tool_call> tags and every call reads as none."""
    return {
        "model": model,
        "prompt": prompt,
        "max_tokens": max_new_tokens,
        "temperature": 0,
        "add_special_tokens": False,
        "skip_special_tokens": False,
    }


def served_generator(
    base_url: str, model: str, concurrency: int = 8, timeout_s: float = 600, api_key: str | None = None
) -> Generate:
    """Generation by a running OpenAI-compatible server (vLLM): `/completions` on the rendered prompt,
    temperature 0, so the text is what the server's tool parser would read. `base_url` ends in /v1;
    `api_key` is the key the server was launched with (`VllmServer.api_key`)."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx
    from tqdm import tqdm

    def run(prompts: list[str], max_new_tokens: int) -> list[str]:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        with httpx.Client(timeout=timeout_s, headers=headers) as client, ThreadPoolExecutor(concurrency) as pool:
            bar = tqdm(total=len(prompts), desc=f"generate ({model})", dynamic_ncols=True, mininterval=2)

            def one(prompt: str) -> str:
                body = completion_body(model, prompt, max_new_tokens)
                try:
                    response = client.post(f"{base_url}/completions", json=body)
                except httpx.HTTPError as exc:
                    raise EvalError(f"{base_url}/completions for model {model!r}: {exc!r}") from exc
                if response.status_code != 200:
                    raise EvalError(
                        f"{base_url}/completions for model {model!r} answered "
                        f"{response.status_code}: {response.text[:300]}"
                    )
                bar.update(1)
                return str(response.json()["choices"][0]["text"])

            try:
                return list(pool.map(one, prompts))
            finally:
                bar.close()

    return run


def generate(
    model: Any,
    tokenizer: Any,
    prompts: list[str],
    *,
    max_new_tokens: int = 128,
    batch_size: int = 8,
    progress: Callable[[int], None] | None = None,
) -> list[str]:
    """Greedy completions, batched with left padding, shortest prompts first; text up to end of turn."""
    import torch
    from tqdm import tqdm

    tokenizer.padding_side = "left"
    bar = tqdm(total=len(prompts), desc="generate", dynamic_ncols=True, mininterval=5)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[str] = [""] * len(prompts)
    eos = tokenizer.eos_token_id
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        enc = tokenizer([prompts[i] for i in idx], return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            gen = model.generate(
                **enc,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=eos,
                pad_token_id=tokenizer.pad_token_id or eos,
            )
        for row, i in zip(gen[:, enc["input_ids"].shape[1] :], idx, strict=True):
            ids = row.tolist()
            ids = ids[: ids.index(eos)] if eos in ids else ids
            out[i] = tokenizer.decode(ids, skip_special_tokens=False)
        bar.update(len(idx))
        if progress:
            progress(len(idx))
    bar.close()
    return out


def evaluate(generate: Generate, tokenizer: Any, examples: list[Example], max_new_tokens: int = 128) -> dict[str, Any]:
    """Tool-call and irrelevance accuracy on examples whose last message is the expected answer."""
    prompts = [render_prompt(tokenizer, ex["messages"][:-1], ex.get("tools")) for ex in examples]
    texts = generate(prompts, max_new_tokens)
    rows = []
    for ex, text in zip(examples, texts, strict=True):
        expected = calls(ex["messages"][-1])
        rows.append({"expected": expected, "output": text, "correct": score(text, expected, tools_by_name(ex))})
    return summarize(rows)


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    call_rows = [r for r in rows if r["expected"]]
    none_rows = [r for r in rows if not r["expected"]]
    return {
        "tool_call_accuracy": sum(r["correct"] for r in call_rows) / len(call_rows) if call_rows else None,
        "irrelevance_accuracy": sum(r["correct"] for r in none_rows) / len(none_rows) if none_rows else None,
        "n_call": len(call_rows),
        "n_irrelevance": len(none_rows),
        "rows": rows,
    }
