"""LoRA training recipe: `train(cfg)` is `setup -> loop -> finish`, each a few screen-sized functions.

setup: process group, device, precision (finetune.precision: `auto` is bf16 only where the device
computes it natively), run directory and log, tokenizer and base model with LoRA, data (validated,
round-tripped through the template and the server's parser, tokenized with loss on assistant turns
only: finetune.batches), optimizer and LR schedule, resume.
loop: micro-batches cycle through epochs in a seeded order; grad accumulation, autocast when bf16,
progress bar with loss and tokens/s, periodic eval loss and checkpoints.
finish: the final eval loss, checkpoint, adapter, metrics JSON and loss-curve PNG in the run directory.

`max_minutes` bounds the whole command (finetune.budget): a step starts only when the measured
seconds per token say it ends inside the budget with room for the final eval loss and saving; the
eval loss evaluates only the batches that fit and records how many. Why each stop happened is in
the log and in metrics.json.

One process per device. Under torchrun / accelerate launch (WORLD_SIZE > 1) each rank takes every
WORLD_SIZE-th micro-batch and DistributedDataParallel averages gradients; rank 0 writes, and every
rank stops where rank 0's budget says so. Never: truncates an example, or writes from a rank but 0.
"""

from __future__ import annotations

import json
import logging
import math
import os
import random
import shutil
import time
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from finetune import data, report, roundtrip
from finetune.base_model import check_base
from finetune.batches import SupervisedLoss, Tokenized, batches, collate, row_chunks, tokenize
from finetune.budget import Budget, Rate
from finetune.config import TrainConfig
from finetune.precision import Capability, Choice, choose, probe

log = logging.getLogger("warden.finetune")

FINISH_RESERVE_S = 10.0
"""Kept free for saving the checkpoint, the adapter and the plot (~2-3 s measured on 2 cores)."""
EVAL_RESERVE_SHARE = 0.1
"""Share of the budget the loop leaves for the final eval loss (at most what the whole eval needs)."""
EVAL_PER_TRAIN_TOKEN = 0.5
"""Until an eval batch was measured: an eval token costs this much of a training token (forward only)."""
PROBE_TOKENS = 64
PROBE_REPEATS = 3
"""Timed probe passes; the fastest is taken."""
"""Before the first step of a time-capped run: a forward pass over this many tokens of each sequence of
the first micro-batch measures the machine (an AVX2-only CPU in bf16 takes minutes for a step)."""
STEP_PER_FORWARD = 2.5
"""A LoRA step costs about this many forward passes (the frozen base needs input gradients only, ~1
forward; LoRA's own and the optimizer's share is small): 2 plus a margin."""


class TrainingError(RuntimeError):
    """Training cannot produce an adapter; the message says what to change."""


@dataclass
class Session:
    """What setup builds; the loop advances `step`, `history` and the counters; finish reads it all."""

    cfg: TrainConfig
    world: int
    rank: int
    device: torch.device
    capability: Capability
    precision: Choice
    budget: Budget
    run: Path
    model: Any
    loss_fn: nn.Module
    params: list[nn.Parameter]
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    train_items: list[Tokenized]
    eval_items: list[Tokenized]
    dropped: int
    pad_id: int
    trainable: int
    step: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    tokens_total: int = 0
    train_seconds: float = 0.0
    stop_reason: str = ""
    step_rate: Rate = field(default_factory=Rate)
    eval_rate: Rate = field(default_factory=Rate)

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def bf16(self) -> bool:
        return self.precision.value == "bf16"


def train(
    cfg: TrainConfig, resume: bool = False, capability: Capability | None = None, started: float | None = None
) -> dict[str, Any]:
    """Train; returns the metrics. `capability` (default: this machine's, probed) decides `precision: auto`;
    `started` (default: now) is when the command began, the start of the `max_minutes` budget."""
    s = setup(cfg, resume, capability, Budget.minutes(cfg.max_minutes, started))
    loop(s)
    return finish(s)


