"""`warden gateway serve`: run the MCP gateway with uvicorn, in one process or `--workers N`.

With several workers uvicorn starts N processes on one socket, each importing
`gateway.app:app_from_environment` and running its own lifespan (engine, upstream pool,
audit writer, approval listener). The options given here reach them as ``WARDEN_*``
environment variables. More than one worker needs PostgreSQL: rate-limit budgets and
approval wake-ups are shared there (gateway.shared); on SQLite they would be per process.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(help="Run the MCP gateway.", no_args_is_help=True)


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Listen address (default from settings: 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Listen port (default from settings: 8700).")] = None,
    policy_dir: Annotated[Path | None, typer.Option(help="Directory of policy YAML files.")] = None,
    upstreams: Annotated[Path | None, typer.Option(help="YAML file declaring the upstream MCP servers.")] = None,
    database_url: Annotated[str | None, typer.Option(help="SQLAlchemy database URL of the audit log.")] = None,
    workers: Annotated[
        int | None, typer.Option(min=1, help="Worker processes (default from settings: 1; >1 needs PostgreSQL).")
    ] = None,
) -> None:
    """Serve MCP at http://HOST:PORT/mcp, plus /healthz, /readyz and /metrics.

    Agents authenticate with `Authorization: Bearer <key>` (create keys with
    `warden identity add NAME`). Every tools/call is checked against the policies
    and recorded in the audit log before it is forwarded upstream.
    """
    import uvicorn

    from gateway.app import create_app
    from gateway.config import Settings
    from gateway.db import migrate
    from gateway.http_server import ServerOptionError, server_options
    from gateway.policy import PolicyError, load_policy
    from gateway.upstream.spec import UpstreamFileError, load_upstreams

    overrides: dict[str, Any] = {
        key: value
        for key, value in {
            "host": host,
            "port": port,
            "policy_dir": policy_dir,
            "upstreams_file": upstreams,
            "database_url": database_url,
            "workers": workers,
        }.items()
        if value is not None
    }
    settings = Settings(**overrides)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # a line per upstream request; the audit log has them
    try:  # fail fast with a clear message instead of a failed lifespan
        load_policy(settings.policy_dir)
        load_upstreams(settings.upstreams_file)
        serving = server_options(settings).uvicorn_kwargs()
    except (PolicyError, UpstreamFileError, ServerOptionError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    log_level = settings.log_level.lower()
    if settings.workers == 1:
        uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=log_level, **serving)
        return
    if not settings.database_url.startswith("postgresql"):
        typer.echo("error: --workers above 1 needs a PostgreSQL database_url (shared budgets and approvals)", err=True)
        raise typer.Exit(1)
    migrate(settings.database_url)  # once, before the workers start (each would wait on the migration lock)
    os.environ.update({f"WARDEN_{key.upper()}": str(value) for key, value in overrides.items()})
    uvicorn.run(
        "gateway.app:app_from_environment",
        factory=True,
        workers=settings.workers,
        host=settings.host,
        port=settings.port,
        log_level=log_level,
        **serving,
    )
