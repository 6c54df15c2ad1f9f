"""`warden audit query|show|export|stats|verify|checkpoint|prune|keygen`: the audit log for auditors.

Owns: the auditor's command line over ``audit.query`` (reads), ``audit.verify`` and
``audit.prune``. Reads the database URL and the audit keys from ``Settings``. The CLI
works on the database directly: whoever can run it with the database URL can read the
log (the HTTP API is the role-checked way in).

Must never: migrate or otherwise write the database, except ``prune``; print a
traceback for bad input or a damaged database (it prints what is wrong, exit status 1
or 2); hold an export in memory.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal, TextIO

import typer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine
from sqlalchemy import text as sql_text
from sqlalchemy.exc import SQLAlchemyError

from gateway.audit.chain import stored_ts
from gateway.audit.checkpoints import Signer, audit_keys, new_signing_key
from gateway.audit.errors import AuditError
from gateway.audit.prune import prune
from gateway.audit.query import (
    CountRow,
    Dimension,
    EventFilter,
    EventPublic,
    Order,
    count_events,
    export_lines,
    get_event,
    iter_events,
    query_events,
)
from gateway.audit.verify import Expected, VerifyReport, verify
from gateway.config import Settings
from gateway.db import create_db_engine
from gateway.models import APPROVAL_STATES

app = typer.Typer(help="Query, export, count, verify and prune the audit log.", no_args_is_help=True)

TableFormat = Literal["table", "json", "jsonl", "csv"]

# The filter options: each is named after the ``EventFilter`` field it sets (see ``_filter``).
IdentityOpt = Annotated[str | None, typer.Option("--identity", help="Who called (exact).")]
ServerOpt = Annotated[str | None, typer.Option("--server", help="Upstream server (exact).")]
ToolOpt = Annotated[str | None, typer.Option("--tool", help="Upstream tool, without the server (exact).")]
EffectOpt = Annotated[str | None, typer.Option("--effect", help="allow | deny | approve.")]
OutcomeOpt = Annotated[
    str | None, typer.Option("--outcome", help="ok | tool_error | upstream_error | timeout | denied | ...")
]
PhaseOpt = Annotated[str | None, typer.Option("--phase", help="decision | outcome.")]
CallIdOpt = Annotated[str | None, typer.Option("--call-id", help="Events of one call.")]
RuleIdOpt = Annotated[str | None, typer.Option("--rule-id", help="A policy rule id behind the decision.")]
ApprovalIdOpt = Annotated[str | None, typer.Option("--approval-id", help="Events of one approval.")]
ApprovalStateOpt = Annotated[str | None, typer.Option("--approval-state", help=" | ".join(APPROVAL_STATES) + ".")]
SinceOpt = Annotated[str | None, typer.Option("--since", help="At or after this time (ISO 8601; no zone = UTC).")]
UntilOpt = Annotated[str | None, typer.Option("--until", help="Before this time (ISO 8601; no zone = UTC).")]
TextOpt = Annotated[str | None, typer.Option("--text", help="Substring of the (redacted) arguments.")]


def _console() -> Console:
    """Standard output; wide when it is not a terminal, so piped tables keep their columns."""
    console = Console(highlight=False)
    if not console.is_terminal:
        console.width = 200
    return console


def _fail(message: str, code: int = 1) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False, markup=True, soft_wrap=True)
    return typer.Exit(code=code)


def _settings() -> Settings:
    try:
        return Settings()  # fields come from env/YAML
    except ValidationError as exc:
        raise _fail(f"invalid settings: {exc}", 2) from None


def _audit_keys(settings: Settings) -> tuple[Signer | None, Ed25519PublicKey | None]:
    """The checkpoint signer and verifying key from the settings; a bad key exits 2."""
    signing_key = settings.audit_signing_key.get_secret_value() if settings.audit_signing_key else None
    try:
        return audit_keys(signing_key, settings.audit_public_key)
    except ValueError as exc:
        raise _fail(str(exc), 2) from None


@contextmanager
def _engine() -> Iterator[Engine]:
    engine = create_db_engine(_settings().database_url)
    try:
        yield engine
    except SQLAlchemyError as exc:
        raise _fail(f"cannot read the audit log: {str(exc).splitlines()[0]}") from None
    finally:
        engine.dispose()


def _filter(options: dict[str, Any]) -> EventFilter:
    """The ``EventFilter`` set by a command's options (pass ``locals()`` first thing in the command:
    its parameters). Options named after a filter field set it; a bad value exits 2 naming its option."""
    values = {name: options[name] for name in EventFilter.model_fields if options.get(name) is not None}
    try:
        return EventFilter.model_validate(values)
    except ValidationError as exc:
        problems = [f"--{'-'.join(str(p) for p in e['loc']).replace('_', '-')}: {e['msg']}" for e in exc.errors()]
        raise _fail("; ".join(problems), 2) from None


def _short(value: Any, width: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= width else text[: width - 1] + "…"


def _events_table(events: list[EventPublic]) -> Table:
    table = Table("seq", "time (UTC)", "identity", "tool", "phase", "effect", "outcome", "rules", "arguments")
    for e in events:
        tool = f"{e.server}/{e.tool}" if e.server else e.method
        rules = ",".join(e.rule_ids) if isinstance(e.rule_ids, list) else str(e.rule_ids)
        when = e.ts.strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(
            str(e.seq), when, e.identity, tool, e.phase, e.effect or "", e.outcome or "", rules, _short(e.arguments)
        )
    return table


def _write(lines: Iterator[str], out: TextIO) -> int:
    count = 0
    for line in lines:
        out.write(line)
        count += 1
    return count


@app.command("query")
def query(
    identity: IdentityOpt = None,
    server: ServerOpt = None,
    tool: ToolOpt = None,
    effect: EffectOpt = None,
    outcome: OutcomeOpt = None,
    phase: PhaseOpt = None,
    call_id: CallIdOpt = None,
    rule_id: RuleIdOpt = None,
    approval_id: ApprovalIdOpt = None,
    approval_state: ApprovalStateOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    text: TextOpt = None,
    limit: Annotated[int, typer.Option(min=1, max=1000, help="Events per page.")] = 50,
    cursor: Annotated[int | None, typer.Option(min=0, help="next cursor printed by the previous page.")] = None,
    order: Annotated[str, typer.Option(help="asc (oldest first) | desc (newest first).")] = "asc",
    fmt: Annotated[str, typer.Option("--format", "-f", help="table | json | jsonl | csv.")] = "table",
) -> None:
    """One page of matching events."""
    where = _filter(locals())
    if order not in ("asc", "desc"):
        raise _fail("--order: must be asc or desc", 2)
    if fmt not in ("table", "json", "jsonl", "csv"):
        raise _fail("--format: must be table, json, jsonl or csv", 2)
    direction: Order = "asc" if order == "asc" else "desc"
    with _engine() as engine:
        page = query_events(engine, where, cursor, limit, direction)
    if fmt == "json":
        sys.stdout.write(page.model_dump_json(indent=2) + "\n")
    elif fmt in ("jsonl", "csv"):
        _write(export_lines(page.events, "jsonl" if fmt == "jsonl" else "csv"), sys.stdout)
    else:
        console = _console()
        console.print(_events_table(page.events))
        if page.next_cursor is not None:
            console.print(f"more: --cursor {page.next_cursor}", highlight=False)


@app.command("show")
def show(
    seq: Annotated[int, typer.Argument(min=1, help="The event's seq.")],
    fmt: Annotated[str, typer.Option("--format", "-f", help="table | json.")] = "table",
) -> None:
    """One event with its approval and its trail (every event of its call or approval)."""
    with _engine() as engine:
        detail = get_event(engine, seq)
    if detail is None:
        raise _fail(f"no audit event with seq {seq}")
    if fmt == "json":
        sys.stdout.write(detail.model_dump_json(indent=2) + "\n")
        return
    console = _console()
    console.print_json(detail.event.model_dump_json())
    if detail.approval is not None:
        console.print("approval:", highlight=False)
        console.print_json(detail.approval.model_dump_json())
    console.print(_events_table(detail.trail))


@app.command("export")
def export(
    since: SinceOpt = None,
    until: UntilOpt = None,
    identity: IdentityOpt = None,
    server: ServerOpt = None,
    tool: ToolOpt = None,
    effect: EffectOpt = None,
    outcome: OutcomeOpt = None,
    rule_id: RuleIdOpt = None,
    approval_state: ApprovalStateOpt = None,
    text: TextOpt = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="jsonl | csv.")] = "jsonl",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="File to write (default: stdout).")] = None,
) -> None:
    """Every matching event, oldest first, written as it is read (constant memory)."""
    where = _filter(locals())
    if fmt not in ("jsonl", "csv"):
        raise _fail("--format: must be jsonl or csv", 2)
    with _engine() as engine:
        lines = export_lines(iter_events(engine, where), "jsonl" if fmt == "jsonl" else "csv")
        if output is None:
            count = _write(lines, sys.stdout)
        else:
            with output.open("w", encoding="utf-8", newline="") as out:
                count = _write(lines, out)
    events = count - (1 if fmt == "csv" else 0)
    Console(stderr=True).print(f"exported {events} events", highlight=False)


@app.command("stats")
def stats(
    by: Annotated[
        list[str] | None, typer.Option("--by", help="identity | server | tool | effect | outcome | phase.")
    ] = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    identity: IdentityOpt = None,
    server: ServerOpt = None,
    tool: ToolOpt = None,
    effect: EffectOpt = None,
    outcome: OutcomeOpt = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table | json | csv.")] = "table",
) -> None:
    """Events and distinct calls per identity / tool / effect ... over a range."""
    where = _filter(locals())
    dimensions = by or ["identity", "tool", "effect"]
    allowed = ("identity", "server", "tool", "effect", "outcome", "phase")
    unknown = [d for d in dimensions if d not in allowed]
    if unknown:
        raise _fail(f"--by: unknown dimension {unknown[0]!r}; use one of {', '.join(allowed)}", 2)
    group_by: list[Dimension] = [d for d in allowed if d in dimensions]  # type: ignore[misc]
    with _engine() as engine:
        rows = count_events(engine, where, group_by)
    _print_counts(rows, group_by, fmt)


def _print_counts(rows: list[CountRow], group_by: list[Dimension], fmt: str) -> None:
    if fmt == "json":
        sys.stdout.write(json.dumps([row.model_dump() for row in rows], indent=2) + "\n")
    elif fmt == "csv":
        sys.stdout.write(",".join([*group_by, "events", "calls"]) + "\n")
        for row in rows:
            sys.stdout.write(",".join([*(str(row.group[d] or "") for d in group_by), str(row.events), str(row.calls)]))
            sys.stdout.write("\n")
    else:
        table = Table(*group_by, "events", "calls")
        for row in rows:
            table.add_row(*(str(row.group[d] or "") for d in group_by), str(row.events), str(row.calls))
        _console().print(table)


def _expected(anchor: Path | None, seq: int | None, hash_: str | None) -> Expected | None:
    """The auditor's anchor from ``--anchor FILE`` or ``--expect-seq/--expect-hash``; bad input exits 2."""
    if anchor is not None:
        if seq is not None or hash_ is not None:
            raise _fail("--anchor and --expect-seq/--expect-hash exclude each other", 2)
        try:
            fields = json.loads(anchor.read_text(encoding="utf-8"))
            return Expected(int(fields["seq"]), str(fields["hash"]), fields)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise _fail(f"--anchor: not an anchor file written by `warden audit checkpoint`: {exc}", 2) from None
    if (seq is None) != (hash_ is None):
        raise _fail("--expect-seq and --expect-hash go together", 2)
    return None if seq is None or hash_ is None else Expected(seq, hash_)


