"""What Warden asks a running vLLM: the models it serves, and loading an adapter at runtime.

Every request presents the launch's API key (serving.keys); a 401 is a ServeError saying so.

Never: starts or stops a server (``serving.process`` does).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import httpx

from serving.errors import ServeError
from serving.keys import bearer


@dataclass(frozen=True, slots=True)
class ServedModel:
    id: str
    root: str
    parent: str | None


def _refused(response: httpx.Response) -> ServeError | None:
    if response.status_code == 401:
        return ServeError(
            f"vLLM at {response.request.url.host}:{response.request.url.port} refused Warden's API key: "
            "set WARDEN_VLLM_API_KEY to the key it was started with, or start it with `warden serve`"
        )
    return None


async def served_models(client: httpx.AsyncClient, url: str, api_key: str | None) -> list[ServedModel]:
    response = await client.get(f"{url}/v1/models", headers=bearer(api_key))
    if (refused := _refused(response)) is not None:
        raise refused
    response.raise_for_status()
    return [ServedModel(m["id"], str(m.get("root") or ""), m.get("parent")) for m in response.json()["data"]]


async def load_adapter(client: httpx.AsyncClient, url: str, name: str, path: Path, api_key: str | None) -> None:
    """Load an adapter into the running server (vLLM's runtime endpoint, loopback only, behind the key)."""
    body = {"lora_name": name, "lora_path": str(path)}
    response = await client.post(f"{url}/v1/load_lora_adapter", json=body, headers=bearer(api_key))
    if (refused := _refused(response)) is not None:
        raise refused
    if response.status_code != 200:
        raise ServeError(f"vLLM refused to load adapter {name!r} ({response.status_code}): {response.text[:300]}")
