"""gateway/http_server.py: which loop and HTTP parser the gateway is served with, and that the
fast parser (httptools) refuses ambiguous request framing as h11 does: through a real
`warden gateway serve`, requests smuggling a tools/call behind conflicting lengths never reach
the upstream."""

from __future__ import annotations

import json
import socket
from importlib.util import find_spec
from pathlib import Path

import pytest

from gateway.config import Settings
from gateway.http_server import ServerOptionError, server_options
from tests.gateway.harness import NotesUpstream, connect, fixture_policy_dir, run_gateway, text_of, upstreams_yaml


def _everything(_: str) -> bool:
    return True


def _nothing(_: str) -> bool:
    return False


def test_auto_serves_on_uvloop_and_httptools_when_installed() -> None:
    options = server_options(Settings(), installed=_everything)
    assert options.uvicorn_kwargs() == {"loop": "uvloop", "http": "httptools", "access_log": False}


def test_auto_falls_back_to_asyncio_and_h11_without_them() -> None:
    options = server_options(Settings(), installed=_nothing)
    assert (options.loop, options.http) == ("asyncio", "h11")


@pytest.mark.parametrize(
    ("settings", "fast"), [(Settings(server_loop="uvloop"), "uvloop"), (Settings(server_http="httptools"), "httptools")]
)
def test_a_fast_choice_named_but_not_installed_refuses_the_start(settings: Settings, fast: str) -> None:
    with pytest.raises(ServerOptionError, match=f"{fast} is not installed"):
        server_options(settings, installed=_nothing)


def test_the_plain_choices_are_kept_even_when_the_fast_ones_are_installed() -> None:
    options = server_options(Settings(server_loop="asyncio", server_http="h11", access_log=True), installed=_everything)
    assert options.uvicorn_kwargs() == {"loop": "asyncio", "http": "h11", "access_log": True}


CALL = json.dumps(
    {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "notes__echo", "arguments": {"text": "x"}}}
).encode()
CHUNKED = f"{len(CALL):x}\r\n".encode() + CALL + b"\r\n0\r\n\r\n"
AMBIGUOUS = {  # framing headers two parsers (or a proxy in front) could read two ways
    "two-content-lengths": (f"Content-Length: {len(CALL)}\r\nContent-Length: 5\r\n", CALL),
    "length-and-chunked": (f"Content-Length: {len(CALL)}\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n" + CALL),
    "chunked-not-last": ("Transfer-Encoding: chunked, gzip\r\n", CHUNKED),
}


def _raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


PARSERS = [p for p in ("h11", "httptools") if p == "h11" or find_spec(p) is not None]


@pytest.mark.anyio
@pytest.mark.parametrize("parser", PARSERS)
async def test_ambiguous_framing_is_refused_and_nothing_reaches_the_upstream(
    tmp_path: Path, notes: NotesUpstream, parser: str
) -> None:
    env = {"WARDEN_SERVER_HTTP": parser}
    with run_gateway(tmp_path, fixture_policy_dir(tmp_path), upstreams_yaml(notes.url), ["writer-agent"], **env) as gw:
        head = (
            f"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{gw.port}\r\nAuthorization: Bearer {gw.keys['writer-agent']}\r\n"
            "Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n"
            "MCP-Protocol-Version: 2026-07-28\r\n"
        )
        before = len(notes.seen_headers())
        for name, (framing, body) in AMBIGUOUS.items():
            answer = _raw(gw.port, head.encode() + framing.encode() + b"\r\n" + body)
            assert answer == b"" or answer.startswith(b"HTTP/1.1 400"), (name, answer[:80])
            assert b"200 OK" not in answer, name
        assert len(notes.seen_headers()) == before  # not one request was forwarded
        async with connect(gw, "writer-agent") as client:  # and the gateway serves after the attempts
            assert text_of(await client.call_tool("notes__echo", {"text": "still here"})) == "still here"
