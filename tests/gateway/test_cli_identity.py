"""gateway/cli/identity.py: `warden identity add|list|revoke` against a real database."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from gateway.cli.identity import app as identity_app
from gateway.db import create_db_engine
from gateway.identities import IdentityStore
from warden.cli import app

runner = CliRunner()
KEY = re.compile(r"wdn_[a-z0-9]{8}_[A-Za-z0-9_-]{43}")


@pytest.fixture
def database_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("WARDEN_DATABASE_URL", url)
    monkeypatch.chdir(tmp_path)  # no stray warden.yaml from the developer's directory
    return url


def authenticate(database_url: str, key: str) -> str | None:
    engine = create_db_engine(database_url)
    try:
        return IdentityStore(engine).authenticate(key)
    finally:
        engine.dispose()


def test_add_prints_a_working_key_once(database_url: str) -> None:
    result = runner.invoke(app, ["identity", "add", "reader-agent"])
    assert result.exit_code == 0, result.output
    keys = KEY.findall(result.output)
    assert len(keys) == 1
    assert "store it now; it cannot be shown again" in result.output.lower()
    assert authenticate(database_url, keys[0]) == "reader-agent"


def test_list_shows_names_and_prefixes_never_keys(database_url: str) -> None:
    added = runner.invoke(app, ["identity", "add", "alice"])
    [key] = KEY.findall(added.output)
    listed = runner.invoke(app, ["identity", "list"])
    assert listed.exit_code == 0, listed.output
    assert "alice" in listed.output and key[4:12] in listed.output
    assert key[13:] not in listed.output


def test_duplicate_active_name_exits_1_with_a_message(database_url: str) -> None:
    assert runner.invoke(app, ["identity", "add", "alice"]).exit_code == 0
    again = runner.invoke(app, ["identity", "add", "alice"])
    assert again.exit_code == 1
    assert "already has an active key" in again.output
    assert not KEY.findall(again.output)


def test_revoke_hides_the_key_from_list_unless_all(database_url: str) -> None:
    [key] = KEY.findall(runner.invoke(app, ["identity", "add", "alice"]).output)
    revoked = runner.invoke(app, ["identity", "revoke", "alice"])
    assert revoked.exit_code == 0, revoked.output
    assert authenticate(database_url, key) is None
    assert "alice" not in runner.invoke(app, ["identity", "list"]).output
    everything = runner.invoke(app, ["identity", "list", "--all"])
    assert "alice" in everything.output and key[4:12] in everything.output


def test_revoking_a_name_without_an_active_key_exits_1(database_url: str) -> None:
    result = runner.invoke(app, ["identity", "revoke", "nobody"])
    assert result.exit_code == 1
    assert "no active key" in result.output


def test_an_invalid_name_exits_1_with_the_rule(database_url: str) -> None:
    result = runner.invoke(app, ["identity", "add", "Not Valid"])
    assert result.exit_code == 1
    assert "invalid identity name" in result.output


def test_every_command_and_parameter_has_help() -> None:
    group = typer.main.get_command(identity_app)
    commands = getattr(group, "commands", {})
    assert set(commands) == {"add", "list", "revoke"}
    for name, command in commands.items():
        assert command.help, name
        for param in command.params:
            assert getattr(param, "help", None), f"{name} {param.name}"
