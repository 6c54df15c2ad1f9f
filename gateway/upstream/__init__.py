"""Connections to upstream MCP servers (stdio processes and Streamable HTTP endpoints).

Modules, each with one job (import from them; this package re-exports nothing):
`spec` (the upstreams file), `target` (what to connect to, with which environment or
headers), `delivery` (the HTTP transport and which failed deliveries are retried),
`connection` (one supervised session: reconnect, probe, listings, sending requests),
`listings` (every page of tools, resources, templates and prompts), `catalog`
(``definition_hash``, ``CatalogEntry``), `correlation` (which in-flight call an upstream's
server request or log message belongs to), `calls` (the SDK calls of a forwarded request),
`errors` (the three upstream errors and telling failures apart), `pool` (all upstreams and
the catalog under public names).
"""
