"""LoRA training recipe: `train(cfg)` reads top to bottom.

setup (seed, devices, run dir, logs) -> tokenizer and base model -> data (validate, template
round trip, tokenize with loss on assistant turns only) -> LoRA -> optimizer and LR schedule ->
resume -> loop (grad accumulation, bf16 autocast, progress bar with loss and tokens/s, periodic
eval loss and checkpoints) -> adapter, metrics JSON and loss-curve PNG in the run directory.

One process per device. Under torchrun / accelerate launch (WORLD_SIZE > 1) each rank takes every
WORLD_SIZE-th micro-batch and DistributedDataParallel averages gradients; rank 0 writes.
Logits are computed only at supervised positions (the LM head over a 49k vocabulary is the
single largest matmul, and most positions are prompt).
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from finetune import data, roundtrip
from finetune.base_model import check_base
from finetune.chat import render
from finetune.config import TrainConfig

log = logging.getLogger("warden.finetune")


@dataclass(frozen=True, slots=True)
class Tokenized:
    input_ids: list[int]
    supervised: list[bool]
    """Whether the token at each position is one the model must produce."""


def tokenize(tokenizer: Any, examples: list[data.Example], max_len: int) -> tuple[list[Tokenized], int]:
    """Tokenize rendered examples; returns the kept ones and how many were too long."""
    out, dropped = [], 0
    for ex in examples:
        r = render(tokenizer, ex)
        enc = tokenizer(r.text, add_special_tokens=False, return_offsets_mapping=True)
        sup = [any(a <= s < b for a, b in r.spans) for s, _ in enc["offset_mapping"]]
        if len(enc["input_ids"]) > max_len or not any(sup):
            dropped += 1
            continue
        out.append(Tokenized(enc["input_ids"], sup))
    return out, dropped


def batches(items: list[Tokenized], batch_size: int, by_length: bool, seed: int) -> list[list[int]]:
    """One epoch of micro-batches (indices). By length: shuffle, sort within windows of 50 batches."""
    rng = random.Random(seed)
    order = list(range(len(items)))
    rng.shuffle(order)
    if by_length:
        window = batch_size * 50
        order = [
            i
            for w in range(0, len(order), window)
            for i in sorted(order[w : w + window], key=lambda i: len(items[i].input_ids))
        ]
    out = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    rng.shuffle(out)
    return out


def collate(items: list[Tokenized], pad_id: int, device: torch.device) -> dict[str, torch.Tensor]:
    """Pad to the longest in the batch (dynamic padding)."""
    n = max(len(t.input_ids) for t in items)
    ids = torch.full((len(items), n), pad_id, dtype=torch.long)
    mask = torch.zeros((len(items), n), dtype=torch.long)
    sup = torch.zeros((len(items), n), dtype=torch.bool)
    for i, t in enumerate(items):
        ids[i, : len(t.input_ids)] = torch.tensor(t.input_ids)
        mask[i, : len(t.input_ids)] = 1
        sup[i, : len(t.input_ids)] = torch.tensor(t.supervised)
    return {"input_ids": ids.to(device), "attention_mask": mask.to(device), "supervised": sup.to(device)}


class SupervisedLoss(nn.Module):
    """Summed next-token loss on supervised positions; the LM head runs only there."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, supervised: torch.Tensor) -> torch.Tensor:
        causal_lm = self.model.get_base_model()  # type: ignore[operator]
        hidden = causal_lm.model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        keep = supervised[:, 1:]
        logits = causal_lm.lm_head(hidden[:, :-1][keep])
        return F.cross_entropy(logits.float(), input_ids[:, 1:][keep], reduction="sum")


def lr_lambda(cfg: TrainConfig) -> Any:
    def f(step: int) -> float:
        if step < cfg.warmup_steps:
            return (step + 1) / (cfg.warmup_steps + 1)
        progress = (step - cfg.warmup_steps) / max(1, cfg.max_steps - cfg.warmup_steps)
        if cfg.lr_schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
        if cfg.lr_schedule == "linear":
            return max(0.0, 1 - progress)
        return 1.0

    return f


