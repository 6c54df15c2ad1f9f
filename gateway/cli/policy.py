"""`warden policy check|test|explain`."""

import typer

app = typer.Typer(help="Check, test and explain the policy files in policies/.", no_args_is_help=True)
