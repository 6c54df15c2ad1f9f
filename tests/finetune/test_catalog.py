"""finetune.catalog against a live gateway (real process, real upstreams: PyPI `mcp-server-time` over
stdio and the notes SDK server over Streamable HTTP): the catalog is that identity's tools/list, as
the agent offers it to its model, byte for byte."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from agent.tools import connect as agent_connect
from finetune.catalog import CatalogError, from_gateway, from_stdio
from tests.gateway.harness import (
    Gateway,
    connect,
    fixture_policy_dir,
    free_port,
    run_gateway,
    run_notes_upstream,
    upstreams_yaml,
)

IDENTITIES = ["reader-agent", "writer-agent", "alice"]


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("catalog")
    with (
        run_notes_upstream(tmp) as notes,
        run_gateway(tmp, fixture_policy_dir(tmp), upstreams_yaml(notes.url), IDENTITIES) as gateway,
    ):
        yield gateway


def _tools_list(gw: Gateway, identity: str) -> list[Any]:
    async def listed() -> list[Any]:
        async with connect(gw, identity) as client:
            return list((await client.list_tools()).tools)

    return anyio.run(listed)


def _agent_offers(gw: Gateway, identity: str) -> list[dict[str, Any]]:
    async def offered() -> list[dict[str, Any]]:
        async with agent_connect(gw.mcp_url, gw.keys[identity]) as tools:
            return await tools.openai_tools()

    return anyio.run(offered)


def test_the_catalog_is_the_identitys_tools_list(gw: Gateway) -> None:
    for identity in ("reader-agent", "writer-agent"):
        catalog = from_gateway(gw.mcp_url, gw.keys[identity])
        listed = _tools_list(gw, identity)
        assert [t["function"]["name"] for t in catalog] == [t.name for t in listed]
        assert [t["function"]["parameters"] for t in catalog] == [t.input_schema for t in listed]
        assert all(t["function"]["parameters"]["type"] == "object" for t in catalog)


def test_each_identity_sees_its_own_catalog(gw: Gateway) -> None:
    reader = {t["function"]["name"] for t in from_gateway(gw.mcp_url, gw.keys["reader-agent"])}
    writer = {t["function"]["name"] for t in from_gateway(gw.mcp_url, gw.keys["writer-agent"])}
    assert reader == {"notes__list_notes", "time__get_current_time"}
    assert {"notes__add_note", "notes__delete_note", "time__convert_time"} <= writer and reader < writer


def test_the_catalog_is_byte_for_byte_what_the_agent_offers(gw: Gateway) -> None:
    # The 135M model answers differently to another JSON key order: training prompts must render the same text.
    for identity in ("reader-agent", "writer-agent"):
        catalog = from_gateway(gw.mcp_url, gw.keys[identity])
        assert json.dumps(catalog) == json.dumps(_agent_offers(gw, identity))


def test_a_stdio_catalog_renders_as_the_gateway_passes_it_on(gw: Gateway) -> None:
    direct = from_stdio(sys.executable, ["-m", "mcp_server_time", "--local-timezone", "UTC"])
    through = {t["function"]["name"]: t for t in from_gateway(gw.mcp_url, gw.keys["writer-agent"])}
    for tool in direct:
        public = through[f"time__{tool['function']['name']}"]
        renamed = {**public, "function": public["function"] | {"name": tool["function"]["name"]}}
        assert json.dumps(renamed) == json.dumps(tool)  # key order included


def test_a_refused_key_is_named(gw: Gateway) -> None:
    with pytest.raises(CatalogError, match=r"refused the API key \(401\)"):
        from_gateway(gw.mcp_url, "wdn_aaaaaaaa_" + "b" * 43)


def test_no_gateway_is_named(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/mcp"
    with pytest.raises(CatalogError, match="no gateway answering at " + url):
        from_gateway(url, "k")


def test_an_identity_without_tools_is_an_error(gw: Gateway) -> None:
    with pytest.raises(CatalogError, match="lists no tools"):
        from_gateway(gw.mcp_url, gw.keys["alice"])
