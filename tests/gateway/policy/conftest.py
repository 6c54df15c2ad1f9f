"""Shared fixtures for the policy tests: real policy directories written to tmp_path."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.policy import Policy, load_policy
from gateway.types import Identity, ToolCall

REPO = Path(__file__).resolve().parents[3]
SHIPPED = REPO / "policies"
CATALOG = Path(__file__).with_name("catalog.json")


def write(directory: Path, name: str, text: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


@pytest.fixture
def make_policy(tmp_path: Path) -> Callable[[str], Policy]:
    """Write `text` as the only policy file of a fresh directory and load it."""
    count = 0

    def make(text: str) -> Policy:
        nonlocal count
        count += 1
        directory = tmp_path / f"p{count}"
        write(directory, "policy.yaml", text)
        return load_policy(directory)

    return make


def call(tool: str, **arguments: object) -> ToolCall:
    server, _, upstream = tool.partition("__")
    return ToolCall(tool, server, upstream, arguments, call_id="c1")


def who(policy: Policy, name: str) -> Identity:
    return Identity(name, policy.roles_of(name))
