"""What Warden asks a running vLLM: the models it serves, and loading an adapter at runtime.

Never: starts or stops a server (``serving.process`` does).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx

from serving.errors import ServeError


@dataclass(frozen=True, slots=True)
class ServedModel:
    id: str
    root: str
    parent: str | None


async def served_models(client: httpx.AsyncClient, url: str) -> list[ServedModel]:
    response = await client.get(f"{url}/v1/models")
    response.raise_for_status()
    return [ServedModel(m["id"], str(m.get("root") or ""), m.get("parent")) for m in response.json()["data"]]


async def load_adapter(client: httpx.AsyncClient, url: str, name: str, path: Path) -> None:
    """Load an adapter into the running server (vLLM's runtime endpoint, loopback only)."""
    response = await client.post(f"{url}/v1/load_lora_adapter", json={"lora_name": name, "lora_path": str(path)})
    if response.status_code != 200:
        raise ServeError(f"vLLM refused to load adapter {name!r} ({response.status_code}): {response.text[:300]}")
