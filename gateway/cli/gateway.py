"""`warden gateway serve`: run the MCP gateway with uvicorn."""

from __future__ import annotations

import logging
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
) -> None:
    """Serve MCP at http://HOST:PORT/mcp, plus /healthz, /readyz and /metrics.

    Agents authenticate with `Authorization: Bearer <key>` (create keys with
    `warden identity add NAME`). Every tools/call is checked against the policies
    and recorded in the audit log before it is forwarded upstream.
    """
    import uvicorn

    from gateway.app import create_app
    from gateway.config import Settings
    from gateway.policy import PolicyError, load_policy
    from gateway.upstream import UpstreamFileError, load_upstreams

    overrides: dict[str, Any] = {
        key: value
        for key, value in {
            "host": host,
            "port": port,
            "policy_dir": policy_dir,
            "upstreams_file": upstreams,
            "database_url": database_url,
        }.items()
        if value is not None
    }
    settings = Settings(**overrides)
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx2").setLevel(logging.WARNING)  # a line per upstream request; the audit log has them
    try:  # fail fast with a clear message instead of a failed lifespan
        load_policy(settings.policy_dir)
        load_upstreams(settings.upstreams_file)
    except (PolicyError, UpstreamFileError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level.lower())