# ---- setup -------------------------------------------------------------------------------------


def setup(cfg: TrainConfig, resume: bool, capability: Capability | None, budget: Budget) -> Session:
    world, rank = int(os.environ.get("WORLD_SIZE", "1")), int(os.environ.get("RANK", "0"))
    if world > 1:
        torch.distributed.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    device = torch.device(f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if torch.cuda.is_available() else "cpu")
    capability = capability or probe("cuda" if device.type == "cuda" else "cpu")
    precision = choose(cfg.precision, capability, cfg.force_precision)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    random.seed(cfg.seed)
    run = Path(cfg.run_dir)
    if rank == 0:
        open_run_dir(run, cfg, capability, precision)
    log.info("machine: %s", capability.describe())
    log.info("precision %s: %s", precision.value, precision.reason)

    tokenizer, model = load_model(cfg, device, precision)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log.info("base %s, trainable LoRA parameters %d, device %s, world %d", cfg.base, trainable, device, world)
    train_items, eval_items, dropped = load_data(cfg, tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id

    loss_fn: nn.Module = SupervisedLoss(model)
    if world > 1:  # DDP wraps the loss module so that gradients sync
        loss_fn = nn.parallel.DistributedDataParallel(
            loss_fn, device_ids=[device.index] if device.index is not None else None
        )
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
    s = Session(
        cfg=cfg,
        world=world,
        rank=rank,
        device=device,
        capability=capability,
        precision=precision,
        budget=budget,
        run=run,
        model=model,
        loss_fn=loss_fn,
        params=params,
        opt=opt,
        sched=torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(cfg)),
        train_items=train_items,
        eval_items=eval_items,
        dropped=dropped,
        pad_id=pad_id,
        trainable=trainable,
    )
    if resume:
        load_checkpoint(s)
    return s


def open_run_dir(run: Path, cfg: TrainConfig, capability: Capability, precision: Choice) -> None:
    """The run directory with config.json (the config plus what was chosen, and why) and train.log."""
    run.mkdir(parents=True, exist_ok=True)
    chosen = {"precision": precision.value, "precision_reason": precision.reason, "machine": capability.to_dict()}
    (run / "config.json").write_text(json.dumps({**cfg.to_dict(), "chosen": chosen}, indent=2))
    handler = logging.FileHandler(run / "train.log")
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
    log.addHandler(handler)
    log.setLevel(logging.INFO)


def load_model(cfg: TrainConfig, device: torch.device, precision: Choice) -> tuple[Any, Any]:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = Path(cfg.base).expanduser()
    check_base(base)
    tokenizer = AutoTokenizer.from_pretrained(base)
    # bf16 on GPU; on CPU fp32 weights under bf16 autocast measured faster than bf16 weights.
    dtype = torch.bfloat16 if precision.value == "bf16" and device.type == "cuda" else torch.float32
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


def load_data(cfg: TrainConfig, tokenizer: Any) -> tuple[list[Tokenized], list[Tokenized], int]:
    """Validate, round trip through the template and the server's parser, tokenize: (train, eval, dropped)."""
    train_ex, eval_ex = data.load(Path(cfg.train_file)), data.load(Path(cfg.eval_file))
    roundtrip.check(tokenizer, train_ex + eval_ex)
    train_items, dropped = tokenize(tokenizer, train_ex, cfg.max_len)
    eval_items, _ = tokenize(tokenizer, eval_ex[: cfg.eval_max_examples], cfg.max_len)
    if not train_items:
        raise ValueError(f"no training example fits max_len={cfg.max_len}")
    log.info("train %d examples (%d longer than max_len dropped), eval %d", len(train_items), dropped, len(eval_items))
    return train_items, eval_items, dropped


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


