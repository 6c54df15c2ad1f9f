"""Request frames for the tools of real MCP servers: how people ask for a call, and what it returns.

A frame is a function `rng -> Request`: a sentence that carries every argument value in its context
(never the parameter's name) and the exact arguments that sentence implies. An argument the sentence
does not mention is left out of the call, so optional arguments with defaults stay out unless the
person asked for something else. A reply is `(arguments, rng) -> (tool result text, short answer)`:
what the server answers and the grounded sentence an agent says after reading it.

One module per server (time, git, filesystem, memory, everything), each with `FRAMES` and `REPLIES`
keyed by the server's own tool name. Deterministic for a `random.Random`; never reads files or the
network (results are plausible texts in each server's own shape, not executions).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from finetune.data.values import Said


@dataclass(frozen=True, slots=True)
class Request:
    text: str
    arguments: dict[str, Any]


Frame = Callable[[random.Random], Request]
Reply = Callable[[dict[str, Any], random.Random], tuple[str, str]]
Slot = Callable[[random.Random], Said]


def ask(texts: list[str], **slots: Slot) -> Frame:
    """A frame: one of `texts` with each `{slot}` filled by its value's words; the call carries exactly the slots."""

    def frame(rng: random.Random) -> Request:
        said = {name: slot(rng) for name, slot in slots.items()}
        for _ in range(8):  # two arguments with one value (from Tokyo to Tokyo) make a poor request
            if len({repr(s.value) for s in said.values()}) == len(said):
                break
            said = {name: slot(rng) for name, slot in slots.items()}
        text = rng.choice(texts).format(**{k: s.words for k, s in said.items()})
        return Request(text, {k: s.value for k, s in said.items()})

    return frame


def servers() -> dict[str, tuple[dict[str, list[Frame]], dict[str, Reply]]]:
    """Server name -> (frames by tool, replies by tool)."""
    from finetune.data.frames import everything, filesystem, git, memory, time, tracker

    return {m.SERVER: (m.FRAMES, m.REPLIES) for m in (time, git, filesystem, memory, everything, tracker)}
