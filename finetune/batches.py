"""What one step consumes: examples tokenized with their supervised positions, batched and padded, and
the loss over supervised positions only.

Owns: tokenizing rendered examples (loss on the assistant's turns only; examples longer than max_len
are dropped, never truncated: truncation can cut every supervised token), one epoch's length-grouped
micro-batches, dynamic padding, row chunks that bound a forward pass's tokens, and `SupervisedLoss`,
which runs the LM head only at supervised positions (the head over a 49k vocabulary is the largest
matmul, and most positions are prompt).
Never: chooses a precision or a device (the recipe in finetune/train.py does), or reads files.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from finetune import data
from finetune.chat import render


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


def row_chunks(batch: dict[str, torch.Tensor], max_tokens: int) -> list[dict[str, torch.Tensor]]:
    """A collated batch as consecutive row chunks of at most `max_tokens` padded tokens each (one row at
    least), each trimmed to its longest row. The summed loss over the chunks is the batch's, so a step's
    gradient is unchanged; only the activations alive at once shrink. 0: the batch whole.

    Why: activations kept for backward grow with tokens per forward pass (SmolLM2-135M fp32 with LoRA on
    every projection: ~2.3 MB/token, 6.5 GiB peak for one 2,560-token row), and 4 rows of 2,560 tokens
    were killed by the kernel's OOM killer on a 24 GiB machine."""
    rows = batch["input_ids"].shape[0]
    if max_tokens <= 0 or batch["input_ids"].numel() <= max_tokens:
        return [batch]
    lengths = [int(n) for n in batch["attention_mask"].sum(dim=1)]
    out, start = [], 0
    while start < rows:
        end, longest = start + 1, lengths[start]
        while end < rows and (end - start + 1) * max(longest, lengths[end]) <= max_tokens:
            longest = max(longest, lengths[end])
            end += 1
        out.append({k: v[start:end, :longest] for k, v in batch.items()})
        start = end
    return out


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