def load_checkpoint(s: Session) -> None:
    """Continue from run_dir/checkpoint when there is one: LoRA weights, optimizer, schedule, history."""
    ckpt = s.run / "checkpoint"
    if not (ckpt / "state.json").is_file():
        return
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    set_peft_model_state_dict(s.model, load_file(ckpt / "adapter_model.safetensors"))
    states = torch.load(ckpt / "trainer.pt", weights_only=False)
    s.opt.load_state_dict(states["optimizer"])
    s.sched.load_state_dict(states["scheduler"])
    saved = json.loads((ckpt / "state.json").read_text())
    s.step, s.history = saved["step"], saved["history"]
    log.info("resumed from %s at step %d", ckpt, s.step)


# ---- the loop ----------------------------------------------------------------------------------


def micro_batches(s: Session) -> Iterator[list[int]]:
    """This rank's micro-batches, cycling through epochs in a seeded order; resume skips consumed ones."""

    def endless() -> Iterator[list[int]]:
        cfg, epoch = s.cfg, 0
        while True:
            for i, idx in enumerate(batches(s.train_items, cfg.batch_size, cfg.group_by_length, cfg.seed + epoch)):
                if i % s.world == s.rank:
                    yield idx
            epoch += 1

    stream = endless()
    for _ in range(s.step * s.cfg.grad_accum):
        next(stream)
    return stream


def loop(s: Session) -> None:
    from tqdm import tqdm

    stream = micro_batches(s)
    bar = tqdm(total=s.cfg.max_steps, initial=s.step, disable=not s.main, dynamic_ncols=True)
    t_start = time.perf_counter()
    s.model.train()
    while s.step < s.cfg.max_steps:
        micro = [collate([s.train_items[i] for i in next(stream)], s.pad_id, s.device) for _ in range(s.cfg.grad_accum)]
        if s.budget.limited and not s.step_rate.measured:
            probe_rate(s, micro[0])
        reason = step_cannot_fit(s, sum(b["input_ids"].numel() for b in micro))
        if agreed(s, reason is not None):
            s.stop_reason = reason or "another rank's budget ran out"
            log.info("stopping before step %d: %s", s.step + 1, s.stop_reason)
            break
        rec = train_step(s, micro)
        s.history.append(rec)
        bar.set_postfix(loss=f"{rec['loss']:.3f}", tok_s=f"{rec['tokens_per_s']:.0f}")
        bar.update(1)
        if s.main and s.step % max(1, s.cfg.log_every) == 0:
            log.info(json.dumps(rec))
        if s.main and s.eval_items and s.cfg.eval_every and s.step % s.cfg.eval_every == 0:
            s.history.append({"step": s.step, **eval_loss(s, reserve_s=finish_reserve(s))})
            log.info(json.dumps(s.history[-1]))
        if s.main and s.cfg.save_every and s.step % s.cfg.save_every == 0:
            save_checkpoint(s)
    else:
        s.stop_reason = f"max_steps {s.cfg.max_steps} reached"
    bar.close()
    if s.step == 0:  # nothing learned: saving an untrained adapter would pass for a trained one
        raise TrainingError(f"no training step fits the time budget ({s.stop_reason}); raise max_minutes")
    s.train_seconds = time.perf_counter() - t_start


def finish_reserve(s: Session) -> float:
    """Seconds the loop keeps free after its last step: saving, and the final eval loss's share."""
    if not s.budget.limited:
        return 0.0
    eval_tokens = sum(len(t.input_ids) for t in s.eval_items)
    rate = s.eval_rate.per_token() or (s.step_rate.per_token() or 0.0) * EVAL_PER_TRAIN_TOKEN
    return FINISH_RESERVE_S + min(rate * eval_tokens, EVAL_RESERVE_SHARE * s.budget.seconds)


