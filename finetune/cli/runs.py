"""`warden finetune …`: round-trip check, train, evaluate and export adapters; `data` is
finetune.cli.data's group."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from finetune.base_model import DEFAULT_CACHE
from finetune.cli.data import app as data_app
from finetune.cli.fail import fail

if TYPE_CHECKING:
    from gateway.adapters.report import Side
    from serving.install import VllmInstall

app = typer.Typer(help="Build data, train, evaluate and export LoRA adapters.", no_args_is_help=True)
app.add_typer(data_app, name="data")


@app.command("roundtrip")
def roundtrip_cmd(data: Path, base: Path = typer.Option(DEFAULT_CACHE, help="model directory")) -> None:
    """Render every example with the model's template and parse it back with the hermes parser."""
    from transformers import AutoTokenizer

    from finetune import roundtrip
    from finetune.base_model import BaseModelError, check_base
    from finetune.data import read_jsonl

    try:
        check_base(base.expanduser())
        n = roundtrip.check(AutoTokenizer.from_pretrained(base.expanduser()), read_jsonl(data))
    except (roundtrip.RoundTripError, BaseModelError, ValueError) as e:
        fail(str(e))
    typer.echo(f"{n} examples round-trip")


@app.command("train")
def train_cmd(
    config: Path = typer.Option(Path("finetune/configs/smollm2-135m.yaml"), help="YAML config (see --help-config)"),
    resume: bool = typer.Option(False, help="continue from run_dir/checkpoint"),
    run_dir: str | None = typer.Option(None, help="override run_dir"),
    max_steps: int | None = typer.Option(None, help="override max_steps"),
    help_config: bool = typer.Option(False, "--help-config", help="print every config field with its help"),
) -> None:
    """LoRA-train on the config's data; writes adapter, metrics, loss curve into run_dir.

    `max_minutes` counts from here: loading torch and the model, training, the final eval loss and saving."""
    started = time.monotonic()
    from finetune.config import help_lines, load

    if help_config:
        typer.echo("\n".join(help_lines()))
        return
    from finetune.precision import PrecisionError
    from finetune.train import TrainingError, train

    cfg = load(config, {"run_dir": run_dir, "max_steps": max_steps})
    try:
        metrics = train(cfg, resume=resume, started=started)
    except (PrecisionError, TrainingError) as exc:
        fail(str(exc))
    typer.echo(json.dumps(metrics))


