"""vLLM on this machine in each dtype, on the work agents send: time to first token and decode tokens/s
for a ~2k-token tool-catalog prompt.

One vLLM server per dtype (the serving code path of `warden serve`: serving.process.launch), one after
another, the base model with LoRA off. The prompt is a user request rendered with the chat template and
a synthesized catalog of tools (finetune.synth) grown until it is `--prompt-tokens` long, as an agent
with a large gateway catalog sends it. Each request starts with its own nonce, so vLLM's prefix cache
cannot answer it from an earlier one. Per run: time to first token (a streamed request, first token's
arrival) and decode tokens/s from the first token to the last of `--tokens` (ignore_eos). Prints the
machine (CPU model, flags, native bf16), the dtype `auto` picks here and why, the medians per dtype,
and the float32 / bfloat16 ratios.

    python bench/vllm_dtype.py [--prompt-tokens 2000] [--tokens 64] [--runs 3] [--dtypes bfloat16,float32]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from finetune.base_model import DEFAULT_CACHE, fetch
from finetune.precision import probe, vllm_dtype
from serving.install import find_python
from serving.install import probe as probe_vllm
from serving.ports import free_port
from serving.process import VllmServer, build_spec, launch

REQUEST = "What is the weather in Oslo tomorrow? Use the tools if one fits."


def catalog_prompt(base: Path, tokens: int) -> tuple[str, int]:
    """A rendered prompt whose tool catalog makes it about `tokens` long; (prompt, its token count)."""
    from transformers import AutoTokenizer

    from finetune import synth
    from finetune.chat import render_prompt

    tokenizer = AutoTokenizer.from_pretrained(base)
    rng = random.Random(0)
    tools: list[dict] = []
    prompt, n = "", 0
    for domain in synth.domains():
        tools += synth.synthetic_catalog(rng, [domain])
        prompt = render_prompt(tokenizer, [{"role": "user", "content": REQUEST}], tools)
        n = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        if n >= tokens:
            break
    return prompt, n


def timed(server: VllmServer, model: str, prompt: str, tokens: int) -> tuple[float, float]:
    """(seconds to the first token, decode tokens/s after it) for one streamed completion."""
    body = {
        "model": model,
        "prompt": prompt,
        "max_tokens": tokens,
        "temperature": 0,
        "ignore_eos": True,
        "add_special_tokens": False,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    sent = time.perf_counter()
    first = last = 0.0
    generated = 0
    with httpx.stream("POST", f"{server.url}/v1/completions", json=body, timeout=900) as response:
        response.raise_for_status()
        for line in response.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            chunk = json.loads(line[6:])
            if chunk.get("usage"):
                generated = chunk["usage"]["completion_tokens"]
            if chunk.get("choices") and chunk["choices"][0].get("text"):
                last = time.perf_counter()
                first = first or last
    return first - sent, (generated - 1) / max(last - first, 1e-9)


def measure(server: VllmServer, model: str, prompt: str, tokens: int, runs: int) -> tuple[float, float]:
    timed(server, model, "warm-up " + prompt, 4)
    results = [timed(server, model, f"[{run}:{time.time_ns()}] {prompt}", tokens) for run in range(runs)]
    return statistics.median(r[0] for r in results), statistics.median(r[1] for r in results)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", type=Path, default=DEFAULT_CACHE)
    parser.add_argument("--prompt-tokens", type=int, default=2000)
    parser.add_argument("--tokens", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--dtypes", default="bfloat16,float32")
    args = parser.parse_args()
    base = fetch(args.base)
    install = probe_vllm(find_python(None))
    machine = probe("cpu", with_torch=False)
    auto = vllm_dtype("auto", install.device, machine)
    print(f"machine: {machine.describe()}")
    print(f"vLLM {install.version} ({install.device}); dtype auto here: {auto.value} ({auto.reason})", flush=True)
    prompt, n = catalog_prompt(base, args.prompt_tokens)
    print(f"prompt: {n} tokens (tool catalog + one request); {args.tokens} generated tokens, median of {args.runs}")

    results: dict[str, tuple[float, float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="warden-bench-") as tmp:
        for dtype in args.dtypes.split(","):
            spec = build_spec(install, base, [], free_port(), max_model_len=4096, enable_lora=False, dtype=dtype)
            print(f"starting vLLM with --dtype {dtype}…", flush=True)

            def waiting(seconds: float, dtype: str = dtype) -> None:
                print(f"  still starting vLLM ({seconds:.0f} s, {dtype})…", flush=True)

            with launch(spec, Path(tmp) / f"{dtype}.log", timeout_s=900, progress=waiting) as server:
                healthy = time.monotonic() - server.started
                ttft, decode = measure(server, spec.served_name, prompt, args.tokens, args.runs)
            results[dtype] = (healthy, ttft, decode)
            print(f"  {dtype}: healthy {healthy:.0f} s, first token {ttft:.2f} s, decode {decode:.1f} tokens/s")

    print(f"\n{'dtype':9} {'healthy s':>9} {'TTFT s':>8} {'prefill tok/s':>13} {'decode tok/s':>12}")
    for dtype, (healthy, ttft, decode) in results.items():
        print(f"{dtype:9} {healthy:9.0f} {ttft:8.2f} {n / ttft:13.0f} {decode:12.1f}")
    if {"bfloat16", "float32"} <= set(results):
        bf, fp = results["bfloat16"], results["float32"]
        print(f"float32 / bfloat16: first token {fp[1] / bf[1]:.2f}x the time, decode {fp[2] / bf[2]:.2f}x the rate")


if __name__ == "__main__":
    main()
