"""Shared fixtures for the policy tests: real policy directories written to tmp_path."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from gateway.policy import Policy, load_policy
from gateway.types import Identity, RequestKind, ToolCall

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


def resource(server: str, uri: str) -> ToolCall:
    """A resources/read as the gateway builds it (public URI = server+uri)."""
    return ToolCall(f"{server}+{uri}", server, uri, {"uri": uri}, call_id="r1", kind="resource")


def prompt(name: str, **arguments: object) -> ToolCall:
    server, _, upstream = name.partition("__")
    return ToolCall(name, server, upstream, arguments, call_id="p1", kind="prompt")


def server_request(kind: RequestKind, server: str, **params: object) -> ToolCall:
    methods = {"sampling": "sampling/createMessage", "elicitation": "elicitation/create", "roots": "roots/list"}
    return ToolCall(server, server, methods[kind], params, call_id="s1", kind=kind)
