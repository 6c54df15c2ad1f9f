"""`warden approvals list|show|approve|deny|watch`: decide held calls from the command line.

Owns: the operator's view of the approval store. It works on the database named by
``Settings`` directly (the database is the authority; a running gateway notices a
decision at its next poll, within ``approval_poll_s``), so it is for the operator's
machine: ``--as NAME`` states who decides, and the same checks as the REST API apply
(NAME must hold one of the approval's approver roles in the policy at ``policy_dir``,
and may not decide its own call). Each decision is audited through a briefly started
``AuditWriter``.

Must never: write audit rows any other way; print unredacted arguments (approvals
store only redacted ones).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated

import anyio
import typer
from rich.console import Console
from rich.live import Live
from rich.table import Table
from sqlalchemy import Engine

from gateway.approvals.desk import settle
from gateway.approvals.store import (
    ApprovalConflict,
    ApprovalForbidden,
    ApprovalNotFound,
    ApprovalStore,
    ApprovalStoreError,
    Verdict,
)
from gateway.audit.errors import AuditError
from gateway.audit.writer import AuditWriter
from gateway.config import Settings
from gateway.db import create_db_engine, migrate
from gateway.models import APPROVAL_STATES, Approval
from gateway.types import KIND_LABELS

app = typer.Typer(
    help="List, inspect, approve and deny requests (tool calls, resource reads, prompt gets) held for a person.",
    no_args_is_help=True,
)

IdArg = Annotated[str, typer.Argument(help="Approval id (apr_...).")]
AsOpt = Annotated[str, typer.Option("--as", help="Identity deciding; must hold one of the approval's approver roles.")]
ReasonOpt = Annotated[str, typer.Option("--reason", "-r", help="Why; kept on the approval and in the audit log.")]
STATES = (*APPROVAL_STATES, "all")


@contextmanager
def _database() -> Iterator[tuple[Settings, Engine]]:
    settings = Settings()
    engine = create_db_engine(settings.database_url)
    try:
        migrate(engine)
        yield settings, engine
    finally:
        engine.dispose()


@contextmanager
def _store() -> Iterator[ApprovalStore]:
    with _database() as (_, engine):
        yield ApprovalStore(engine)


def _fail(message: str) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code=1)


def _when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


def _table(approvals: list[Approval], title: str) -> Table:
    columns = ("id", "state", "identity", "request", "name", "arguments", "rule", "approvers", "expires (UTC)")
    table = Table(*columns, title=title)
    for a in approvals:
        rules = ", ".join(json.loads(a.rule_ids))
        roles = ", ".join(json.loads(a.approver_roles))
        what = KIND_LABELS.get(a.kind, a.kind)
        table.add_row(a.id, a.state, a.identity, what, a.tool_name, a.arguments, rules, roles, _when(a.expires_at))
    return table


@app.command("list")
def list_approvals(
    state: Annotated[str, typer.Option(help=f"One of {', '.join(STATES)}.")] = "pending",
    limit: Annotated[int, typer.Option(min=1, help="Most approvals to show.")] = 100,
) -> None:
    """List approvals (pending and unexpired ones unless --state)."""
    if state not in STATES:
        raise _fail(f"unknown state {state!r}; use one of {', '.join(STATES)}")
    with _store() as store:
        found = store.list_pending() if state == "pending" else store.list(None if state == "all" else [state], limit)
    console = Console()
    if not found:
        console.print(f"No {'' if state == 'all' else state + ' '}approvals.")
        return
    console.print(_table(found[:limit], f"{state} approvals"))


@app.command()
def show(approval_id: IdArg) -> None:
    """Show everything about one approval as JSON (arguments are stored redacted)."""
    with _store() as store:
        approval = store.get(approval_id)
    if approval is None:
        raise _fail(f"no approval {approval_id!r}")
    Console().print_json(approval.public().model_dump_json())


@app.command()
def approve(approval_id: IdArg, as_: AsOpt, reason: ReasonOpt) -> None:
    """Approve a pending call as --as NAME; the held (or retried) call then runs once."""
    _decide(approval_id, "approve", as_, reason)


@app.command()
def deny(approval_id: IdArg, as_: AsOpt, reason: ReasonOpt) -> None:
    """Deny a pending call as --as NAME; the agent gets a tool error with the reason."""
    _decide(approval_id, "deny", as_, reason)


def _decide(approval_id: str, verdict: Verdict, decider: str, reason: str) -> None:
    from gateway.policy import PolicyError, load_policy

    if not reason.strip():
        raise _fail("--reason must not be empty")
    with _database() as (settings, engine):
        try:
            roles = load_policy(settings.policy_dir).roles_of(decider)
        except PolicyError as exc:
            raise _fail(f"cannot load the policy to check roles: {exc}") from None
        store = ApprovalStore(engine)

        async def run() -> Approval:
            audit = AuditWriter(engine)
            await audit.start()
            try:
                return await settle(
                    store, audit, approval_id, decider=decider, roles=roles, verdict=verdict, reason=reason.strip()
                )
            finally:
                await audit.stop()

        try:
            decided = anyio.run(run)
        except (ApprovalNotFound, ApprovalForbidden, ApprovalConflict, ApprovalStoreError, AuditError) as exc:
            raise _fail(str(exc)) from None
    Console().print(f"{decided.id} {decided.state} by {decided.decided_by}: {decided.decided_reason}", highlight=False)


@app.command()
def watch(
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between refreshes.")] = 2.0,
) -> None:
    """A live view of pending approvals (Ctrl-C to stop)."""
    console = Console()
    with _store() as store:
        try:
            if console.is_terminal:
                with Live(_table(store.list_pending(), "pending approvals"), console=console) as live:
                    while True:
                        time.sleep(interval)
                        live.update(_table(store.list_pending(), "pending approvals"))
            shown: list[str] | None = None
            while True:  # not a terminal: print the table whenever the pending set changes
                pending = store.list_pending()
                ids = [a.id for a in pending]
                if ids != shown:
                    console.print(_table(pending, "pending approvals") if pending else "No pending approvals.")
                    shown = ids
                time.sleep(interval)
        except KeyboardInterrupt:
            return
