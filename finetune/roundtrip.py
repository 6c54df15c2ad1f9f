"""Template round-trip check, run before training.

Every example is rendered with the model's chat template, and every assistant turn is parsed back
with the parser the server uses (toolcall_parse, vLLM hermes). The calls (name, arguments as
objects) and the text must come back as written; the first mismatch stops the run and shows the
example. Reads examples; writes nothing.
"""

from __future__ import annotations

import json
from typing import Any

from finetune.chat import TemplateError, assistant_texts
from finetune.data import calls
from finetune.synth import Example
from finetune.toolcall_parse import parse


class RoundTripError(ValueError):
    pass


def check_example(tokenizer: Any, ex: Example) -> None:
    texts = assistant_texts(tokenizer, ex)
    turns = [m for m in ex["messages"] if m["role"] == "assistant"]
    for rendered, message in zip(texts, turns, strict=True):
        got = parse(rendered)
        want_calls = calls(message)
        got_calls = [(c.name, c.arguments_obj()) for c in got.calls]
        want_content = (message.get("content") or "").strip()
        got_content = (got.content or "").strip()
        if got_calls != want_calls or got_content != want_content:
            raise RoundTripError(
                "template round trip failed\n"
                f"  assistant turn: {json.dumps(message, ensure_ascii=False)}\n"
                f"  rendered as:    {rendered!r}\n"
                f"  parsed back:    calls={got_calls} content={got.content!r}"
            )


def check(tokenizer: Any, examples: list[Example]) -> int:
    """Check all examples; returns how many were checked. Raises on the first mismatch."""
    for i, ex in enumerate(examples):
        try:
            check_example(tokenizer, ex)
        except (RoundTripError, TemplateError) as e:
            raise RoundTripError(f"example {i}: {e}\n  example: {json.dumps(ex, ensure_ascii=False)[:2000]}") from e
    return len(examples)
