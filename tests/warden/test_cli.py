"""The root `warden` command: areas load lazily, and what `--help` lists matches what each area says."""

import importlib
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from warden import cli


@pytest.mark.parametrize("name", sorted(cli.AREAS))
def test_listed_help_is_the_areas_own(name: str) -> None:
    target, listed = cli.AREAS[name]
    module, _, attribute = target.partition(":")
    assert getattr(importlib.import_module(module), attribute).info.help == listed


def test_help_lists_every_area_without_importing_them() -> None:
    code = (
        "import sys\nfrom typer.testing import CliRunner\nfrom warden.cli import app\n"
        "out = CliRunner().invoke(app, ['--help']).output\n"
        "heavy = [m for m in ('mcp', 'fastapi', 'sqlalchemy', 'torch', 'transformers') if m in sys.modules]\n"
        "print(heavy)\nprint(out)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[0] == "[]"
    for name in cli.AREAS:
        assert name in out


def test_an_area_command_runs_after_loading() -> None:
    done = CliRunner().invoke(cli.app, ["finetune", "eval", "--help"])
    assert done.exit_code == 0 and "--engine" in done.output
