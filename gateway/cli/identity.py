"""`warden identity add|list|revoke`."""

import typer

app = typer.Typer(help="Create, list and revoke the API keys agents use to reach the gateway.", no_args_is_help=True)
