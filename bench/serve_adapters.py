"""Decode speed of a LoRA adapter served by vLLM: base, adapter, and the adapter merged into the base.

Three vLLM servers (the serving code path of `warden serve`), one after another, on this machine:
  base     the base model, LoRA off
  adapter  the base model with the adapter as a LoRA module (requests name the adapter)
  merged   base + adapter merged into one model (finetune.export.export_merged), LoRA off
Each answers the same prompt `--runs` times (after a warm-up) with temperature 0 and exactly
`--tokens` generated tokens (ignore_eos), streamed; decode tokens/s is measured from the first
streamed token to the last, so prefill is left out. Prints the median of each and the ratio to
base, all from this one run (absolute numbers on a shared 2-core machine mean little; ratios do).

    python bench/serve_adapters.py [--adapter DIR] [--tokens 128] [--runs 3]

The adapter defaults to the demo's (.warden/demo/run/adapter), else the tests' (trained once, cached).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from finetune.base_model import DEFAULT_CACHE, fetch
from serving.install import find_python, probe
from serving.ports import free_port
from serving.process import VllmServer, build_spec, launch

PROMPT = "Write a short story about a lighthouse keeper who finds a message in a bottle."
DEFAULT_ADAPTER = Path(".warden/demo/run/adapter")


def decode_rate(server: VllmServer, model: str, tokens: int) -> float:
    """Generated tokens per second after the first token, for one streamed request."""
    body = {
        "model": model,
        "messages": [{"role": "user", "content": PROMPT}],
        "temperature": 0,
        "max_tokens": tokens,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    first = last = 0.0
    generated = 0
    with httpx.stream("POST", f"{server.url}/v1/chat/completions", json=body, timeout=600) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                generated = chunk["usage"]["completion_tokens"]
            if chunk.get("choices") and chunk["choices"][0]["delta"].get("content"):
                last = time.perf_counter()
                first = first or last
    return (generated - 1) / (last - first)


def measure(server: VllmServer, model: str, tokens: int, runs: int) -> float:
    decode_rate(server, model, 16)  # warm-up
    return statistics.median(decode_rate(server, model, tokens) for _ in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--adapter", type=Path, help="trained adapter (default: the demo's, else the tests' adapter)")
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    base = fetch(args.base)
    adapter = args.adapter or (DEFAULT_ADAPTER if (DEFAULT_ADAPTER / "adapter_config.json").is_file() else None)
    if adapter is None:
        from tests.serving.vllm_harness import time_tools, train_adapter

        adapter = train_adapter(base, time_tools())  # cached after the first time
    print(f"adapter: {adapter}", flush=True)
    install = probe(find_python(None))
    from finetune.export import export_merged

    rates: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="warden-bench-") as tmp:
        merged = export_merged(base, adapter, Path(tmp) / base.name)
        setups = {
            "base": (build_spec(install, base, [], free_port(), enable_lora=False), base.name),
            "adapter": (build_spec(install, base, [("adapter", adapter)], free_port()), "adapter"),
            "merged": (build_spec(install, merged, [], free_port(), enable_lora=False), merged.name),
        }
        for label, (spec, model) in setups.items():
            print(f"starting vLLM for {label}…", flush=True)
            with launch(spec, Path(tmp) / f"{label}.log", timeout_s=600) as server:
                rates[label] = measure(server, model, args.tokens, args.runs)
            print(f"  {label}: {rates[label]:.1f} tokens/s", flush=True)

    print(f"\nvLLM {install.version} ({install.device}), {args.tokens} tokens, median of {args.runs}, temperature 0")
    print(f"{'':8} {'tokens/s':>9} {'ratio to base':>14}")
    for label, rate in rates.items():
        print(f"{label:8} {rate:9.1f} {rate / rates['base']:14.2f}")


if __name__ == "__main__":
    main()