@app.command("eval")
def eval_cmd(  # noqa: PLR0915  (one flat recipe: options, engine choice, both sides; split when it grows)
    run_dir: Path = typer.Option(..., help="training run directory (adapter/ and config.json)"),
    data: Path | None = typer.Option(None, help="eval JSONL (default: the run's eval_file)"),
    limit: int = typer.Option(200, help="held-out examples to evaluate, a fixed-seed sample (0: all)"),
    bfcl: bool = typer.Option(True, help="also run BFCL v4 (simple_python, multiple, parallel, irrelevance)"),
    bfcl_limit: int = typer.Option(50, help="entries per BFCL category, drawn with a fixed seed (0: all)"),
    base_too: bool = typer.Option(True, help="evaluate the base model too, side by side"),
    engine: str = typer.Option(
        "auto",
        help="who generates: vllm (the serving path: vLLM from .venv-vllm serves base + adapter on loopback), "
        "transformers (in this process, ~10x slower on CPU), auto (vllm when installed)",
    ),
    batch_size: int = typer.Option(4, help="transformers generation batch size (CPU: small batches pad less)"),
    max_new_tokens: int = typer.Option(96, help="generation limit per answer (a call not started by then is none)"),
    bfcl_categories: str = typer.Option(
        ",".join(("simple_python", "multiple", "parallel", "irrelevance")), help="comma-separated BFCL v4 categories"
    ),
    dtype: str = typer.Option(
        "auto",
        envvar="WARDEN_VLLM_DTYPE",
        help="vLLM --dtype (engine vllm): auto = bfloat16 where bf16 is native, float32 on CPUs without it",
    ),
) -> None:
    """Tool-call (AST) and irrelevance accuracy, base vs adapter; writes eval.json/.md/.png into run_dir.

    Prompts are rendered with the model's chat template and answers parsed with the hermes parser the
    server uses, whichever engine generates."""
    from finetune import bfcl as bfcl_mod
    from finetune import evaluate, report
    from finetune.data import read_jsonl
    from finetune.precision import PrecisionError

    if engine not in ("auto", "vllm", "transformers"):
        fail(f"--engine must be auto, vllm or transformers, not {engine!r}")
    if not (run_dir / "config.json").is_file() or not (run_dir / "adapter").is_dir():
        fail(f"{run_dir} is not a finished training run (config.json and adapter/ expected)")
    cfg = json.loads((run_dir / "config.json").read_text())
    base = Path(cfg["base"]).expanduser()
    examples = read_jsonl(data or Path(cfg["eval_file"]))
    if 0 < limit < len(examples):  # a fixed-seed sample across all eval tools, not the first few
        examples = [examples[i] for i in sorted(random.Random(0).sample(range(len(examples)), limit))]
    cats = tuple(c for c in bfcl_categories.split(",") if c) if bfcl else ()
    sides: list[Side] = ["adapter", "base"] if base_too else ["adapter"]
    results = report.EvalReport(n_heldout=len(examples))

    def run_side(side: Side, generate: evaluate.Generate, tokenizer: object) -> None:
        results.heldout[side] = report.heldout(evaluate.evaluate(generate, tokenizer, examples, max_new_tokens))
        if cats:
            results.bfcl[side] = report.bfcl(
                bfcl_mod.run(
                    generate, tokenizer, categories=cats, limit=bfcl_limit, seed=0, max_new_tokens=max_new_tokens
                )
            )
        typer.echo(f"{side}:\n{report.markdown(results)}")
        report.write_eval(run_dir / "eval.json", results)  # partial results survive an interrupted run

    install = _vllm_install() if engine != "transformers" else None
    if engine == "vllm" and install is None:
        fail("--engine vllm: no vLLM environment found (make setup creates .venv-vllm; or set WARDEN_VLLM_PYTHON)")
    try:
        if install is not None:
            from transformers import AutoTokenizer

            from finetune.precision import vllm_dtype
            from serving.ports import free_port
            from serving.process import build_spec, launch

            results.generated_by = "vllm"
            tokenizer = AutoTokenizer.from_pretrained(base)
            chosen = vllm_dtype(dtype, install.device)
            results.vllm_dtype = {"dtype": chosen.value, "reason": chosen.reason}
            spec = build_spec(install, base, [("adapter", run_dir / "adapter")], free_port(), dtype=chosen.value)
            log = run_dir / "eval-vllm.log"
            typer.echo(
                f"starting vLLM for {base.name} + adapter, dtype {chosen.value} ({chosen.reason}; log: {log}) ..."
            )

            def waiting(seconds: float) -> None:
                typer.echo(f"  still starting vLLM ({seconds:.0f} s; log: {log})")

            with launch(spec, log, timeout_s=600, progress=waiting) as server:
                for side in sides:
                    model = "adapter" if side == "adapter" else spec.served_name
                    generate = evaluate.served_generator(f"{server.url}/v1", model, api_key=server.api_key)
                    run_side(side, generate, tokenizer)
        else:
            results.generated_by = "transformers"
            for side in sides:
                tokenizer, model = evaluate.load_model(base, run_dir / "adapter" if side == "adapter" else None)
                run_side(side, evaluate.hf_generator(model, tokenizer, batch_size), tokenizer)
    except (evaluate.EvalError, RuntimeError, PrecisionError) as exc:
        fail(f"evaluation failed: {exc}")
    report.write_eval(run_dir / "eval.json", results)
    (run_dir / "eval.md").write_text(report.markdown(results))
    report.bar_chart(results, run_dir / "eval.png")
    typer.echo(report.markdown(results))


def _vllm_install() -> VllmInstall | None:
    """The vLLM installation when there is one, else None."""
    from gateway.config import Settings
    from serving.errors import ServeError
    from serving.install import find_python, probe

    try:
        return probe(find_python(Settings().vllm_python))
    except ServeError:
        return None


@app.command("export")
def export_cmd(
    run_dir: Path = typer.Option(..., help="training run directory"),
    out: Path = typer.Option(..., help="directory to write"),
    merge: bool = typer.Option(False, help="write base + adapter merged (single-adapter deployments)"),
) -> None:
    """Adapter dir (safetensors, adapter_config.json, model card) or, with --merge, a merged model."""
    from finetune import export

    if merge:
        cfg = json.loads((run_dir / "config.json").read_text())
        typer.echo(export.export_merged(Path(cfg["base"]).expanduser(), run_dir / "adapter", out))
    else:
        typer.echo(export.export_adapter(run_dir, out))