def load_model(cfg: TrainConfig, device: torch.device) -> tuple[Any, Any]:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = Path(cfg.base).expanduser()
    check_base(base)
    tokenizer = AutoTokenizer.from_pretrained(base)
    # bf16 on GPU; on CPU fp32 weights under bf16 autocast measured faster than bf16 weights.
    dtype = torch.bfloat16 if cfg.precision == "bf16" and device.type == "cuda" else torch.float32
    model = AutoModelForCausalLM.from_pretrained(base, dtype=dtype).to(device)  # type: ignore[arg-type]
    lora = LoraConfig(
        r=cfg.lora_r,
        lora_alpha=cfg.lora_alpha,
        lora_dropout=cfg.lora_dropout,
        target_modules=cfg.lora_targets,
        task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)  # LoRA weights are created in fp32 (autocast_adapter_dtype)
    return tokenizer, model


@torch.no_grad()
def eval_loss(loss_fn: nn.Module, items: list[Tokenized], cfg: TrainConfig, pad_id: int, device: torch.device) -> float:
    loss_fn.eval()
    total, n = 0.0, 0
    for idx in batches(items, cfg.batch_size, True, 0):
        b = collate([items[i] for i in idx], pad_id, device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
            total += float(loss_fn(**b).detach())
        n += int(b["supervised"][:, 1:].sum())
    loss_fn.train()
    return total / max(1, n)


def save_checkpoint(path: Path, model: Any, opt: Any, sched: Any, state: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()}, tmp / "trainer.pt")
    (tmp / "state.json").write_text(json.dumps(state))
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)


