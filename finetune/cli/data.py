"""`warden finetune data …`: build training data (synthetic, natural, mined, user JSONL), have a
teacher write more, validate a file."""

from __future__ import annotations

import itertools
import json
import shlex
from pathlib import Path
from typing import Any

import typer

from finetune.cli.fail import fail

app = typer.Typer(help="Build and validate training data (OpenAI chat JSONL).", no_args_is_help=True)


@app.command("build")
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
        "call, which, parallel, none, cannot, chat, result, denied, pending, unknown, foreign (off by default: one "
        "to three tools of an unrelated domain, no call); weights, need not sum to 1)",
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
                fail("mining the audit log needs the tools' schemas: give --gateway, --tools or --stdio")
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
        fail(str(e))
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


@app.command("teach")
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
        fail(f"--mode must be strict or free, not {mode!r}")
    if (teacher is None) == (not teacher_url):
        fail("give exactly one of --teacher DIR or --teacher-url URL (with --teacher-name)")
    cats = natural.catalogs().by_server
    if tools:
        cats = {s: [to for t in ts for to in [catalog.to_openai(t, str(p))]] for p in tools
                for s, ts in json.loads(p.read_text()).items()}  # fmt: skip
    cats = {s: ts for s, ts in cats.items() if not server or s in server}
    if not cats:
        fail(f"no catalog left for --server {server}")
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
            fail(str(exc))
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


@app.command("validate")
def data_validate(path: Path) -> None:
    """Validate a JSONL file line by line; the first bad line is named."""
    from finetune.data import DataError, read_jsonl, summary

    try:
        typer.echo(json.dumps(summary(read_jsonl(path))))
    except DataError as e:
        fail(str(e))
