"""Client-facing pagination (gateway/cursor.py): cursors are honoured, and any cursor the gateway did
not hand out is JSON-RPC -32602, on both eras, through the real gateway (page size 1 over the
fidelity upstream's three tools)."""

from __future__ import annotations

import base64
import sys
from collections.abc import Iterator
from pathlib import Path

import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from gateway import cursor
from tests.gateway.harness import Gateway, connect, run_gateway

pytestmark = pytest.mark.anyio

POLICY = """
identities:
  both:
    grants: ["fid__*"]
  one:
    grants: ["fid__refuse"]
"""
UPSTREAMS = f"""
servers:
  fid:
    command: {sys.executable}
    args: ["-m", "tests.upstreams.fidelity_server"]
    cwd: {Path(__file__).resolve().parents[2]}
"""


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


BOGUS = ["nope", "", b64("w1.0"), b64("w1.-1"), b64("w2.1"), b64("w1.1") + "==", b64("w1." + "9" * 80), "%%%"]


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("cursor")
    policy_dir = tmp / "policies"
    policy_dir.mkdir()
    (policy_dir / "policy.yaml").write_text(POLICY)
    with run_gateway(tmp, policy_dir, UPSTREAMS, ["both", "one"], WARDEN_TOOLS_PAGE_SIZE="1") as gateway:
        yield gateway


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_pages_follow_the_cursor_and_a_foreign_cursor_is_an_error(gw: Gateway, mode: str) -> None:
    async with connect(gw, "both", mode) as client:
        first = await client.list_tools()
        assert len(first.tools) == 1 and first.next_cursor
        pages, page = [first], first
        while page.next_cursor is not None:
            page = await client.list_tools(cursor=page.next_cursor)
            pages.append(page)
        assert all(len(p.tools) == 1 for p in pages)
        assert sorted(p.tools[0].name for p in pages) == ["fid__meta_echo", "fid__refuse", "fid__shrink"]
        second = pages[1]
        for bogus in BOGUS:
            with pytest.raises(MCPError) as refused:
                await client.list_tools(cursor=bogus)
            assert refused.value.code == types.INVALID_PARAMS and "invalid cursor" in refused.value.message
        kept = await client.list_tools(cursor=first.next_cursor)
        assert kept.tools == second.tools, "the session keeps working after refused cursors"
        assert first.next_cursor is not None
    async with connect(gw, "one", mode) as other:
        borrowed = await other.list_tools(cursor=first.next_cursor)
        assert borrowed.tools == [] and borrowed.next_cursor is None, "a cursor only pages the caller's own list"


def test_the_cursor_round_trips_and_refuses_what_it_did_not_make() -> None:
    assert cursor.decode(cursor.encode(17)) == 17
    assert cursor.page(list(range(5)), None, 2) == ([0, 1], cursor.encode(2))
    assert cursor.page(list(range(5)), cursor.encode(4), 2) == ([4], None)
    assert cursor.page(list(range(3)), cursor.encode(9), 2) == ([], None), "a list that shrank ends early"
    assert cursor.page(list(range(3)), None, 0) == ([0, 1, 2], None)
    for bogus in BOGUS:
        with pytest.raises(cursor.BadCursor):
            cursor.decode(bogus)
