"""Checks a proposed (request, call) must pass before it becomes training data.

Each check returns the problems it found as short sentences (empty: passed): the teacher's answer
parses as `{"request": str, "arguments": object}`; the arguments validate against the tool's schema
(jsonschema, Draft 2020-12, `$defs` resolved); the request reads like a person's (three words or more,
not the tool's name) and does not name a parameter (its identifier, its multi-word label, or the label
used as a key, "timezone: X"); no argument merely repeats its default (defaults must be left out).
Pure functions: never calls the teacher or a server.
"""

from __future__ import annotations

import json
import re
from typing import Any

from jsonschema import Draft202012Validator

from finetune.schema_values import label


def parse_proposal(text: str) -> tuple[str, dict[str, Any]] | str:
    """(request, arguments), or why the teacher's answer is not a proposal."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        return f"not JSON ({exc.msg} at column {exc.colno})"
    if not isinstance(value, dict) or not isinstance(value.get("request"), str) or not value["request"].strip():
        return "no non-empty 'request' string"
    if not isinstance(value.get("arguments"), dict):
        return "'arguments' is not an object"
    return value["request"].strip(), value["arguments"]


def schema_problems(schema: dict[str, Any], arguments: dict[str, Any]) -> list[str]:
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(arguments)'}: {e.message}"
        for e in Draft202012Validator(schema).iter_errors(arguments)
    ]


def _keys(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [k for key, v in value.items() for k in [key, *_keys(v)]]
    if isinstance(value, list):
        return [k for v in value for k in _keys(v)]
    return []


def named_parameters(arguments: dict[str, Any], request: str) -> list[str]:
    """Parameters (nested keys included) that the request names instead of implying."""
    low = request.lower()
    named = []
    for name in dict.fromkeys(_keys(arguments)):
        lab = label(name)
        identifier = not (name.isalpha() and name.islower())
        if (
            (identifier and re.search(rf"\b{re.escape(name.lower())}\b", low))
            or (" " in lab and lab in low)
            or re.search(rf"\b{re.escape(lab)}\s*[:=]", low)
        ):
            named.append(name)
    return named


def request_problems(request: str, tool_name: str) -> list[str]:
    """A request is a few words a person would type, and never the tool's identifier (`get_current_time`)."""
    problems = []
    if len(request.split()) < 3:
        problems.append("the request has fewer than 3 words")
    if len(request) > 600:
        problems.append(f"the request is too long ({len(request)} characters)")
    identifier = not (tool_name.isalpha() and tool_name.islower())  # "echo" is also a word people use
    if identifier and re.search(rf"(?<![\w-]){re.escape(tool_name.lower())}(?![\w-])", request.lower()):
        problems.append(f"the request names the tool {tool_name!r}")
    return problems


def _resolve(prop: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    ref = prop.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return {**root.get("$defs", {}).get(ref.removeprefix("#/$defs/"), {}), **prop}
    return prop


def repeated_defaults(schema: dict[str, Any], arguments: dict[str, Any]) -> list[str]:
    """Top-level arguments whose value is the schema's default (they should have been left out)."""
    props = schema.get("properties", {})
    return [
        k
        for k, v in arguments.items()
        if k in props and "default" in _resolve(props[k], schema) and _resolve(props[k], schema)["default"] == v
    ]


def answer_problems(answer: str, result: str) -> list[str]:
    """A final answer must be short text grounded in the result, never the raw result or a call."""
    problems = []
    if not answer.strip():
        problems.append("empty answer")
    if len(answer) > 300:
        problems.append(f"answer too long ({len(answer)} characters)")
    if "<tool_response>" in answer or "<tool_call>" in answer:
        problems.append("answer contains tool markup")
    if len(result) > 40 and result.strip() in answer:
        problems.append("answer repeats the raw result")
    return problems


def parse_confirmation(text: str) -> bool | str:
    """True when the teacher confirms; False when it denies; a sentence when its answer is unreadable."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return "the confirmation is not JSON"
    implies = value.get("implies") if isinstance(value, dict) else None
    return implies if isinstance(implies, bool) else "the confirmation has no boolean 'implies'"
