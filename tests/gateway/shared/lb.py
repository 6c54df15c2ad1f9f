"""A real HAProxy (Debian's) in front of gateway replicas, on the shipped examples/haproxy.cfg.

Only the ``bind`` port and the ``server`` lines of that file are replaced; ``sticky=False`` also
drops its ``stick`` lines (the control showing what session stickiness is for). Missing
``haproxy`` FAILS the caller (``apt-get install haproxy``), never skips it.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.gateway.harness import REPO, _port_open, free_port, wait_until

CONFIG = REPO / "examples" / "haproxy.cfg"


def render(port: int, backends: list[int], *, sticky: bool = True) -> str:
    text = CONFIG.read_text()
    text = re.sub(r"(?m)^    bind .*$", f"    bind 127.0.0.1:{port}", text)
    text = re.sub(r"(?m)^    server .*\n", "", text)
    text += "".join(f"    server gw{i} 127.0.0.1:{p}\n" for i, p in enumerate(backends, 1))
    if not sticky:
        text = re.sub(r"(?m)^    stick.*\n", "", text)
    return text


def _answers_ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def run_haproxy(tmp: Path, backends: list[int], *, sticky: bool = True) -> Iterator[str]:
    """HAProxy balancing over ``backends`` (ports); yields its base URL once it listens."""
    binary = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(binary).exists():
        pytest.fail("haproxy not found: run `apt-get install haproxy`", pytrace=False)
    port = free_port()
    config = tmp / f"haproxy-{port}.cfg"
    config.write_text(render(port, backends, sticky=sticky))
    check = subprocess.run([binary, "-c", "-f", str(config)], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    log = (tmp / f"haproxy-{port}.log").open("wb")
    proc = subprocess.Popen([binary, "-db", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_until(lambda: _port_open(port) or proc.poll() is not None, 30, "haproxy to listen")
        assert proc.poll() is None, "haproxy exited at start"
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: _answers_ready(url), 30, "a replica in rotation behind haproxy")
        yield url
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()
