"""Resources through the real gateway (gateway/resources.py): server-everything (npm, stdio) and the
conformance upstream (stdio) behind a gateway process; real MCP SDK clients as two identities."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError

from tests.gateway.approvals.harness import decide
from tests.gateway.features import DOC, NOT_FOUND, start_gateway
from tests.gateway.harness import Gateway, connect, rows

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with start_gateway(tmp_path_factory.mktemp("resources")) as gateway:
        yield gateway


def audit(gw: Gateway, method: str) -> list[dict[str, Any]]:
    return rows(gw, "SELECT * FROM audit_events WHERE method = :m ORDER BY seq", m=method)


async def test_a_granted_resource_reads_and_an_ungranted_one_answers_like_a_missing_one(
    gw: Gateway,
) -> None:
    async with connect(gw, "reader") as client:
        result = await client.read_resource(f"everything+{DOC}")
        assert result.contents[0].uri == f"everything+{DOC}"
        assert "architecture" in getattr(result.contents[0], "text", "").lower()
    async with connect(gw, "other") as client:
        with pytest.raises(MCPError) as refused:
            await client.read_resource(f"everything+{DOC}")
        with pytest.raises(MCPError) as missing:
            await client.read_resource("everything+demo://resource/static/document/no-such.md")
    assert refused.value.error.code == missing.value.error.code == NOT_FOUND
    assert refused.value.error.message.replace(DOC, "X") == missing.value.error.message.replace(
        "demo://resource/static/document/no-such.md", "X"
    )


async def test_a_template_read_resolves_and_contents_keep_public_uris(gw: Gateway) -> None:
    async with connect(gw, "reader") as client:
        templates = (await client.list_resource_templates()).resource_templates
        assert "everything+demo://resource/dynamic/text/{resourceId}" in [t.uri_template for t in templates]
        assert "conf+test://template/{id}/data" in [t.uri_template for t in templates]
        text = await client.read_resource("everything+demo://resource/dynamic/text/7")
        data = await client.read_resource("conf+test://template/42/data")
    assert text.contents[0].uri == "everything+demo://resource/dynamic/text/7"
    assert '"id": "42"' in getattr(data.contents[0], "text", "")
    assert data.contents[0].uri == "conf+test://template/42/data"


async def test_lists_show_only_granted_items_in_pages_and_a_forged_cursor_is_an_error(gw: Gateway) -> None:
    async with connect(gw, "reader") as client:
        seen, cursor = [], None
        while True:
            listed = await client.list_resources(cursor=cursor)
            assert len(listed.resources) <= 3
            seen += [r.uri for r in listed.resources]
            cursor = listed.next_cursor
            if cursor is None:
                break
        with pytest.raises(MCPError) as forged:
            await client.list_resources(cursor="eyJvZmZzZXQiOiAwfQ")
    assert f"everything+{DOC}" in seen and "conf+test://static-text" in seen
    assert "conf+test://watched-resource" not in seen  # listed by conf, not granted to reader
    assert len(seen) == len(set(seen)) > 3
    assert forged.value.error.code == types.INVALID_PARAMS
    async with connect(gw, "other") as client:
        assert (await client.list_resources()).resources == []
        assert (await client.list_prompts()).prompts == []


async def test_resource_links_and_embedded_resources_in_tool_results_read_back(gw: Gateway) -> None:
    async with connect(gw, "reader") as client:
        links = await client.call_tool("everything__get-resource-links", {"count": 2})
        uris = [c.uri for c in links.content if isinstance(c, types.ResourceLink) and "/text/" in c.uri]
        assert uris and all(u.startswith("everything+demo://") for u in uris)
        back = await client.read_resource(uris[0])
        embedded = await client.call_tool("conf__test_embedded_resource", {})
    assert back.contents[0].uri == uris[0]
    resource = next(c for c in embedded.content if isinstance(c, types.EmbeddedResource))
    assert resource.resource.uri == "conf+test://embedded-resource"


@pytest.mark.parametrize(
    "uri",
    [
        "conf+test://static-text/../watched-resource",  # dot segments normalised: not the granted URI
        "conf+test://watched-resource",  # listed upstream, not granted
        "nosuch+test://static-text",  # no such server
        "test://static-text",  # the upstream's own URI without the prefix
        "everything+" + "demo://resource/static/document/" + "x" * 9_000,  # longer than policy matches
        "conf+test://static%2Ftext",
    ],
)
async def test_forged_uris_answer_like_missing_resources(gw: Gateway, uri: str) -> None:
    async with connect(gw, "reader") as client:
        with pytest.raises(MCPError) as refused:
            await client.read_resource(uri)
    assert refused.value.error.code == NOT_FOUND
    assert refused.value.error.message.startswith("resource not found")


async def test_reads_are_audited_with_size_and_hash_never_the_contents(gw: Gateway) -> None:
    async with connect(gw, "reader") as client:
        result = await client.read_resource("conf+test://static-text")
    text = getattr(result.contents[0], "text", "")
    assert text
    events = [e for e in audit(gw, "resources/read") if e["tool"] == "test://static-text"]
    decision, outcome = events[-2], events[-1]
    assert (decision["phase"], decision["effect"], decision["identity"], decision["server"]) == (
        "decision",
        "allow",
        "reader",
        "conf",
    )
    assert (outcome["phase"], outcome["outcome"], outcome["call_id"]) == ("outcome", "ok", decision["call_id"])
    assert outcome["content_bytes"] > len(text) and len(outcome["content_sha256"]) == 64
    assert outcome["version"] == 3
    everything = rows(gw, "SELECT * FROM audit_events")
    assert not any(text in " ".join(str(v) for v in row.values()) for row in everything)
    async with connect(gw, "other") as client:  # its own refusal: under xdist this module's tests may split
        with pytest.raises(MCPError):
            await client.read_resource("conf+test://static-text")
    refused = [e for e in audit(gw, "resources/read") if e["identity"] == "other" and e["effect"] == "deny"]
    assert refused and all(e["content_sha256"] == "" and e["rule_ids"] == '["default-deny"]' for e in refused[:1])


async def test_a_resource_read_held_for_approval_runs_after_approval(gw: Gateway) -> None:
    async with connect(gw, "reader") as client:
        with pytest.raises(MCPError) as held:
            await client.read_resource("conf+test://static-binary")
        message = held.value.error.message
        assert message.startswith("pending approval ") and "approve-binary-read" in message
        approval_id = message.split()[2].rstrip(":")
        assert (await decide(gw, approval_id, "approve")).status_code == 200
        result = await client.read_resource("conf+test://static-binary")
    assert isinstance(result.contents[0], types.BlobResourceContents)
    assert result.contents[0].uri == "conf+test://static-binary"
    events = rows(gw, "SELECT * FROM audit_events WHERE approval_id = :id ORDER BY seq", id=approval_id)
    reads = [(e["method"], e["phase"], e["effect"], e["outcome"]) for e in events if e["method"] == "resources/read"]
    assert reads[0] == ("resources/read", "decision", "approve", None)
    assert reads[-1][3] == "ok" and events[-1]["content_sha256"]
    assert result.contents[0].blob not in " ".join(str(v) for e in events for v in e.values())
