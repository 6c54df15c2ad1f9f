"""Render examples with the model's own chat template, as the server will.

Owns splitting a rendered conversation into prompt text and the assistant's text (what the
model must produce, and what loss is computed on), via prefix rendering: the assistant turn i is
`render(messages[:i+1])` minus `render(messages[:i], add_generation_prompt=True)`. A template
for which that is not a prefix is an error. Never tokenizes for training (train.py does).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from finetune.synth import Example


class TemplateError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Rendered:
    text: str
    spans: tuple[tuple[int, int], ...]
    """Character ranges of assistant turns (the supervised text), end of turn token included."""


def render_prompt(tokenizer: Any, messages: list[dict[str, Any]], tools: list[Any] | None) -> str:
    return str(tokenizer.apply_chat_template(messages, tools=tools or None, tokenize=False, add_generation_prompt=True))


def render(tokenizer: Any, ex: Example) -> Rendered:
    msgs, tools = ex["messages"], ex.get("tools") or None
    full = str(tokenizer.apply_chat_template(msgs, tools=tools, tokenize=False))
    spans = []
    for i, m in enumerate(msgs):
        if m["role"] != "assistant":
            continue
        prompt = render_prompt(tokenizer, msgs[:i], tools)
        upto = str(tokenizer.apply_chat_template(msgs[: i + 1], tools=tools, tokenize=False))
        if not full.startswith(upto) or not upto.startswith(prompt):
            raise TemplateError("the chat template does not render conversations prefix by prefix")
        end = upto.rstrip("\n")
        spans.append((len(prompt), len(end)))
    return Rendered(full, tuple(spans))


def assistant_texts(tokenizer: Any, ex: Example) -> list[str]:
    """What the model generates for each assistant turn, as the server's parser receives it."""
    r = render(tokenizer, ex)
    eos = tokenizer.eos_token or ""
    out = []
    for a, b in r.spans:
        text = r.text[a:b]
        out.append(text[: -len(eos)] if eos and text.endswith(eos) else text)
    return out