@torch.no_grad()
def probe_rate(s: Session, batch: dict[str, torch.Tensor]) -> None:
    """Measure seconds per token with a short forward pass (the LM head at every position: an
    overestimate), after one to warm up, so that the first step is estimated too."""
    cut = {k: v[:, :PROBE_TOKENS] for k, v in batch.items()}
    cut["supervised"] = torch.ones_like(cut["supervised"])
    timings = []
    with torch.autocast(s.device.type, dtype=torch.bfloat16, enabled=s.bf16):
        s.loss_fn(**cut)  # the first call pays one-time costs (measured up to 2x the second)
        for _ in range(PROBE_REPEATS):
            t0 = time.perf_counter()
            s.loss_fn(**cut)
            timings.append(time.perf_counter() - t0)
    # The fastest pass: on a busy machine one pass can be descheduled for most of its time (one measured
    # 196 ms/token at load 18 where steps then ran at ~5 ms/token), and an outlier must not end a run at step 0.
    dt, tokens = min(timings), cut["input_ids"].numel()
    s.eval_rate.add(tokens, dt)
    s.step_rate.add(tokens, dt * STEP_PER_FORWARD)
    log.info("measured %.2f ms/token in a forward pass (%s, %d tokens)", dt / tokens * 1000, s.precision.value, tokens)


def step_cannot_fit(s: Session, tokens: int) -> str | None:
    """Why a step of `tokens` (padded) must not start, or None when it fits the budget."""
    estimate, reserve = s.step_rate.estimate(tokens), finish_reserve(s)
    if s.budget.fits(estimate, reserve):
        return None
    left, keep = s.budget.left(), f"plus {reserve:.0f} s kept for the final eval loss and saving"
    if estimate is None:
        return f"max_minutes {s.cfg.max_minutes:g}: {left:.0f} s left after setup, {keep}"
    per_token = estimate / max(1, tokens) * 1000
    return (
        f"max_minutes {s.cfg.max_minutes:g}: the next step needs ~{estimate:.1f} s (measured {per_token:.2f} ms/token "
        f"x {tokens} tokens), {keep}; {left:.0f} s are left"
    )


def agreed(s: Session, stop: bool) -> bool:
    """Whether any rank must stop (all ranks then stop together; DDP would hang otherwise)."""
    if s.world == 1:
        return stop
    flag = torch.tensor([1.0 if stop else 0.0], device=s.device)
    torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
    return bool(flag.item())


def train_step(s: Session, micro: list[dict[str, torch.Tensor]]) -> dict[str, Any]:
    """One optimizer step over `micro`; its record for the history."""
    t0 = time.perf_counter()
    n_sup = sum(int(b["supervised"][:, 1:].sum()) for b in micro)
    n_tok = sum(int(b["attention_mask"].sum()) for b in micro)
    loss_sum = 0.0
    chunks = [c for b in micro for c in row_chunks(b, s.cfg.max_batch_tokens)]
    for i, chunk in enumerate(chunks):
        # Under DDP only the last backward syncs: ranks may cut their micro-batches into different numbers
        # of chunks, and one all-reduce per rank per step keeps them in step.
        local = s.world > 1 and i < len(chunks) - 1
        with s.loss_fn.no_sync() if local else nullcontext():  # type: ignore[operator]
            with torch.autocast(s.device.type, dtype=torch.bfloat16, enabled=s.bf16):
                loss = s.loss_fn(**chunk)
            (loss / n_sup).backward()
        loss_sum += float(loss.detach())
    grad_norm = float(torch.nn.utils.clip_grad_norm_(s.params, s.cfg.max_grad_norm))
    s.opt.step()
    s.sched.step()
    s.opt.zero_grad(set_to_none=True)
    s.step += 1
    dt = time.perf_counter() - t0
    s.step_rate.add(sum(b["input_ids"].numel() for b in micro), dt)
    s.tokens_total += n_tok
    return {
        "step": s.step,
        "loss": loss_sum / n_sup,
        "lr": s.sched.get_last_lr()[0],
        "grad_norm": grad_norm,
        "tokens": n_tok,
        "tokens_per_s": n_tok * s.world / dt,
        "step_s": dt,
    }


