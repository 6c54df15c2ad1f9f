"""The processes the conformance tests start besides the gateway: the conformance upstream
(tests/upstreams/conformance_server.py over Streamable HTTP) and the bearer proxy that puts
an identity's key on the suite's requests (tests/conformance/bearer_proxy.py).

Owns: starting each on a free port, waiting until it listens, and stopping it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from serving.ports import free_port
from tests.gateway.harness import REPO, wait_until


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass(frozen=True)
class Listening:
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def mcp_url(self) -> str:
        return f"{self.url}/mcp"


@contextlib.contextmanager
def _listening(module: str, args: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[Listening]:
    port = free_port()
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, str(port), *args],
            cwd=REPO,
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until(lambda: _port_open(port) or proc.poll() is not None, 30, f"{module} to listen")
        assert proc.poll() is None, f"{module} exited at start:\n{log.read_text(errors='replace')}"
        yield Listening(port, log)
    finally:
        proc.kill()
        proc.wait()


@contextlib.contextmanager
def run_conformance_upstream(tmp: Path) -> Iterator[Listening]:
    """The conformance upstream over Streamable HTTP; its MCP endpoint is `.mcp_url`."""
    with _listening("tests.upstreams.conformance_server", [], tmp / "conformance-upstream.log") as upstream:
        yield upstream


@contextlib.contextmanager
def run_bearer_proxy(tmp: Path, target: str, key: str) -> Iterator[Listening]:
    """A forwarder to `target` (a base URL) that adds `Authorization: Bearer key`."""
    log = tmp / "bearer-proxy.log"
    with _listening("tests.conformance.bearer_proxy", [target], log, {"BEARER_PROXY_KEY": key}) as proxy:
        yield proxy
