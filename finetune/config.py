"""The training config: one typed dataclass, loaded from YAML, every field with help.

`load(path, overrides)` reads a YAML file whose keys are the field names below; unknown keys
are an error that names them. `warden finetune train --help-config` prints the help lines.
"""

from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from finetune.base_model import DEFAULT_CACHE


def _f(default: Any, help: str) -> Any:
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class TrainConfig:
    base: str = _f(str(DEFAULT_CACHE), "HF model directory of the base (`warden model fetch` prepares the default)")
    train_file: str = _f("data/train.jsonl", "training examples, OpenAI chat JSONL")
    eval_file: str = _f("data/eval.jsonl", "held-out examples for periodic eval loss")
    run_dir: str = _f("runs/smollm2-135m", "where config, logs, metrics, checkpoints, the adapter and plots go")
    seed: int = _f(0, "seeds data order, LoRA init and dropout")
    max_len: int = _f(512, "longer examples are dropped, never truncated (that can cut every supervised token)")
    batch_size: int = _f(8, "examples per micro-batch (per device)")
    grad_accum: int = _f(1, "micro-batches per optimizer step")
    max_batch_tokens: int = _f(
        4096,
        "padded tokens per forward pass: a longer micro-batch runs in row chunks (the same gradient, less memory; "
        "SmolLM2-135M fp32 keeps ~2.3 MB of activations per token); 0: no limit",
    )
    max_steps: int = _f(200, "optimizer steps; the LR schedule spans them")
    max_minutes: float = _f(
        0.0,
        "wall-time budget of the whole command: setup, steps, the final eval loss and saving all fit in it "
        "(no step or eval batch starts that the measured rate says cannot finish; 0: no limit)",
    )
    lr: float = _f(2e-4, "peak learning rate")
    lr_schedule: str = _f("cosine", "cosine | linear | constant (all with warmup)")
    warmup_steps: int = _f(10, "linear warmup steps")
    weight_decay: float = _f(0.0, "AdamW weight decay on LoRA weights")
    max_grad_norm: float = _f(1.0, "gradient clipping norm")
    lora_r: int = _f(16, "LoRA rank")
    lora_alpha: int = _f(32, "LoRA scaling numerator (scale = alpha / r)")
    lora_dropout: float = _f(0.05, "dropout on the LoRA input")
    lora_targets: list[str] = _f(["q_proj", "k_proj", "v_proj", "o_proj"], "module names that get LoRA")  # noqa: RUF009
    precision: str = _f(
        "auto",
        "auto: bf16 where the device computes it natively (CUDA with bf16; CPUs with avx512_bf16/amx_bf16 that "
        "oneDNN uses), else fp32 | bf16: bf16 autocast (GPU: bf16 base weights too), LoRA weights fp32; refused on "
        "a CPU without native bf16 (~80x slower there) unless force_precision | fp32: plain",
    )
    force_precision: bool = _f(False, "run `precision: bf16` even on a CPU without native bf16 (very slow)")
    group_by_length: bool = _f(True, "batch examples of similar length together (less padding)")
    eval_every: int = _f(50, "optimizer steps between eval-loss runs (0: only at the end)")
    eval_max_examples: int = _f(64, "eval-loss subset size")
    save_every: int = _f(50, "optimizer steps between checkpoints (0: only at the end)")
    log_every: int = _f(1, "optimizer steps between metric log lines")
    threads: int = _f(
        0,
        "CPU threads for torch (0: torch's default, one per core; on a machine other jobs load, 1 measured "
        "3-5x faster than 2 on 2 cores)",
    )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def help_lines() -> list[str]:
    out = []
    for f in fields(TrainConfig):
        default = f.default if f.default is not MISSING else f.default_factory()  # type: ignore[operator]
        out.append(f"{f.name} ({f.type}, default {default!r}): {f.metadata['help']}")
    return out


def load(path: Path | None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    raw: dict[str, Any] = {}
    if path is not None:
        raw = yaml.safe_load(path.read_text()) or {}
        if not isinstance(raw, dict):
            raise ValueError(f"{path}: expected a mapping of config fields")
    raw.update({k: v for k, v in (overrides or {}).items() if v is not None})
    known = {f.name for f in fields(TrainConfig)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise ValueError(f"{path}: unknown config fields {unknown}; known: {sorted(known)}")
    return TrainConfig(**raw)
