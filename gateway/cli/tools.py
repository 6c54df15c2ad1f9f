"""`warden tools pending|accept|reject`: review upstream tool definitions held back from agents.

Owns: the operator's view of tool pinning (``gateway/pins.py``). Like ``warden approvals`` it
works on the database named by ``Settings`` directly; a running gateway picks a decision
up within ``tool_pins_poll_s``. ``--as NAME`` states who decides; NAME must hold the
``admin`` role in the policy at ``policy_dir``. Each decision is audited through a briefly
started ``AuditWriter``.

Must never: write audit rows any other way.
"""

from __future__ import annotations

import json
from typing import Annotated

import anyio
import typer
from rich.console import Console
from rich.table import Table

from gateway.audit.errors import AuditError
from gateway.audit.writer import AuditWriter
from gateway.config import Settings
from gateway.db import create_db_engine, migrate
from gateway.models import ToolPinPublic
from gateway.pins import PinNotFound, PinStore, PinVerdict, ToolPins

ADMIN_ROLE = "admin"

app = typer.Typer(help="Review tool definitions held back from agents (new tools, changed ones).", no_args_is_help=True)

IdArg = Annotated[int, typer.Argument(help="Id of the pending definition (from `warden tools pending`).")]
AsOpt = Annotated[str, typer.Option("--as", help="Identity deciding; must hold the admin role.")]


def _fail(message: str) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code=1)


@app.command()
def pending(
    as_json: Annotated[bool, typer.Option("--json", help="Print the full definitions as JSON.")] = False,
) -> None:
    """List tool definitions waiting for review."""
    settings = Settings()
    engine = create_db_engine(settings.database_url)
    try:
        migrate(engine)
        found = PinStore(engine).pending()
    finally:
        engine.dispose()
    console = Console()
    if as_json:
        console.print_json(json.dumps([pin.model_dump(mode="json") for pin in found]))
    elif not found:
        console.print("No tool definitions wait for review.")
    else:
        console.print(_table(found))


def _table(pins: list[ToolPinPublic]) -> Table:
    table = Table("id", "server", "tool", "kind", "hash", "description", "first seen (UTC)", title="pending tools")
    for pin in pins:
        description = str(pin.definition.get("description") or "")
        first_seen = pin.first_seen_at.strftime("%Y-%m-%d %H:%M:%S")
        table.add_row(str(pin.id), pin.server, pin.tool, pin.kind, pin.hash[:12], description, first_seen)
    return table


@app.command()
def accept(pin_id: IdArg, as_: AsOpt) -> None:
    """Accept a definition: agents granted the tool see and call it from now on."""
    _decide(pin_id, "accept", as_)


@app.command()
def reject(pin_id: IdArg, as_: AsOpt) -> None:
    """Reject a definition: the tool stays hidden from agents while the upstream lists it."""
    _decide(pin_id, "reject", as_)


def _decide(pin_id: int, verdict: PinVerdict, decider: str) -> None:
    from gateway.policy import PolicyError, load_policy

    settings = Settings()
    engine = create_db_engine(settings.database_url)
    try:
        migrate(engine)
        try:
            roles = load_policy(settings.policy_dir).roles_of(decider)
        except PolicyError as exc:
            raise _fail(f"cannot load the policy to check roles: {exc}") from None
        if ADMIN_ROLE not in roles:
            raise _fail(f"identity {decider!r} does not hold the {ADMIN_ROLE!r} role in the policy files")

        async def run() -> ToolPinPublic:
            audit = AuditWriter(engine)
            await audit.start()
            try:
                pins = ToolPins(engine, audit, trust_first_sight=True, poll_s=settings.tool_pins_poll_s)
                return await pins.decide(pin_id, verdict, decider)
            finally:
                await audit.stop()

        try:
            decided = anyio.run(run)
        except (PinNotFound, AuditError) as exc:
            raise _fail(str(exc)) from None
    finally:
        engine.dispose()
    Console().print(f"{decided.server}/{decided.tool} {decided.state} by {decided.decided_by}", highlight=False)
