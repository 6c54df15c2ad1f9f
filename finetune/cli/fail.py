"""How every `warden model` / `warden finetune` command reports a failure: red on stderr, exit 1."""

from __future__ import annotations

from typing import NoReturn

import typer


def fail(msg: str) -> NoReturn:
    typer.secho(msg, fg=typer.colors.RED, err=True)
    raise typer.Exit(1)
