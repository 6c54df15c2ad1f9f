"""Root of the `warden` command line. Each area owns its sub-command module; this file only mounts them.

Mounting is lazy, so that a short call starts fast: `warden --help` lists the areas from the
names and helps in ``AREAS``, and an area's module (with what it imports: sqlalchemy, fastapi,
mcp, torch ...) is imported only when a command of that area runs or its own help is shown.
Each help in ``AREAS`` must stay the same as the one its module gives its Typer app.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from warden.serve import serve

if TYPE_CHECKING:
    from typer import _click  # typer >= 0.29 vendors click; its Context and Command are what groups take

AREAS: dict[str, tuple[str, str]] = {
    # name: (module:attribute of its Typer app, the app's help)
    "gateway": ("gateway.cli.gateway:app", "Run the MCP gateway."),
    "identity": ("gateway.cli.identity:app", "Create, list and revoke the API keys agents use to reach the gateway."),
    "policy": ("gateway.cli.policy:app", "Check, test and explain the policy files in policies/."),
    "approvals": (
        "gateway.cli.approvals:app",
        "List, inspect, approve and deny requests (tool calls, resource reads, prompt gets) held for a person.",
    ),
    "tools": ("gateway.cli.tools:app", "Review tool definitions held back from agents (new tools, changed ones)."),
    "audit": ("gateway.cli.audit:app", "Query, export, count, verify and prune the audit log."),
    "model": ("finetune.cli:model_app", "Prepare base models."),
    "finetune": ("finetune.cli:finetune_app", "Build data, train, evaluate and export LoRA adapters."),
    "adapters": (
        "gateway.cli.adapters:app",
        "Register LoRA adapters with their eval scores, list them, promote one into vLLM.",
    ),
    "agent": ("agent.cli:app", "Run the agent: a model served by vLLM, tools through the gateway."),
}


class _Area(TyperCommand):
    """An area as `warden --help` lists it: its name and help, without importing it."""

    def __init__(self, name: str, target: str, help_text: str) -> None:
        super().__init__(name=name, help=help_text)
        self.target = target

    def load(self) -> _click.Command:
        """The area's command group, built as `app.add_typer(area_app, name=...)` would build it."""
        module, _, attribute = self.target.partition(":")
        area_app = getattr(importlib.import_module(module), attribute)
        mount = typer.Typer(add_completion=False, rich_markup_mode="rich")
        mount.add_typer(area_app, name=self.name)
        root = typer.main.get_command(mount)
        assert isinstance(root, TyperGroup) and self.name is not None
        return root.commands[self.name]


class _LazyAreas(TyperGroup):
    """The root group: lists `_Area` placeholders, and swaps one for its real group when it is used."""

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = {**self.commands, **{name: _Area(name, *spec) for name, spec in AREAS.items()}}

    def resolve_command(
        self, ctx: _click.Context, args: list[str]
    ) -> tuple[str | None, _click.Command | None, list[str]]:
        name, command, rest = super().resolve_command(ctx, args)
        if isinstance(command, _Area) and name is not None:
            command = self.commands[name] = command.load()
        return name, command, rest


app = typer.Typer(
    name="warden",
    help="Warden: a guarded agent runtime. An MCP gateway with policy, approvals and audit, "
    "and LoRA fine-tuning of small tool-use models served by vLLM.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    cls=_LazyAreas,
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
