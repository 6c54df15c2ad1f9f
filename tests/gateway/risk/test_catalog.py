"""gateway/risk/catalog.py: the five real servers launched from an upstreams file, and JSON catalogs.

Also the guard on the checked-in snapshot the fast tests classify: it must equal what the
live servers list now.
"""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from gateway.risk.catalog import CatalogError, from_json, from_upstreams
from gateway.risk.suggest import CatalogTool
from gateway.risk.view import tool_view
from tests.gateway.risk.servers import SNAPSHOT


def dumped(catalog: list[CatalogTool]) -> dict[str, list[dict[str, object]]]:
    out: dict[str, list[dict[str, object]]] = {}
    for e in catalog:
        out.setdefault(e.server, []).append(e.tool.model_dump(mode="json", by_alias=True, exclude_none=True))
    return out


def test_snapshot_matches_the_live_servers(live: list[CatalogTool], tmp_path: Path) -> None:
    now = dumped(live)
    fresh = tmp_path / "catalogs.json"
    fresh.write_text(json.dumps(now, indent=1, ensure_ascii=False) + "\n")
    assert now == json.loads(SNAPSHOT.read_text()), f"the servers changed: review, then cp {fresh} {SNAPSHOT}"


def test_public_names_are_server_and_tool(live: list[CatalogTool]) -> None:
    assert {e.public_name for e in live} >= {"git__git_reset", "filesystem__write_file", "time__get_current_time"}
    for e in live:
        assert e.public_name == f"{e.server}__{e.tool.name}"


def test_admin_tools_json_round_trips(snapshot: list[CatalogTool]) -> None:
    served = [tool_view(e.public_name, e.server, e.tool) for e in snapshot]
    assert from_json(json.loads(json.dumps(served))) == snapshot
    assert from_json({"tools": [v["definition"] for v in served]}) == snapshot


def test_a_name_without_a_server_is_refused() -> None:
    with pytest.raises(CatalogError, match="not a public name"):
        from_json({"tools": [{"name": "reset", "inputSchema": {"type": "object"}}]})
    with pytest.raises(CatalogError, match="not an MCP tool"):
        from_json({"tools": ["reset"]})


def test_admin_tools_rows_of_an_unprefixed_upstream_keep_their_server() -> None:
    """`/admin/tools` names each row's server and upstream tool, so an unprefixed mount's rows need no separator."""
    definition = {"name": "test_simple_text", "inputSchema": {"type": "object"}}
    row = {"name": "test_simple_text", "server": "conf", "tool": "test_simple_text", "definition": definition}
    (tool,) = from_json([row])
    assert (tool.public_name, tool.server, tool.tool.name) == ("test_simple_text", "conf", "test_simple_text")


def test_an_upstream_that_never_answers_fails_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "upstreams.yaml"
    path.write_text("servers:\n  broken:\n    command: /bin/false\n")
    with pytest.raises(CatalogError, match="broken"):
        anyio.run(from_upstreams, path, "__", 3.0)