@torch.no_grad()
def eval_loss(s: Session, reserve_s: float = 0.0) -> dict[str, Any]:
    """Loss per supervised token over the eval batches that fit the budget (keeping `reserve_s`), in a
    fixed order; the record says how many of how many were evaluated, and why the rest were not."""
    from tqdm import tqdm

    order = batches(s.eval_items, s.cfg.batch_size, True, 0)
    total, n, done, cut = 0.0, 0, 0, ""
    s.loss_fn.eval()
    for idx in tqdm(order, desc="eval loss", disable=not s.main, dynamic_ncols=True, leave=False):
        b = collate([s.eval_items[i] for i in idx], s.pad_id, s.device)
        tokens = b["input_ids"].numel()
        estimate = s.eval_rate.estimate(tokens)
        if estimate is None and s.step_rate.measured:
            estimate = (s.step_rate.estimate(tokens) or 0.0) * EVAL_PER_TRAIN_TOKEN
        if not s.budget.fits(estimate, reserve_s):
            cut = f"max_minutes {s.cfg.max_minutes:g}: {s.budget.left():.0f} s left, next batch ~{estimate or 0:.1f} s"
            break
        t0 = time.perf_counter()
        with torch.autocast(s.device.type, dtype=torch.bfloat16, enabled=s.bf16):
            total += float(s.loss_fn(**b).detach())
        s.eval_rate.add(tokens, time.perf_counter() - t0)
        n += int(b["supervised"][:, 1:].sum())
        done += 1
    s.loss_fn.train()
    rec: dict[str, Any] = {"eval_loss": total / n if n else None, "eval_batches": done}
    rec["eval_batches_total"] = len(order)
    if cut:
        rec["eval_cut"] = cut
        log.info("eval loss over %d of %d batches (%s)", done, len(order), cut)
    return rec


# ---- finish ------------------------------------------------------------------------------------


def finish(s: Session) -> dict[str, Any]:
    """The final eval loss (what fits), then checkpoint, adapter, metrics and plot; the metrics."""
    metrics: dict[str, Any] = {
        "steps": s.step,
        "stop_reason": s.stop_reason,
        "precision": s.precision.value,
        "precision_reason": s.precision.reason,
        "machine": s.capability.to_dict(),
        "train_seconds": s.train_seconds,
        "tokens": s.tokens_total,
        "tokens_per_s": s.tokens_total * s.world / max(s.train_seconds, 1e-9),
        "train_examples": len(s.train_items),
        "dropped_too_long": s.dropped,
        "trainable_params": s.trainable,
    }
    if s.main:
        if s.eval_items:
            s.history.append({"step": s.step, **eval_loss(s, reserve_s=FINISH_RESERVE_S if s.budget.limited else 0)})
            metrics.update({k: v for k, v in s.history[-1].items() if k != "step"})
        losses = [h["loss"] for h in s.history if "loss" in h]
        if losses:
            metrics["train_loss_first5"] = sum(losses[:5]) / len(losses[:5])
            metrics["train_loss_last5"] = sum(losses[-5:]) / len(losses[-5:])
        save_checkpoint(s)
        s.model.save_pretrained(s.run / "adapter")
        data.write_json(s.run / "metrics.json", {"metrics": metrics, "history": s.history})
        report.loss_curve(s.history, s.run / "loss.png")
        metrics["command_seconds"] = s.budget.elapsed()
        log.info("done in %.0f s: %s", metrics["command_seconds"], json.dumps(metrics))
    if s.world > 1:
        torch.distributed.destroy_process_group()
    return metrics


def save_checkpoint(s: Session) -> None:
    path = s.run / "checkpoint"
    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    s.model.save_pretrained(tmp)
    torch.save({"optimizer": s.opt.state_dict(), "scheduler": s.sched.state_dict()}, tmp / "trainer.pt")
    (tmp / "state.json").write_text(json.dumps({"step": s.step, "history": s.history}))
    shutil.rmtree(path, ignore_errors=True)
    tmp.rename(path)
