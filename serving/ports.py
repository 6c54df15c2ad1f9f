"""Loopback addresses and free ports for the servers Warden starts (vLLM, test gateways, benchmarks).

Never: binds anything but loopback.
"""

from __future__ import annotations

import socket

LOOPBACK = "127.0.0.1"


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])
