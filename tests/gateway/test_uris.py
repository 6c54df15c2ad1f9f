"""gateway/uris.py: public resource URIs for prefixed and unprefixed mounts, and rewriting results."""

from __future__ import annotations

import mcp_types as types

from gateway import uris
from gateway.upstream.listings import Offerings
from gateway.upstream.pool import UpstreamPool
from gateway.upstream.spec import UpstreamSpec


def _pool() -> UpstreamPool:
    pool = UpstreamPool(
        [
            UpstreamSpec(name="fs", command="fs-server"),
            UpstreamSpec(name="conf", command="conf-server", prefix=False),
        ]
    )
    pool.upstreams["conf"].offerings = Offerings(
        resources=(types.Resource(name="static", uri="test://static-text"),),
        templates=(types.ResourceTemplate(name="t", uri_template="test://template/{id}/data"),),
    )
    return pool


def test_prefixed_uris_carry_the_server_and_resolve_back_to_the_upstreams_own() -> None:
    pool = _pool()
    fs = pool.upstreams["fs"]
    assert uris.public_uri(fs, "file:///data/a.txt") == "fs+file:///data/a.txt"
    assert uris.public_uri(fs, "file:///{path}") == "fs+file:///{path}"  # templates stay expandable
    assert uris.resolve(pool, "fs+file:///data/a.txt") == (fs, "file:///data/a.txt")
    assert uris.resolve(pool, "fs+git+https://x/y") == (fs, "git+https://x/y")  # the first + ends the server


def test_unprefixed_uris_are_unchanged_and_belong_to_the_upstream_that_lists_or_templates_them() -> None:
    pool = _pool()
    conf = pool.upstreams["conf"]
    assert uris.public_uri(conf, "test://static-text") == "test://static-text"
    assert uris.resolve(pool, "test://static-text") == (conf, "test://static-text")
    assert uris.resolve(pool, "test://template/42/data") == (conf, "test://template/42/data")


def test_forged_public_uris_resolve_to_nothing() -> None:
    pool = _pool()
    for forged in ("nosuch+file:///a", "fs+", "file:///data/a.txt", "conf+test://static-text", "test://other"):
        assert uris.resolve(pool, forged) is None, forged


def test_rewrite_makes_links_and_embedded_resources_public_but_leaves_structured_content_alone() -> None:
    fs = _pool().upstreams["fs"]
    result = types.CallToolResult(
        content=[
            types.ResourceLink(name="a", uri="file:///data/a.txt"),
            types.EmbeddedResource(resource=types.TextResourceContents(uri="file:///data/b.txt", text="b")),
            types.TextContent(text="file:///data/c.txt"),
        ],
        structured_content={"uri": "file:///data/d.txt", "text": "kept"},
    )
    rewritten = uris.rewrite(fs, result)
    link, embedded, text = rewritten.content
    assert isinstance(link, types.ResourceLink) and link.uri == "fs+file:///data/a.txt"
    assert isinstance(embedded, types.EmbeddedResource) and embedded.resource.uri == "fs+file:///data/b.txt"
    assert isinstance(text, types.TextContent) and text.text == "file:///data/c.txt"
    assert rewritten.structured_content == {"uri": "file:///data/d.txt", "text": "kept"}


def test_template_expansion_is_level_one_and_needs_every_variable() -> None:
    assert uris.expand("test://template/{id}/data", {"id": "7"}) == "test://template/7/data"
    assert uris.expand("test://{a}/{b}", {"a": "x"}) is None
    assert uris.template_pattern("test://template/{id}/data").fullmatch("test://template/7/data")
    assert not uris.template_pattern("test://template/{id}/data").fullmatch("test://template/7/other")
