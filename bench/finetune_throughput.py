"""Training tokens/s: Warden's LoRA loop against a plain fp32 peft loop, in one run.

Baseline: fp32 weights, batches in random order padded to the longest, the HF forward with
`labels` (-100 off the assistant turns; logits over the whole vocabulary at every position).
Warden: the precision `finetune.precision` chooses for this machine (`--precision auto`: bf16 autocast
where bf16 is native, fp32 elsewhere), length-grouped batches with dynamic padding, LM head only at
supervised positions (finetune/train.py). Same base model, LoRA config, data, batch size and optimizer.
Steps alternate between the two loops so that other load on the machine hits both alike.
Tokens are real (non-padding) tokens. Prints the machine (CPU model, flags, threads, load), the
precision chosen and why, both rates and the ratio.

    python bench/finetune_throughput.py --steps 6 --batch-size 4
    python bench/finetune_throughput.py --precision fp32     # Warden's loop in fp32 (the AVX2-only CPU's choice)
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from pathlib import Path

import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer

from finetune import data
from finetune.base_model import fetch
from finetune.batches import SupervisedLoss, Tokenized, batches, collate, tokenize
from finetune.precision import choose, probe


def lora(model: torch.nn.Module) -> torch.nn.Module:
    cfg = LoraConfig(
        r=16,
        lora_alpha=32,
        lora_dropout=0.05,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, cfg)


def main() -> None:  # noqa: PLR0915  (argument parsing + the interleaved runs, read top to bottom)
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--examples", type=int, default=400)
    ap.add_argument("--max-len", type=int, default=384)
    ap.add_argument("--precision", default="auto", help="auto | bf16 | fp32, as the training config's field")
    ap.add_argument("--force-precision", action="store_true", help="bf16 even where it is not native")
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    machine = probe()
    precision = choose(args.precision, machine, args.force_precision)
    print(f"machine: {machine.describe()}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.2f}")
    print(f"warden precision {precision.value}: {precision.reason}", flush=True)

    base = fetch()
    tok = AutoTokenizer.from_pretrained(base)
    train, _ = data.build([], 0, args.examples, [], seed=0, eval_fraction=0.1, by_tool=False)
    items, _ = tokenize(tok, train, args.max_len)
    pad = tok.pad_token_id
    cpu = torch.device("cpu")

    torch.manual_seed(0)
    plain = lora(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32))
    ours = lora(AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32))
    ours_loss = SupervisedLoss(ours)
    opt_p = torch.optim.AdamW([p for p in plain.parameters() if p.requires_grad], lr=2e-4)
    opt_o = torch.optim.AdamW([p for p in ours.parameters() if p.requires_grad], lr=2e-4)
    rng = random.Random(0)
    random_batches = [rng.sample(range(len(items)), args.batch_size) for _ in range(args.steps + 1)]
    grouped = batches(items, args.batch_size, True, 0)[: args.steps + 1]

    def step_plain(idx: list[int]) -> tuple[int, float]:
        b = collate([items[i] for i in idx], pad, cpu)
        labels = b["input_ids"].masked_fill(~b["supervised"], -100)
        t = time.perf_counter()
        plain(input_ids=b["input_ids"], attention_mask=b["attention_mask"], labels=labels).loss.backward()
        opt_p.step()
        opt_p.zero_grad()
        return int(b["attention_mask"].sum()), time.perf_counter() - t

    def step_ours(idx: list[int]) -> tuple[int, float]:
        sel: list[Tokenized] = [items[i] for i in idx]
        b = collate(sel, pad, cpu)
        t = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision.value == "bf16"):
            loss = ours_loss(**b)
        (loss / b["supervised"][:, 1:].sum()).backward()
        opt_o.step()
        opt_o.zero_grad()
        return int(b["attention_mask"].sum()), time.perf_counter() - t

    step_plain(random_batches[0])  # warm-up, not timed
    step_ours(grouped[0])
    res: dict[str, list[tuple[int, float]]] = {"plain fp32 peft": [], "warden": []}
    for i in range(1, args.steps + 1):
        res["plain fp32 peft"].append(step_plain(random_batches[i]))
        res["warden"].append(step_ours(grouped[i]))
        print(f"step {i}: plain {res['plain fp32 peft'][-1]}, warden {res['warden'][-1]}", flush=True)
    rate = {k: sum(n for n, _ in v) / sum(s for _, s in v) for k, v in res.items()}
    for k, v in res.items():
        print(f"{k:16s} {rate[k]:8.1f} tokens/s  (median step {statistics.median(s for _, s in v):.2f} s)")
    print(f"ratio warden ({precision.value}) / plain: {rate['warden'] / rate['plain fp32 peft']:.2f}x")
    Path("runs").mkdir(exist_ok=True)


if __name__ == "__main__":
    main()
