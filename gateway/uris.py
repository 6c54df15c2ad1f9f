"""Public resource URIs: how an upstream's resource URIs appear to clients, and back.

Owns: the mapping. For an upstream mounted with a prefix (the default), the public URI of
its ``uri`` is ``f"{server}+{uri}"``; a server name cannot hold ``+``, so the first ``+``
ends it, and RFC 6570 templates stay expandable (``fs+file:///{path}``). For an upstream
mounted without a prefix the URI is unchanged, and it belongs to the first unprefixed
upstream that lists it (or one of its templates matches it). ``rewrite`` turns every URI in
a result an upstream sent (resource contents, ``resource_link`` and embedded resources in
tool results and prompt messages) into its public URI, so a client can read it back.

Must never: decide whether a caller may see a URI (policy does), or hand back a URI
that would reach a different upstream than the one that sent it.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import mcp_types as types
from pydantic import BaseModel

from gateway.upstream.connection import Upstream
from gateway.upstream.pool import UpstreamPool

SEPARATOR = "+"

_OPAQUE = frozenset({"_meta", "structuredContent"})
"""Keys whose values are the upstream's own data, never resource objects: passed through unchanged."""

M = TypeVar("M", bound=BaseModel)


def prefixed(upstream: Upstream) -> bool:
    """Whether the upstream's names and URIs are namespaced (``prefix: false`` in the upstreams file: not)."""
    return upstream.spec.prefix


def public_uri(upstream: Upstream, uri: str) -> str:
    return f"{upstream.name}{SEPARATOR}{uri}" if prefixed(upstream) else uri


def resolve(pool: UpstreamPool, public: str) -> tuple[Upstream, str] | None:
    """The upstream a public URI goes to and the upstream's own URI; None when no upstream owns it."""
    server, sep, uri = public.partition(SEPARATOR)
    upstream = pool.upstreams.get(server) if sep else None
    if upstream is not None and prefixed(upstream) and uri:
        return upstream, uri
    unprefixed = [u for u in pool.upstreams.values() if not prefixed(u)]
    owner = next((u for u in unprefixed if u.offerings.resource(public) is not None), None)
    owner = owner or next((u for u in unprefixed if matching_template(u, public) is not None), None)
    return (owner, public) if owner is not None else None


def matching_template(upstream: Upstream, uri: str) -> types.ResourceTemplate | None:
    """The first template of the upstream that ``uri`` (the upstream's own) is an expansion of."""
    return next((t for t in upstream.offerings.templates if template_pattern(t.uri_template).fullmatch(uri)), None)


def template_pattern(template: str) -> re.Pattern[str]:
    """A regex matching expansions of an RFC 6570 template: each ``{...}`` expression matches any text."""
    parts = re.split(r"\{[^{}]*\}", template)
    return re.compile(".*?".join(re.escape(part) for part in parts), re.DOTALL)


def expand(template: str, values: dict[str, str]) -> str | None:
    """A simple (level 1) expansion, or None when the template has an expression not in ``values``."""
    names = re.findall(r"\{([^{}]*)\}", template)
    if any(name not in values for name in names):
        return None
    return re.sub(r"\{([^{}]*)\}", lambda m: values[m.group(1)], template)


def rewrite(upstream: Upstream, result: M) -> M:
    """``result`` with every resource URI in it replaced by its public URI (unchanged if unprefixed)."""
    if not prefixed(upstream):
        return result
    data = result.model_dump(by_alias=True, mode="json", exclude_none=True)
    return type(result).model_validate(_rewrite_json(upstream, data))


def _rewrite_json(upstream: Upstream, value: Any) -> Any:
    """Rewrite ``uri`` of every resource-shaped object: contents, links, embedded resources."""
    if isinstance(value, list):
        return [_rewrite_json(upstream, item) for item in value]
    if not isinstance(value, dict):
        return value
    out = {key: item if key in _OPAQUE else _rewrite_json(upstream, item) for key, item in value.items()}
    if isinstance(value.get("uri"), str) and _resource_shaped(value):
        out["uri"] = public_uri(upstream, value["uri"])
    return out


def _resource_shaped(value: dict[str, Any]) -> bool:
    """Resource contents (text or blob) or a resource link; not arbitrary tool output that has a ``uri``."""
    return value.get("type") == "resource_link" or "text" in value or "blob" in value
