"""Repairing tag rows a checkpoint never trained apart, on the real 135M base (tied embeddings).

The defect is rebuilt as the Qwen2.5-Coder GGUF has it: `<tool_call>` and `</tool_call>` added to the
vocabulary with identical rows equal to `<|im_start|>`'s, so no hidden state can score one above the other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from finetune import token_rows

pytestmark = pytest.mark.slow  # loads the real 135M base

TAGS = ("<tool_call>", "</tool_call>")


def _defective(base_dir: Path) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(base_dir)
    tok.add_tokens(list(TAGS))  # added, not special: as in Qwen's vocabulary
    model = AutoModelForCausalLM.from_pretrained(base_dir, dtype=torch.float32)
    model.resize_token_embeddings(len(tok), mean_resizing=False)
    embed: Any = model.get_input_embeddings().weight
    with torch.no_grad():
        for tag in TAGS:
            embed[token_rows.token_id(tok, tag)] = embed[token_rows.token_id(tok, "<|im_start|>")]
    return model, tok


def test_plain_pieces_spell_the_tag_without_matching_the_added_token(base_dir: Path) -> None:
    _, tok = _defective(base_dir)
    assert tok.encode("<tool_call>", add_special_tokens=False) == [token_rows.token_id(tok, "<tool_call>")]
    pieces = token_rows.plain_pieces(tok, "<tool_call>")
    assert len(pieces) > 1 and tok.decode(pieces) == "<tool_call>"
    assert tok.decode(token_rows.plain_pieces(tok, "</tool_call>")) == "</tool_call>"
    with pytest.raises(token_rows.TokenRowError, match="not one token"):
        token_rows.token_id(tok, "tool_call")


def test_repaired_rows_differ_from_each_other_and_the_neighbour_and_keep_their_norm(base_dir: Path) -> None:
    model, tok = _defective(base_dir)
    ids = [token_rows.token_id(tok, t) for t in TAGS]
    start = token_rows.token_id(tok, "<|im_start|>")
    head = model.get_output_embeddings().weight
    assert torch.equal(head[ids[0]], head[ids[1]])  # the defect: tied, so the output rows are equal too
    untouched = model.get_input_embeddings().weight.detach().clone()

    repairs = token_rows.repair(model, tok, TAGS, ["<|im_start|>"])

    embed = model.get_input_embeddings().weight
    assert [r.tied for r in repairs] == [True, True] and head.data_ptr() == embed.data_ptr()
    assert repairs[0].cos_before == {"</tool_call>": 1.0, "<|im_start|>": 1.0}
    assert token_rows.cosine(embed[ids[0]], embed[ids[1]]) < 0.99
    assert max(token_rows.cosine(embed[i], embed[start]) for i in ids) < 0.8
    for r, i in zip(repairs, ids, strict=True):
        assert abs(float(embed[i].detach().norm()) - r.norm) < 1e-3 and r.cos_after["<|im_start|>"] < 0.8
        assert tok.decode(r.piece_ids) == r.token
    changed = (embed != untouched).any(dim=1).nonzero().flatten().tolist()
    assert changed == sorted(ids)  # nothing but the named rows

    # The output side: a hidden state can now score one tag above the other (impossible before).
    hidden = embed[ids[0]].detach()
    with torch.no_grad():
        logits = model.get_output_embeddings()(hidden)
    assert logits[ids[0]] > logits[ids[1]] and logits[ids[0]] > logits[start]


def test_repair_is_deterministic_and_the_tag_round_trips(base_dir: Path) -> None:
    a, tok = _defective(base_dir)
    b, _ = _defective(base_dir)
    ra = token_rows.repair(a, tok, TAGS)
    rb = token_rows.repair(b, tok, TAGS)
    assert [r.as_dict() for r in ra] == [r.as_dict() for r in rb]
    assert torch.equal(a.get_input_embeddings().weight, b.get_input_embeddings().weight)
    text = '<tool_call>\n{"name": "f", "arguments": {}}\n</tool_call>'
    ids = tok.encode(text, add_special_tokens=False)
    assert ids[0] == ra[0].id and ids[-1] == ra[1].id and tok.decode(ids) == text


def test_no_tokens_named_changes_nothing(base_dir: Path) -> None:
    model, tok = _defective(base_dir)
    before = model.get_input_embeddings().weight.detach().clone()
    assert token_rows.repair(model, tok, ()) == []
    assert torch.equal(before, model.get_input_embeddings().weight)
