"""Root of the `warden` command line. Each area owns its sub-command module; this file only mounts them."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from agent.cli import app as agent_app
from finetune.cli import finetune_app, model_app
from gateway.cli.adapters import app as adapters_app
from gateway.cli.approvals import app as approvals_app
from gateway.cli.audit import app as audit_app
from gateway.cli.gateway import app as gateway_app
from gateway.cli.identity import app as identity_app
from gateway.cli.policy import app as policy_app
from warden.serve import serve

app = typer.Typer(
    name="warden",
    help="Warden: a guarded agent runtime. An MCP gateway with policy, approvals and audit, "
    "and LoRA fine-tuning of small tool-use models served by vLLM.",
    no_args_is_help=True,
    rich_markup_mode="rich",
)


@app.callback()
def _root(
    config: Annotated[
        Path | None,
        typer.Option("--config", "-c", help="YAML settings file (same keys as the WARDEN_* variables).", exists=True),
    ] = None,
) -> None:
    if config is not None:
        os.environ["WARDEN_CONFIG"] = str(config)


app.add_typer(gateway_app, name="gateway")
app.add_typer(identity_app, name="identity")
app.add_typer(policy_app, name="policy")
app.add_typer(approvals_app, name="approvals")
app.add_typer(audit_app, name="audit")
app.add_typer(model_app, name="model")
app.add_typer(finetune_app, name="finetune")
app.add_typer(adapters_app, name="adapters")
app.add_typer(agent_app, name="agent")
app.command(name="serve")(serve)


@app.command()
def demo(
    workdir: Annotated[Path, typer.Option(help="Work directory (database, keys, scratch repository); reused.")] = Path(
        ".warden/demo"
    ),
    policy_dir: Annotated[Path, typer.Option(help="Policy directory to run the demo with.")] = Path("policies"),
) -> None:
    """Run the gateway end to end on the embedded defaults: real MCP servers from PyPI behind the
    example policies, a scripted agent showing allowed, denied and approval-held calls, and the audit log."""
    from warden.demo import run_demo

    run_demo(workdir, policy_dir)


def main() -> None:
    app()
