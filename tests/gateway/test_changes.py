"""tools/list_changed both ways (gateway/changes.py): an upstream's change is picked up at once, and
connected clients are told when THEIR visible tools change, on both eras, also after a policy
reload; another identity's clients are never told.

Real gateway process, the notes upstream (announces changes on its subscriptions/listen stream),
real SDK clients: 2025 sessions (notification on the standalone GET stream) and 2026-07-28
clients (their own `subscriptions/listen` stream to the gateway)."""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import mcp_types as types
import pytest
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

from tests.gateway.harness import (
    FIXTURE_POLICY,
    Gateway,
    fixture_policy_dir,
    run_gateway,
    run_notes_upstream,
    upstreams_yaml,
)

pytestmark = pytest.mark.anyio

IDENTITIES = ["reader-agent", "writer-agent"]


@dataclass
class Told:
    """How many tools/list_changed notifications one client received."""

    count: int = 0
    _moved: anyio.Event = field(default_factory=anyio.Event)

    def bump(self) -> None:
        self.count += 1
        self._moved.set()
        self._moved = anyio.Event()

    async def reaches(self, n: int, within_s: float = 20) -> None:
        with anyio.fail_after(within_s):
            while self.count < n:
                await self._moved.wait()


class _GetStreams(logging.Handler):
    """Counts the SDK client's "GET SSE connection established" (the 2025 standalone stream is open)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.open = 0
        self._moved = anyio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if "GET SSE connection established" in record.getMessage():
            self.open += 1
            self._moved.set()
            self._moved = anyio.Event()

    async def reach(self, n: int) -> None:
        with anyio.fail_after(20):
            while self.open < n:
                await self._moved.wait()


@pytest.fixture
def get_streams() -> Iterator[_GetStreams]:
    handler, sdk = _GetStreams(), logging.getLogger("mcp.client.streamable_http")
    level = sdk.level
    sdk.addHandler(handler)
    sdk.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        sdk.removeHandler(handler)
        sdk.setLevel(level)


@contextlib.asynccontextmanager
async def client(gw: Gateway, identity: str, mode: str, told: Told) -> AsyncIterator[Client]:
    async def on_message(message: Any) -> None:
        # 2026-07-28 clients count their listen stream (the SDK also hands its frames to this handler)
        if mode == "legacy" and isinstance(message, types.ToolListChangedNotification):
            told.bump()

    headers = {"Authorization": f"Bearer {gw.keys[identity]}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(
            streamable_http_client(gw.mcp_url, http_client=http), mode=mode, cache=None, message_handler=on_message
        ) as connected,
    ):
        yield connected


async def listen(connected: Client, told: Told, *, task_status: Any = anyio.TASK_STATUS_IGNORED) -> None:
    """A 2026-07-28 client's own subscriptions/listen stream, counted into `told` (started once acknowledged)."""
    async with connected.listen(tools_list_changed=True) as subscription:
        task_status.started()
        async for _event in subscription:
            told.bump()


def edit_roles(gw: Gateway, reader: str, writer: str) -> None:
    """The fixture policy with the reader and writer roles' grants replaced."""
    policy = gw.policy_dir / "policy.yaml"
    text = FIXTURE_POLICY.read_text()
    text = text.replace('grants: ["time__get_current_time", "notes__list_notes"]', f"grants: {reader}")
    text = text.replace('grants: ["time__*", "notes__*"]', f"grants: {writer}")
    policy.write_text(text)


async def names(connected: Client) -> set[str]:
    return {t.name for t in (await connected.list_tools()).tools}