@app.command("verify")
def verify_command(
    fmt: Annotated[str, typer.Option("--format", "-f", help="text | json.")] = "text",
    anchor: Annotated[
        Path | None, typer.Option("--anchor", help="An anchor file kept from `warden audit checkpoint --out`.")
    ] = None,
    expect_seq: Annotated[int | None, typer.Option("--expect-seq", min=0, help="seq of a kept anchor.")] = None,
    expect_hash: Annotated[str | None, typer.Option("--expect-hash", help="hash of the event at --expect-seq.")] = None,
) -> None:
    """Check the hash chain, the signed checkpoints and the prune anchor; name the first bad event.

    With an anchor kept outside the database (--anchor, or --expect-seq with --expect-hash) it
    also proves the log was not truncated back past it. Exit status 0 when the log verifies,
    1 when it is damaged (or unreadable).
    """
    settings = _settings()
    _signer, public = _audit_keys(settings)
    expected = _expected(anchor, expect_seq, expect_hash)
    engine = create_db_engine(settings.database_url)
    try:
        report = verify(engine, public, expect=expected)
    finally:
        engine.dispose()
    if fmt == "json":
        sys.stdout.write(json.dumps(_report_json(report), indent=2) + "\n")
    else:
        _print_report(report)
    if not report.ok:
        raise typer.Exit(1)