def plot_loss(history: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    tr = [h for h in history if "loss" in h]
    ev = [h for h in history if "eval_loss" in h]
    ax.plot([h["step"] for h in tr], [h["loss"] for h in tr], label="train loss")
    if ev:
        ax.plot([h["step"] for h in ev], [h["eval_loss"] for h in ev], "o-", label="eval loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss per supervised token")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def train(cfg: TrainConfig, resume: bool = False) -> dict[str, Any]:
    # --- setup: seed, devices, run directory, logs
    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    if world > 1:
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    device = torch.device(f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if torch.cuda.is_available() else "cpu")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    run = Path(cfg.run_dir)
    main = rank == 0
    if main:
        run.mkdir(parents=True, exist_ok=True)
        (run / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
        handler = logging.FileHandler(run / "train.log")
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)

    # --- tokenizer, base model, LoRA
    tokenizer, model = load_model(cfg, device)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log.info("base %s, trainable LoRA parameters %d, device %s, world %d", cfg.base, trainable, device, world)

    # --- data: validate, round trip through the template and the server's parser, tokenize
    train_ex, eval_ex = data.load(Path(cfg.train_file)), data.load(Path(cfg.eval_file))
    roundtrip.check(tokenizer, train_ex + eval_ex)
    train_items, dropped = tokenize(tokenizer, train_ex, cfg.max_len)
    eval_items, _ = tokenize(tokenizer, eval_ex[: cfg.eval_max_examples], cfg.max_len)
    if not train_items:
        raise ValueError(f"no training example fits max_len={cfg.max_len}")
    log.info("train %d examples (%d longer than max_len dropped), eval %d", len(train_items), dropped, len(eval_items))
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    # --- loss module (DDP wraps it so gradients sync), optimizer, LR schedule
    loss_fn: nn.Module = SupervisedLoss(model)
    if world > 1:
        loss_fn = nn.parallel.DistributedDataParallel(
            loss_fn, device_ids=[device.index] if device.index is not None else None
        )
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg))

    # --- resume
    step, history = 0, []
    ckpt = run / "checkpoint"
    if resume and (ckpt / "state.json").is_file():
        from peft import set_peft_model_state_dict
        from safetensors.torch import load_file

        set_peft_model_state_dict(model, load_file(ckpt / "adapter_model.safetensors"))
        states = torch.load(ckpt / "trainer.pt", weights_only=False)
        opt.load_state_dict(states["optimizer"])
        sched.load_state_dict(states["scheduler"])
        saved = json.loads((ckpt / "state.json").read_text())
        step, history = saved["step"], saved["history"]
        log.info("resumed from %s at step %d", ckpt, step)

    # --- the loop: micro-batches cycle through epochs in a seeded order; resume skips consumed ones
    def micro_batches() -> Any:
        epoch = 0
        while True:
            for i, idx in enumerate(batches(train_items, cfg.batch_size, cfg.group_by_length, cfg.seed + epoch)):
                if i % world == rank:
                    yield idx
            epoch += 1

    stream = micro_batches()
    for _ in range(step * cfg.grad_accum):
        next(stream)
    from tqdm import tqdm

    bar = tqdm(total=cfg.max_steps, initial=step, disable=not main, dynamic_ncols=True)
    t_start, tokens_total = time.perf_counter(), 0
    model.train()
    while step < cfg.max_steps:
        t0 = time.perf_counter()
        micro = [collate([train_items[i] for i in next(stream)], pad_id, device) for _ in range(cfg.grad_accum)]
        n_sup = sum(int(b["supervised"][:, 1:].sum()) for b in micro)
        n_tok = sum(int(b["attention_mask"].sum()) for b in micro)
        loss_sum = 0.0
        for b in micro:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
                loss = loss_fn(**b)
            (loss / n_sup).backward()
            loss_sum += float(loss.detach())
        grad_norm = float(torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm))
        opt.step()
        sched.step()
        opt.zero_grad(set_to_none=True)
        step += 1
        dt = time.perf_counter() - t0
        tokens_total += n_tok
        rec = {
            "step": step,
            "loss": loss_sum / n_sup,
            "lr": sched.get_last_lr()[0],
            "grad_norm": grad_norm,
            "tokens": n_tok,
            "tokens_per_s": n_tok * world / dt,
            "step_s": dt,
        }
        history.append(rec)
        bar.set_postfix(loss=f"{rec['loss']:.3f}", tok_s=f"{rec['tokens_per_s']:.0f}")
        bar.update(1)
        if main and step % max(1, cfg.log_every) == 0:
            log.info(json.dumps(rec))
        if main and eval_items and cfg.eval_every and step % cfg.eval_every == 0:
            history.append({"step": step, "eval_loss": eval_loss(loss_fn, eval_items, cfg, pad_id, device)})
            log.info(json.dumps(history[-1]))
        if main and cfg.save_every and step % cfg.save_every == 0:
            save_checkpoint(ckpt, model, opt, sched, {"step": step, "history": history})
        if cfg.max_minutes and time.perf_counter() - t_start > cfg.max_minutes * 60:
            log.info("stopping at step %d: max_minutes %.1f reached", step, cfg.max_minutes)
            break
    bar.close()
    train_s = time.perf_counter() - t_start

    # --- results: adapter, checkpoint, metrics, loss curve
    metrics: dict[str, Any] = {
        "steps": step,
        "train_seconds": train_s,
        "tokens": tokens_total,
        "tokens_per_s": tokens_total * world / max(train_s, 1e-9),
        "train_examples": len(train_items),
        "dropped_too_long": dropped,
        "trainable_params": trainable,
    }
    if main:
        if eval_items:
            history.append({"step": step, "eval_loss": eval_loss(loss_fn, eval_items, cfg, pad_id, device)})
            metrics["eval_loss"] = history[-1]["eval_loss"]
        first = [h["loss"] for h in history if "loss" in h][:5]
        last = [h["loss"] for h in history if "loss" in h][-5:]
        metrics["train_loss_first5"], metrics["train_loss_last5"] = sum(first) / len(first), sum(last) / len(last)
        save_checkpoint(ckpt, model, opt, sched, {"step": step, "history": history})
        model.save_pretrained(run / "adapter")
        data.write_json(run / "metrics.json", {"metrics": metrics, "history": history})
        plot_loss(history, run / "loss.png")
        log.info("done: %s", json.dumps(metrics))
    if world > 1:
        torch.distributed.destroy_process_group()
    return metrics