async def test_clients_are_told_when_their_own_view_changes_never_about_another_identitys(
    tmp_path: Path, get_streams: _GetStreams
) -> None:
    with (
        run_notes_upstream(tmp_path) as notes,
        run_gateway(
            tmp_path,
            fixture_policy_dir(tmp_path),
            upstreams_yaml(notes.url),
            IDENTITIES,
            WARDEN_UPSTREAM_PROBE_INTERVAL_S="600",  # only the upstream's notification can refresh in time
        ) as gw,
    ):
        told = {(who, era): Told() for who in ("reader", "writer") for era in ("legacy", "auto")}
        async with contextlib.AsyncExitStack() as stack:
            clients = {}
            for (who, era), counter in told.items():
                clients[who, era] = await stack.enter_async_context(client(gw, f"{who}-agent", era, counter))
                tools = clients[who, era].server_capabilities.tools
                assert tools is not None and tools.list_changed is True, "the gateway advertises listChanged"
                await names(clients[who, era])  # a 2025 session is tracked from its first tools/list
            tg = await stack.enter_async_context(anyio.create_task_group())
            for who in ("reader", "writer"):
                await tg.start(listen, clients[who, "auto"], told[who, "auto"])
            await get_streams.reach(2)  # both 2025 sessions hold their standalone stream

            # A: the upstream drops a tool only the writer sees: the writer is told at once, the reader is not
            assert "notes__echo" in await names(clients["writer", "legacy"])
            async with httpx.AsyncClient() as http:
                (await http.post(f"{notes.url.removesuffix('/mcp')}/control/remove-echo")).raise_for_status()
            for era in ("legacy", "auto"):
                await told["writer", era].reaches(1)
            assert "notes__echo" not in await names(clients["writer", "auto"]), "refreshed without a probe"

            # B: a policy reload grants the reader a tool the writer already had: only the reader is told
            edit_roles(
                gw, '["time__get_current_time", "notes__list_notes", "notes__add_note"]', '["time__*", "notes__*"]'
            )
            for era in ("legacy", "auto"):
                await told["reader", era].reaches(1)
            assert "notes__add_note" in await names(clients["reader", "legacy"])

            # C: a reload that changes both views tells both; every earlier wrong notice would have arrived first
            edit_roles(gw, '["notes__list_notes"]', '["notes__*"]')
            for key in told:
                await told[key].reaches(2)
            counts = {f"{who}/{era}": t.count for (who, era), t in told.items()}
            assert counts == dict.fromkeys(counts, 2), counts
            tg.cancel_scope.cancel()


LEGACY_UPSTREAM = f"""
servers:
  fid:
    command: {sys.executable}
    args: ["-m", "tests.upstreams.fidelity_server", "--legacy"]
    cwd: {Path(__file__).resolve().parents[2]}
"""


async def test_a_2025_upstreams_list_changed_refreshes_its_catalog_at_once(tmp_path: Path) -> None:
    policy_dir = tmp_path / "policies"
    policy_dir.mkdir()
    (policy_dir / "policy.yaml").write_text("identities:\n  writer-agent:\n    grants: ['fid__*']\n")
    with run_gateway(
        tmp_path, policy_dir, LEGACY_UPSTREAM, ["writer-agent"], WARDEN_UPSTREAM_PROBE_INTERVAL_S="600"
    ) as gw:
        told = Told()
        async with client(gw, "writer-agent", "auto", told) as connected, anyio.create_task_group() as tg:
            assert "fid__meta_echo" in await names(connected)
            await tg.start(listen, connected, told)
            await connected.call_tool("fid__shrink", {})  # the upstream notifies its 2025 session, unprompted
            await told.reaches(1)
            assert "fid__meta_echo" not in await names(connected), "refreshed on the notification, not the probe"
            tg.cancel_scope.cancel()


async def test_one_identity_holding_its_listen_streams_leaves_another_listening(tmp_path: Path) -> None:
    policy_dir = tmp_path / "policies"
    policy_dir.mkdir()
    (policy_dir / "policy.yaml").write_text("identities:\n  a:\n    grants: ['*']\n  b:\n    grants: ['*']\n")
    with run_gateway(tmp_path, policy_dir, "servers: {}\n", ["a", "b"], WARDEN_MCP_SESSIONS_PER_IDENTITY="2") as gw:
        async with contextlib.AsyncExitStack() as stack:
            tg = await stack.enter_async_context(anyio.create_task_group())
            for _ in range(2):
                held = await stack.enter_async_context(client(gw, "a", "auto", Told()))
                await tg.start(listen, held, Told())
            extra = await stack.enter_async_context(client(gw, "a", "auto", Told()))
            with pytest.raises(MCPError, match="Subscription limit"):
                async with extra.listen(tools_list_changed=True):
                    pass
            other = await stack.enter_async_context(client(gw, "b", "auto", Told()))
            await tg.start(listen, other, Told())  # b's own cap: a's streams do not count
            tg.cancel_scope.cancel()
