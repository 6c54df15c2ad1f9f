"""What the gateway's client connects to for one upstream, and with which environment or headers.

Owns: turning an ``UpstreamSpec`` into the SDK's connect target on every (re)connect: a stdio
server's ``StdioServerParameters`` (its literal ``env`` plus the ``env_from`` variables copied
from the gateway's environment), or a Streamable HTTP client whose headers come from the
gateway's environment (``headers_from_env``) and whose transport is ``IsolatingTransport``
(``gateway.upstream.delivery``). A named variable that is not set fails the connect with
``UpstreamUnavailable``.

Never: forwards anything from the agent's HTTP request (headers, credentials) upstream.
Headers for HTTP upstreams come only from the gateway's own environment, named in the
upstreams file; stdio upstreams get the SDK's minimal default environment plus what the
file names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx2
from mcp.client.stdio import StdioServerParameters
from mcp.client.streamable_http import streamable_http_client

from gateway.upstream.delivery import IsolatingTransport
from gateway.upstream.errors import UpstreamUnavailable
from gateway.upstream.spec import UpstreamSpec


def connect_target(
    spec: UpstreamSpec, environ: Mapping[str, str]
) -> tuple[StdioServerParameters | Any, httpx2.AsyncClient | None]:
    """The SDK target for ``spec``, and the HTTP client to close with the session (None for stdio)."""
    if spec.command is not None:
        env = dict(spec.env)
        for var, source in spec.env_from.items():
            if source not in environ:
                raise UpstreamUnavailable(f"environment variable {source} (for {var}) is not set")
            env[var] = environ[source]
        return StdioServerParameters(command=spec.command, args=spec.args, env=env or None, cwd=spec.cwd), None
    headers: dict[str, str] = {}
    for header, source in spec.headers_from_env.items():
        if source not in environ:
            raise UpstreamUnavailable(f"environment variable {source} (for header {header}) is not set")
        headers[header] = environ[source]
    http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0, read=300.0), transport=IsolatingTransport())
    assert spec.url is not None
    return streamable_http_client(spec.url, http_client=http), http
