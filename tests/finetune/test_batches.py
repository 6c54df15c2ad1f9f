"""Micro-batches cut into row chunks that bound a forward pass's tokens: every row kept once, in order,
each chunk within the budget and trimmed to its longest row, and the real model's gradient unchanged."""

from pathlib import Path

import pytest
import torch

from finetune.batches import SupervisedLoss, Tokenized, collate, row_chunks


def _batch(lengths: list[int]) -> dict[str, torch.Tensor]:
    items = [Tokenized(list(range(1, n + 1)), [i >= n // 2 for i in range(n)]) for n in lengths]
    return collate(items, 0, torch.device("cpu"))


def test_a_batch_within_the_budget_or_without_one_is_left_whole() -> None:
    b = _batch([10, 7, 3])
    assert row_chunks(b, 30) == [b]
    assert row_chunks(b, 0) == [b]


def test_chunks_keep_every_row_in_order_within_the_budget() -> None:
    lengths = [300, 120, 280, 50, 10, 290]
    b = _batch(lengths)
    chunks = row_chunks(b, 600)
    assert len(chunks) > 1
    assert torch.equal(torch.cat([c["input_ids"][:, :1] for c in chunks]), b["input_ids"][:, :1])
    assert sum(c["input_ids"].shape[0] for c in chunks) == len(lengths)
    for c in chunks:
        assert c["input_ids"].numel() <= 600
        assert c["input_ids"].shape[1] == int(c["attention_mask"].sum(dim=1).max())  # trimmed padding
    rows = [row for c in chunks for row in c["attention_mask"].sum(dim=1).tolist()]
    assert rows == lengths
    # the supervised positions and tokens of each row survive the trim
    start = 0
    for c in chunks:
        n, width = c["input_ids"].shape
        assert torch.equal(c["supervised"], b["supervised"][start : start + n, :width])
        assert not b["supervised"][start : start + n, width:].any()
        start += n


def test_a_row_longer_than_the_budget_runs_alone() -> None:
    chunks = row_chunks(_batch([50, 900, 40]), 200)
    assert [c["input_ids"].shape for c in chunks] == [torch.Size([1, 50]), torch.Size([1, 900]), torch.Size([1, 40])]


@pytest.mark.slow
def test_the_real_models_gradient_is_the_same_in_chunks(base_dir: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    model = get_peft_model(base, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=["q_proj", "v_proj"]))
    for name, p in model.named_parameters():  # LoRA B starts at zero: give it weight so that A's gradient is real
        if "lora_B" in name:
            torch.nn.init.normal_(p, std=0.02)
    loss_fn = SupervisedLoss(model)
    lengths = [90, 60, 85, 20]
    g = torch.Generator().manual_seed(1)
    ids = [torch.randint(5, 40000, (n,), generator=g).tolist() for n in lengths]
    items = [Tokenized(row, [i >= len(row) // 3 for i in range(len(row))]) for row in ids]
    batch = collate(items, 0, torch.device("cpu"))
    params = [p for p in model.parameters() if p.requires_grad]

    def grads(chunks: list[dict[str, torch.Tensor]]) -> list[torch.Tensor]:
        model.zero_grad(set_to_none=True)
        for c in chunks:
            loss_fn(**c).backward()
        return [p.grad.detach().clone() for p in params if p.grad is not None]

    whole, chunked = grads([batch]), grads(row_chunks(batch, 180))
    assert len(row_chunks(batch, 180)) >= 2
    assert len(whole) == len(params) == len(chunked)
    for a, b in zip(whole, chunked, strict=True):
        assert float((a - b).abs().max()) <= 1e-3 * float(a.abs().max()), float((a - b).abs().max() / a.abs().max())
