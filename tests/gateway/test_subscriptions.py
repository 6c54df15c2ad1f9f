"""Subscriptions through the real gateway (gateway/subscriptions.py): 2025-protocol client sessions of
two identities subscribe to server-everything's resources; its updates reach only the subscriber."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx2
import mcp_types as types
import pytest
from anyio.streams.memory import MemoryObjectReceiveStream
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError
from mcp.shared.subscriptions import ResourceUpdated

from tests.gateway.features import DOC, NOT_FOUND, start_gateway
from tests.gateway.harness import Gateway, connect, rows

pytestmark = pytest.mark.anyio

TOGGLE = "everything__toggle-subscriber-updates"


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with start_gateway(tmp_path_factory.mktemp("subscriptions")) as gateway:
        yield gateway


@contextlib.asynccontextmanager
async def session(gw: Gateway, identity: str) -> AsyncIterator[tuple[Client, MemoryObjectReceiveStream[str]]]:
    """A 2025 (initialize handshake) client session and the URIs of the updates it receives."""
    send, receive = anyio.create_memory_object_stream[str](100)

    async def on_message(message: Any) -> None:
        if isinstance(message, types.ResourceUpdatedNotification):
            await send.send(str(message.params.uri))

    headers = {"Authorization": f"Bearer {gw.keys[identity]}"}
    async with (
        send,
        receive,
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(
            streamable_http_client(gw.mcp_url, http_client=http), mode="legacy", cache=None, message_handler=on_message
        ) as client,
    ):
        yield client, receive


async def test_a_subscribed_client_gets_the_update_and_another_identitys_client_does_not(gw: Gateway) -> None:
    mine, theirs = f"everything+{DOC}", "everything+demo://resource/dynamic/text/2"
    async with session(gw, "reader") as (reader, reader_updates), session(gw, "other") as (other, other_updates):
        assert reader.server_capabilities.resources is not None and reader.server_capabilities.resources.subscribe
        await subscribe(reader, mine)
        with pytest.raises(MCPError) as refused:  # not granted to other: the answer of a missing resource
            await subscribe(other, mine)
        assert refused.value.error.code == NOT_FOUND
        await subscribe(other, theirs)
        await reader.call_tool(TOGGLE, {})  # everything now sends an update of every subscribed URI
        try:
            with anyio.fail_after(20):
                assert await reader_updates.receive() == mine
                # everything sends the updates in subscription order: by the time `theirs` arrives,
                # `mine` has been relayed, and only to the reader
                assert await other_updates.receive() == theirs
            assert [u for u in _drain(other_updates) if u == mine] == []
        finally:
            await reader.call_tool(TOGGLE, {})
        await subscribe(reader, mine, on=False)
        await subscribe(other, theirs, on=False)
    events = rows(gw, "SELECT * FROM audit_events WHERE method = 'resources/subscribe' ORDER BY seq")
    assert [(e["identity"], e["effect"], e["outcome"]) for e in events] == [
        ("reader", "allow", "ok"),
        ("other", "deny", "denied"),
        ("other", "allow", "ok"),
    ]


async def subscribe(client: Client, uri: str, on: bool = True) -> None:
    with warnings.catch_warnings():  # resources/subscribe is the 2025 wire (deprecated for 2026-07-28 only)
        warnings.simplefilter("ignore", MCPDeprecationWarning)
        await (client.subscribe_resource(uri) if on else client.unsubscribe_resource(uri))


def _drain(stream: MemoryObjectReceiveStream[str]) -> list[str]:
    seen = []
    with contextlib.suppress(anyio.WouldBlock):
        while True:
            seen.append(stream.receive_nowait())
    return seen


async def test_2026_listen_streams_get_only_their_identitys_granted_updates(gw: Gateway) -> None:
    mine, theirs = f"everything+{DOC}", "everything+demo://resource/dynamic/text/3"
    async with connect(gw, "reader") as reader, connect(gw, "other") as other:
        assert reader.protocol_version == "2026-07-28"
        async with (
            reader.listen(resource_subscriptions=[mine]) as reader_stream,
            other.listen(resource_subscriptions=[mine, theirs]) as other_stream,
        ):
            assert other_stream.honored.resource_subscriptions == [theirs]  # mine is not other's to read
            await reader.call_tool(TOGGLE, {})
            try:
                with anyio.fail_after(20):
                    assert await reader_stream.__anext__() == ResourceUpdated(mine)
                    assert await other_stream.__anext__() == ResourceUpdated(theirs)
            finally:
                await reader.call_tool(TOGGLE, {})
