"""A teacher model served for the run: vLLM launched the way `warden serve` launches it, on loopback.

`served(model_dir, log)` yields the OpenAI base URL, the served model name and the launch's API key,
and stops vLLM (with its engine) when the block ends. Never serves adapters (the teacher is a base
model) and never listens beyond loopback (serving.process).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Served:
    base_url: str
    """Ends in /v1."""
    model: str
    api_key: str


@contextlib.contextmanager
def served(
    model_dir: Path, log: Path, dtype: str = "auto", progress: Callable[[float], None] | None = None
) -> Iterator[Served]:
    from finetune.precision import vllm_dtype
    from gateway.config import Settings
    from serving.install import find_python, probe
    from serving.ports import free_port
    from serving.process import build_spec, launch

    install = probe(find_python(Settings().vllm_python))
    chosen = vllm_dtype(dtype, install.device)
    spec = build_spec(install, model_dir, [], free_port(), enable_lora=False, max_model_len=4096, dtype=chosen.value)
    with launch(spec, log, timeout_s=900, progress=progress) as server:
        yield Served(f"{server.url}/v1", spec.served_name, server.api_key)
