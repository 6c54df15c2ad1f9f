"""gateway/upstream/delivery.py: a connection that breaks after a call was sent fails that call only, and it is
not sent again; a call that finds its upstream reconnecting waits for it.

The upstream is the real notes server behind a hostile TCP relay that resets the connection
(after reading the whole request, before any answer) of every request carrying a marker."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from gateway.upstream.delivery import until_ready
from serving.ports import free_port
from tests.gateway.harness import Gateway, NotesUpstream, connect, rows, run_gateway, text_of

pytestmark = pytest.mark.anyio

MARKER = b"reset-this-connection"
POLICY = "identities:\n  agent:\n    grants: ['*']\n"


class ResettingRelay:
    """TCP relay to ``target_port`` on a thread; resets (RST) a connection whose request carries MARKER."""

    def __init__(self, target_port: int) -> None:
        self.port = free_port()
        self.target_port = target_port
        self.resets = 0
        self._loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> ResettingRelay:
        self._thread.start()
        assert self._started.wait(10)
        return self

    def __exit__(self, *_: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._relay, "127.0.0.1", self.port))
        self._started.set()
        try:
            self._loop.run_forever()
        finally:
            server.close()
            for task in asyncio.all_tasks(self._loop):
                task.cancel()
            self._loop.run_until_complete(asyncio.sleep(0))
            self._loop.close()  # its self-pipe sockets too

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def upstream_to_client() -> None:
            while data := await up_reader.read(65536):
                writer.write(data)
                await writer.drain()

        back = asyncio.ensure_future(upstream_to_client())
        tail = b""
        try:
            while data := await reader.read(65536):
                if MARKER in tail + data:  # the request reached us (it was sent); it goes no further
                    self.resets += 1
                    sock = writer.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    break
                tail = data[-len(MARKER) :]
                up_writer.write(data)
                await up_writer.drain()
        finally:
            back.cancel()
            writer.close()
            up_writer.close()


@pytest.fixture(scope="module")
def relayed(tmp_path_factory: pytest.TempPathFactory, notes: NotesUpstream) -> Iterator[tuple[Gateway, ResettingRelay]]:
    tmp = tmp_path_factory.mktemp("delivery")
    policy_dir = tmp / "policies"
    policy_dir.mkdir()
    (policy_dir / "policy.yaml").write_text(POLICY)
    with ResettingRelay(notes.port) as relay:
        upstreams = f"servers:\n  notes:\n    url: http://127.0.0.1:{relay.port}/mcp\n"
        with run_gateway(Path(tmp), policy_dir, upstreams, ["agent"]) as gw:
            yield gw, relay


async def test_a_call_whose_connection_broke_after_sending_fails_alone_and_is_not_retried(
    relayed: tuple[Gateway, ResettingRelay],
) -> None:
    gw, relay = relayed
    results: dict[str, str] = {}
    async with connect(gw, "agent") as client:

        async def call(text: str) -> None:
            result = await client.call_tool("notes__echo", {"text": text})
            results[text] = "error" if result.is_error else text_of(result)

        async with anyio.create_task_group() as tg:
            for n in range(12):
                tg.start_soon(call, f"fine-{n}")
            tg.start_soon(call, MARKER.decode())
        after = await client.call_tool("notes__echo", {"text": "after"})
    assert relay.resets == 1  # the broken call reached the relay once: never sent again
    assert results.pop(MARKER.decode()) == "error"
    assert all(value != "error" for value in results.values()), results  # the calls beside it all ran
    assert not after.is_error  # and the upstream was not torn down for it
    broken = rows(
        gw,
        "SELECT outcome, error FROM audit_events WHERE phase = 'outcome' AND arguments LIKE :m",
        m=f"%{MARKER.decode()}%",
    )
    assert [r["outcome"] for r in broken] == ["upstream_error"]
    assert "not retried" in broken[0]["error"]


async def test_a_call_waits_for_a_reconnecting_upstream_within_its_bound() -> None:
    back = anyio.Event()
    ready = {"now": False}

    async def wait_ready(timeout_s: float) -> bool:
        with anyio.move_on_after(timeout_s):
            await back.wait()
        return ready["now"]

    async def reconnect() -> None:
        ready["now"] = True
        back.set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(reconnect)
        assert await until_ready(lambda: ready["now"], wait_ready, 10)
    ready["now"], back = False, anyio.Event()
    with anyio.fail_after(5):  # never back: gives up after its bound (here the call's 0.2 s), never hangs
        assert not await until_ready(lambda: ready["now"], wait_ready, 0.2)