def _report_json(report: VerifyReport) -> dict[str, Any]:
    return {
        "ok": report.ok,
        "first_bad_event": report.first_bad,
        "events": report.events,
        "first_seq": report.first_seq,
        "last_seq": report.last_seq,
        "checkpoints_matched": report.checkpoints,
        "signatures_checked": report.signatures_checked,
        "anchor_seq": report.anchor_seq,
        "damage": [{"seq": d.seq, "kind": d.kind, "message": d.message} for d in report.damage],
        "more_damage": report.more_damage,
        "notes": report.notes,
    }


def _print_report(report: VerifyReport) -> None:
    console = _console()
    span = f" (seq {report.first_seq}..{report.last_seq})" if report.events else ""
    anchor = f", starting after the prune anchor at seq {report.anchor_seq}" if report.anchor_seq is not None else ""
    signed = "signatures checked" if report.signatures_checked else "signatures NOT checked"
    console.print(
        f"audit log: {report.events} events{span}{anchor}; {report.checkpoints} checkpoints matched, {signed}"
    )
    if report.ok:
        console.print("[bold green]OK[/]: the chain and every checkpoint verify")
    else:
        console.print(f"[bold red]DAMAGED[/]: first bad event: {report.first_bad}")
        for damage in report.damage:
            console.print(f"  {damage}")
        if report.more_damage:
            console.print(f"  ... and {report.more_damage} more")
    for note in report.notes:
        console.print(f"note: {note}")


