"""`warden gateway serve`."""

import typer

app = typer.Typer(help="Run the MCP gateway.", no_args_is_help=True)
