"""`warden identity add|list|revoke`: API keys from the command line.

Owns: the operator's view of ``IdentityStore``. Reads the database URL from
``Settings`` and upgrades the schema before every command.

Must never: print a key except once, right after ``add``; print key hashes.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Annotated

import typer
from rich.console import Console
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from gateway.config import Settings
from gateway.db import create_db_engine, migrate
from gateway.identities import IdentityStore

app = typer.Typer(help="Create, list and revoke the API keys agents use to reach the gateway.", no_args_is_help=True)

NameArg = Annotated[str, typer.Argument(help="Identity name: 1-64 characters of a-z, 0-9, '_', '.', '-'.")]


@contextmanager
def _store() -> Iterator[IdentityStore]:
    engine = create_db_engine(Settings().database_url)
    try:
        migrate(engine)
        yield IdentityStore(engine)
    finally:
        engine.dispose()


def _fail(message: str) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code=1)


def _when(value: datetime | None) -> str:
    return "" if value is None else value.strftime("%Y-%m-%d %H:%M:%S UTC")


@app.command("add")
def add(name: NameArg) -> None:
    """Create an API key for NAME and print it once."""
    try:
        with _store() as store:
            public, key = store.create(name)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    body = Text.assemble(
        (key, "bold green"),
        "\n\n",
        ("Store it now; it cannot be shown again.", "yellow"),
        f"\nAgents send it as 'Authorization: Bearer <key>'. Prefix: {public.key_prefix}",
    )
    Console().print(Panel(body, title=f"API key for {public.name}", expand=False))


@app.command("list")
def list_keys(
    all_keys: Annotated[bool, typer.Option("--all", "-a", help="Include revoked keys.")] = False,
) -> None:
    """List API keys (active ones unless --all)."""
    with _store() as store:
        keys = store.list(include_revoked=all_keys)
    console = Console()
    if not keys:
        console.print("No API keys." if all_keys else "No active API keys (use --all to include revoked ones).")
        return
    table = Table("name", "prefix", "created", "revoked")
    for key in keys:
        table.add_row(key.name, key.key_prefix, _when(key.created_at), _when(key.revoked_at))
    console.print(table)


@app.command("revoke")
def revoke(name: NameArg) -> None:
    """Revoke the active API key of NAME; agents using it are refused from now on."""
    try:
        with _store() as store:
            count = store.revoke(name)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    if count == 0:
        raise _fail(f"identity {name!r} has no active key")
    Console().print(f"Revoked {count} key(s) of {name}.", highlight=False)