@app.command("checkpoint")
def checkpoint_command(
    out: Annotated[Path, typer.Option("--out", "-o", help="File to write the anchor to (keep it off this host).")],
) -> None:
    """Export the newest signed checkpoint as an anchor file, for `verify --anchor` later.

    Kept outside the database, it lets a later verify detect a log truncated back past it.
    """
    with _engine() as engine, engine.connect() as conn:
        row = (
            conn.execute(
                sql_text(
                    "SELECT kind, seq, hash, prev_seq, ts, key_id, signature FROM audit_checkpoints "
                    "WHERE kind = 'checkpoint' ORDER BY seq DESC LIMIT 1"
                )
            )
            .mappings()
            .first()
        )
    if row is None:
        raise _fail("no signed checkpoint in the audit log (the gateway signs them when audit_signing_key is set)")
    fields = {**row, "ts": stored_ts(row["ts"]).isoformat()}
    out.write_text(json.dumps(fields, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    _console().print(f"anchor: seq {fields['seq']} hash {fields['hash']} written to {out}", highlight=False)


@app.command("prune")
def prune_command(
    before: Annotated[str, typer.Option("--before", help="Delete events older than this time (ISO 8601; UTC).")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete old events, keeping the rest verifiable (a signed anchor records where it now starts).

    Refuses when the part to delete does not verify, and without audit_signing_key.
    """
    cutoff = _filter({"since": before}).since
    assert cutoff is not None
    signer, _public = _audit_keys(_settings())
    if signer is None:
        raise _fail("prune needs audit_signing_key: an unsigned anchor cannot prove the deletion was a prune", 2)
    if not yes:
        typer.confirm(f"Delete every audit event before {cutoff.isoformat()}?", abort=True)
    with _engine() as engine:
        try:
            result = prune(engine, cutoff, signer)
        except AuditError as exc:
            raise _fail(str(exc)) from None
    if result.anchor_seq is None:
        _console().print(f"nothing to prune before {cutoff.isoformat()}", highlight=False)
    else:
        _console().print(
            f"pruned {result.deleted} events; the log now starts after the signed anchor at seq {result.anchor_seq}",
            highlight=False,
        )


@app.command("keygen")
def keygen() -> None:
    """Print a new Ed25519 signing key for checkpoints (keep it secret) and its public key."""
    seed, public = new_signing_key()
    sys.stdout.write(f"WARDEN_AUDIT_SIGNING_KEY={seed}\nWARDEN_AUDIT_PUBLIC_KEY={public}\n")
    Console(stderr=True).print(
        "Set the signing key on the gateway only (it signs checkpoints); auditors verify with the public key.",
        highlight=False,
    )
