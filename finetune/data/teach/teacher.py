"""The teacher: a larger model served by vLLM (OpenAI-compatible `/v1/chat/completions`), asked twice.

1. `propose`: given one tool, write a request a person would type that needs exactly one call of it,
   and that call. The answer is JSON constrained by vLLM's structured outputs (`response_format`
   json_schema): in `strict` mode the arguments follow the tool's own input schema, in `free` mode
   any object (then the schema check does all the work).
2. `confirm`: given the request, the offered tool and the proposed call, does the request imply
   exactly that call (same tool, same values, nothing missing or invented)? A boolean.
3. `answer`: after a real result, a one- or two-sentence answer grounded in it.
Every completion goes through the disk cache (finetune.data.teach.cache) with a per-question seed, so
a run is deterministic per seed and a rerun never calls the teacher. Never validates (verify.py does).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from finetune.data.teach.cache import DiskCache

Mode = Literal["strict", "free"]

PROPOSE = """You write training data for a tool-calling assistant.

Tool (JSON schema of its arguments):
{tool}

Write ONE request a person might type to an assistant that needs exactly one call of this tool, and that call.
Rules: put every argument value inside the request's context (a quoted message, a path in a sentence, "the last
five commits"); never name a parameter; leave out optional arguments whose default is what the person wants;
vary tone and length. {hint}
Answer with JSON: {{"request": "...", "arguments": {{...}}}}"""

CONFIRM = """Tool:
{tool}

Request: {request}

Proposed call: {call}

Does the request imply exactly this call: this tool, these argument values, no argument missing that the
request states, none invented that it does not? Answer with JSON: {{"implies": true or false}}"""

ANSWER = """The user asked: {request}
You called {name} and it returned:
{result}

Reply to the user in one or two short sentences, using only facts from the result. Do not repeat the raw result."""


class TeacherError(RuntimeError):
    pass


@dataclass
class Teacher:
    base_url: str
    """Ends in /v1."""
    model: str
    cache: DiskCache
    api_key: str | None = None
    temperature: float = 0.7
    max_tokens: int = 256
    timeout_s: float = 600
    calls: int = 0
    """Completions actually requested from the server (cache misses)."""

    def complete(self, prompt: str, schema: dict[str, Any] | None, seed: int) -> str:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": prompt}],
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "seed": seed,
        }
        if schema is not None:
            body["response_format"] = {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema}}
        cached = self.cache.get(body)
        if cached is not None:
            return str(cached)
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        try:
            response = httpx.post(
                f"{self.base_url}/chat/completions", json=body, headers=headers, timeout=self.timeout_s
            )
        except httpx.HTTPError as exc:
            raise TeacherError(f"teacher at {self.base_url} unreachable: {exc!r}") from exc
        if response.status_code != 200:
            raise TeacherError(f"teacher at {self.base_url} answered {response.status_code}: {response.text[:300]}")
        self.calls += 1
        text = str(response.json()["choices"][0]["message"].get("content") or "")
        self.cache.put(body, text)
        return text

    def propose(self, tool: dict[str, Any], mode: Mode, seed: int, hint: str = "") -> str:
        params = {k: v for k, v in tool["function"]["parameters"].items() if k not in ("$defs", "$schema")}
        schema: dict[str, Any] = {
            "type": "object",
            "properties": {
                "request": {"type": "string"},
                "arguments": params if mode == "strict" else {"type": "object"},
            },
            "required": ["request", "arguments"],
        }
        if mode == "strict" and "$defs" in tool["function"]["parameters"]:
            schema["$defs"] = tool["function"]["parameters"]["$defs"]  # "#/$defs/..." resolves at the root
        return self.complete(PROPOSE.format(tool=json.dumps(tool["function"]), hint=hint), schema, seed)

    def confirm(self, tool: dict[str, Any], request: str, call: dict[str, Any], seed: int) -> str:
        schema = {"type": "object", "properties": {"implies": {"type": "boolean"}}, "required": ["implies"]}
        prompt = CONFIRM.format(tool=json.dumps(tool["function"]), request=request, call=json.dumps(call))
        return self.complete(prompt, schema, seed)

    def answer(self, request: str, name: str, result: str, seed: int) -> str:
        return self.complete(ANSWER.format(request=request, name=name, result=result[:2000]), None, seed)
