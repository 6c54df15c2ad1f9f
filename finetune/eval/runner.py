"""One eval run of a base model (or base + adapter) over the suites, through vLLM or transformers.

Owns: choosing the engine and vLLM's dtype (finetune.precision.vllm_dtype: bf16 where the CPU has it
natively, float32 where it does not), launching vLLM on loopback for the run, running the suites in
order (`natural`, `multiturn`, `bfcl`), timing each, and the results as JSON and a markdown table
with n, accuracy and the 95% interval of every figure. Prompts are sent grouped by catalog, so
vLLM's prefix cache reuses each catalog's prefill.
Never: scores (the suites do) or writes anything but the files it is given.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from finetune.eval import bfcl as bfcl_v4
from finetune.eval import multiturn, natural
from finetune.eval.interval import Proportion
from finetune.evaluate import Generate

SUITES = ("natural", "multiturn", "bfcl")


@dataclass
class RunOptions:
    suites: tuple[str, ...] = SUITES
    bfcl_categories: tuple[str, ...] = bfcl_v4.CATEGORIES
    bfcl_limit: int = 0
    """Entries per BFCL category, a fixed-seed sample (0: all)."""
    seed: int = 0
    max_new_tokens: int = 160
    meta: dict[str, Any] = field(default_factory=dict)


def run_suites(
    generate: Generate,
    tokenizer: Any,
    opts: RunOptions,
    log: Callable[[str], None] = print,
    save: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Every suite of `opts` in order; `save` gets the results so far after each (an interrupted run keeps them)."""
    out: dict[str, Any] = {"meta": dict(opts.meta), "seconds": {}}
    for suite in opts.suites:
        started = time.monotonic()
        if suite == "natural":
            out["natural"] = natural.run(generate, tokenizer, max_new_tokens=opts.max_new_tokens)
        elif suite == "multiturn":
            out["multiturn"] = multiturn.run(generate, tokenizer, max_new_tokens=opts.max_new_tokens)
        elif suite == "bfcl":
            out["bfcl"] = bfcl_v4.run(
                generate,
                tokenizer,
                categories=opts.bfcl_categories,
                limit=opts.bfcl_limit,
                seed=opts.seed,
                max_new_tokens=opts.max_new_tokens,
            )
        else:
            raise ValueError(f"unknown suite {suite!r}; known: {', '.join(SUITES)}")
        out["seconds"][suite] = round(time.monotonic() - started, 1)
        log(f"{suite}: {out['seconds'][suite]} s")
        if save is not None:
            save(out)
    return out


def save(path: Path, results: dict[str, Any]) -> None:
    """Write `results` as JSON atomically (a temp file, then rename)."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    tmp.replace(path)


@contextmanager
def in_process(
    base: Path, adapter: Path | None, batch_size: int = 4
) -> Iterator[tuple[dict[str, Generate], dict[str, Any]]]:
    """One `Generate` by transformers in this process (no vLLM; ~10x slower on CPU), keyed by its side."""
    from finetune.evaluate import hf_generator, load_model

    tokenizer, model = load_model(base, adapter)
    side = "adapter" if adapter is not None else "base"
    yield {side: hf_generator(model, tokenizer, batch_size)}, {"engine": "transformers", "dtype": str(model.dtype)}


def _cell(d: dict[str, Any]) -> str:
    return str(Proportion(int(d["k"]), int(d["n"])))


def figures(results: dict[str, Any]) -> list[tuple[str, str]]:
    """(metric, 'accuracy (k/n; 95% CI lo-hi)') for every figure in `results`."""
    rows: list[tuple[str, str]] = []
    if "natural" in results:
        rows += [("natural: one call right", _cell(results["natural"]["calls"]))]
        rows += [("natural: no call right", _cell(results["natural"]["no_call"]))]
        for key, label in (("calls_json_read", "one call right"), ("no_call_json_read", "no call right")):
            if key in results["natural"]:  # diagnostic: JSON outside <tool_call> tags read as calls
                label = f"natural, JSON read as calls (not the server's parser): {label}"
                rows.append((label, _cell(results["natural"][key])))
    if "multiturn" in results:
        mt = results["multiturn"]
        rows += [(f"multi-turn: {k}", _cell(mt[k])) for k in ("all", "result", "denied", "pending")]
        rows += [(f"multi-turn property: {k}", _cell(v)) for k, v in mt["properties"].items()]
    for cat, res in results.get("bfcl", {}).items():
        rows.append((f"BFCL {cat}", _cell(res)))
    return rows


def markdown(results: dict[str, Any]) -> str:
    lines = ["| metric | accuracy (k/n; 95% Wilson CI) |", "|---|---|"]
    lines += [f"| {m} | {v} |" for m, v in figures(results)]
    return "\n".join(lines) + "\n"


def markdown_sides(sides: dict[str, dict[str, Any]]) -> str:
    """One table, a column per side (e.g. adapter, base), rows in the first side's order."""
    names = list(sides)
    cells = {name: dict(figures(res)) for name, res in sides.items()}
    lines = ["| metric | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for metric, _ in figures(sides[names[0]]) if names else []:
        lines.append(f"| {metric} | " + " | ".join(cells[n].get(metric, "-") for n in names) + " |")
    return "\n".join(lines) + "\n"


@contextmanager
def served(
    base: Path,
    adapter: Path | None,
    *,
    dtype: str,
    concurrency: int,
    log_path: Path,
    max_model_len: int = 8192,
    eager: bool = True,
    progress: Callable[[str], None] = print,
    base_too: bool = False,
) -> Iterator[tuple[dict[str, Generate], dict[str, Any]]]:
    """`Generate`s backed by one vLLM serving `base` (+ `adapter` as model 'adapter'), and what was chosen:
    {"adapter": ..., "base": ...} with `base_too` (the same server, the base without the LoRA), else one."""
    from finetune.evaluate import served_generator
    from finetune.precision import vllm_dtype
    from gateway.config import Settings
    from serving.errors import ServeError
    from serving.install import find_python, probe
    from serving.ports import free_port
    from serving.process import build_spec, launch

    try:
        install = probe(find_python(Settings().vllm_python))
    except ServeError as exc:
        raise RuntimeError(f"no vLLM environment: {exc}") from exc
    chosen = vllm_dtype(dtype, install.device)
    adapters = [("adapter", adapter)] if adapter is not None else []
    lora = bool(adapters)
    port = free_port()
    spec = build_spec(install, base, adapters, port, dtype=chosen.value, enable_lora=lora, max_model_len=max_model_len)
    spec = dataclasses.replace(spec, enforce_eager=eager)
    progress(f"starting vLLM for {base.name}, dtype {chosen.value} ({chosen.reason}); log {log_path}")
    with launch(spec, log_path, timeout_s=600, progress=lambda s: progress(f"  vLLM starting ({s:.0f} s)")) as server:
        models = {"adapter": "adapter"} if adapter is not None else {}
        if adapter is None or base_too:
            models["base"] = spec.served_name
        url = f"{server.url}/v1"
        gens = {
            side: served_generator(url, m, concurrency=concurrency, api_key=server.api_key)
            for side, m in models.items()
        }
        how = {"engine": "vllm", "dtype": chosen.value, "dtype_reason": chosen.reason, "concurrency": concurrency}
        yield gens, {**how, "enforce_eager": eager}
