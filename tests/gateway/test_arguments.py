"""Argument validators: one per catalog entry, dropped when a refresh replaces the definition.

The pool and its upstream are the real ones; the listings are fed through
``Upstream.refresh_catalog``, the method the connect and the idle-time probe call."""

from __future__ import annotations

import mcp_types as types
import pytest

from gateway.arguments import ArgumentValidators
from gateway.upstream.pool import UpstreamPool
from gateway.upstream.spec import UpstreamSpec

pytestmark = pytest.mark.anyio


def tool(name: str, field: str, kind: str = "string") -> types.Tool:
    schema = {"type": "object", "properties": {field: {"type": kind}}, "required": [field]}
    return types.Tool(name=name, description=f"{name} takes {field}", input_schema=schema)


def pool() -> UpstreamPool:
    made = UpstreamPool([UpstreamSpec(name="notes", url="http://127.0.0.1:9/mcp")])
    made.upstreams["notes"].state = "ready"
    return made


async def test_cache_stays_bounded_across_many_catalog_refreshes() -> None:
    upstreams = pool()
    notes = upstreams.upstreams["notes"]
    validators = ArgumentValidators(upstreams)
    for refresh in range(300):
        # every other probe lists a changed definition; the others list the same one again
        await notes.refresh_catalog([tool("echo", f"text{refresh // 2}"), tool("list", "page", "integer")])
        echo, listing = upstreams.entry("notes__echo"), upstreams.entry("notes__list")
        assert echo is not None and listing is not None
        assert validators.problem(echo, {f"text{refresh // 2}": "hi"}) is None
        assert validators.problem(listing, {"page": "one"}) == "page: 'one' is not of type 'integer'"
        assert len(validators) <= 2, f"refresh {refresh}: {len(validators)} validators cached"
    assert notes.catalog_version == 150


async def test_an_unchanged_listing_keeps_the_compiled_validator() -> None:
    upstreams = pool()
    notes = upstreams.upstreams["notes"]
    validators = ArgumentValidators(upstreams)
    await notes.refresh_catalog([tool("echo", "text")])
    entry = upstreams.entry("notes__echo")
    assert entry is not None and validators.problem(entry, {}) == "(arguments): 'text' is a required property"
    first = dict(validators._validators)
    for _ in range(20):
        await notes.refresh_catalog([tool("echo", "text")])
    again = upstreams.entry("notes__echo")
    assert again is not None and validators.problem(again, {"text": 1}) == "text: 1 is not of type 'string'"
    assert validators._validators == first and notes.catalog_version == 1


async def test_a_changed_definition_is_validated_against_its_new_schema() -> None:
    upstreams = pool()
    notes = upstreams.upstreams["notes"]
    validators = ArgumentValidators(upstreams)
    await notes.refresh_catalog([tool("echo", "text")])
    old = upstreams.entry("notes__echo")
    assert old is not None and validators.problem(old, {"text": "a"}) is None
    await notes.refresh_catalog([tool("echo", "text", "integer")])
    new = upstreams.entry("notes__echo")
    assert new is not None and new.definition_hash != old.definition_hash
    assert validators.problem(new, {"text": "a"}) == "text: 'a' is not of type 'integer'"
