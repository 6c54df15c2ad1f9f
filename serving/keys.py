"""The API key vLLM requires on its /v1 routes (``VLLM_API_KEY``), which only Warden holds.

vLLM's runtime adapter endpoints (``/v1/load_lora_adapter``) have no authorization of their own;
with a key, every /v1 route answers 401 without it, so another process on the host cannot load
an adapter behind the admin API's back. A key is generated per launch unless the operator sets
one (``vllm_api_key``); ``warden serve`` writes it to a 0600 file the gateway and the agent read.

Never: puts the key on a command line (``/proc/PID/cmdline`` is readable by every local user, and
the command line goes into the log) or into a log.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def new_api_key() -> str:
    return f"wvk_{secrets.token_urlsafe(32)}"


def bearer(api_key: str | None) -> dict[str, str]:
    """The request headers presenting `api_key` (none without one)."""
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}


def write_key_file(path: Path, api_key: str) -> None:
    """Write `api_key` to `path`, readable by this user only (a fresh file: never widen an old one's mode)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(api_key + "\n")
