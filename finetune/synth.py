"""Synthesize tool-use examples from tool catalogs.

Owns: many varied fake catalogs (domains x verbs x typed parameters) so an adapter learns the
call format and argument copying rather than particular tools, and examples for any catalog:
a request whose argument values appear literally in its text with the correct call, several
tools offered where one fits, parallel calls, and requests no offered tool fits (the right
answer is text, no call). Deterministic for a `random.Random`. It never validates (finetune.data does)
and never reads BFCL data.
"""

from __future__ import annotations

import json
import random
from typing import Any

from finetune.schema_values import inline_refs, label, sample

Tool = dict[str, Any]
"""OpenAI tool: {"type": "function", "function": {"name", "description", "parameters"}}."""
Example = dict[str, Any]
"""OpenAI chat example: {"messages": [...], "tools": [Tool, ...]}."""

_S, _I, _N, _B = {"type": "string"}, {"type": "integer"}, {"type": "number"}, {"type": "boolean"}


def _enum(*values: str) -> dict[str, Any]:
    return {"type": "string", "enum": list(values)}


# Parameters a domain may use: name -> schema. Descriptions are added when tools are built.
_PARAMS: dict[str, dict[str, Any]] = {
    "city": _S,
    "country": _S,
    "email": {"type": "string", "format": "email"},
    "name": _S,
    "username": _S,
    "title": _S,
    "query": _S,
    "file_path": _S,
    "url": {"type": "string", "format": "uri"},
    "timezone": _S,
    "language": _S,
    "currency": _S,
    "date": {"type": "string", "format": "date"},
    "start_time": _S,
    "message": _S,
    "color": _S,
    "symbol": _S,
    "branch": _S,
    "repo_path": _S,
    "order_id": _S,
    "ticket_id": _S,
    "limit": {"type": "integer", "minimum": 1, "maximum": 100},
    "quantity": {"type": "integer", "minimum": 1, "maximum": 50},
    "year": {"type": "integer", "minimum": 1990, "maximum": 2030},
    "days": {"type": "integer", "minimum": 1, "maximum": 30},
    "amount": {"type": "number", "minimum": 0},
    "price": {"type": "number", "minimum": 0, "maximum": 5000},
    "radius_km": {"type": "number", "minimum": 0.5, "maximum": 50},
    "temperature": _N,
    "page": _I,
    "priority": _enum("low", "medium", "high", "urgent"),
    "status": _enum("open", "closed", "pending"),
    "unit": _enum("celsius", "fahrenheit"),
    "format": _enum("json", "csv", "pdf"),
    "sort_order": _enum("asc", "desc"),
    "mode": _enum("driving", "walking", "transit", "cycling"),
    "size": _enum("small", "medium", "large"),
    "include_archived": _B,
    "notify": _B,
    "dry_run": _B,
    "recursive": _B,
    "verbose": _B,
    "tags": {"type": "array", "items": _S},
    "recipients": {"type": "array", "items": {"type": "string", "format": "email"}},
    "item_ids": {"type": "array", "items": {"type": "integer", "minimum": 1, "maximum": 9999}},
    "address": {"type": "object", "properties": {"street": _S, "city": _S, "zip_code": _S}, "required": ["city"]},
    "filters": {"type": "object", "properties": {"status": _enum("open", "closed", "pending"), "min_price": _N}},
    "dimensions": {"type": "object", "properties": {"width": _I, "height": _I}, "required": ["width", "height"]},
}
# domain noun -> parameters it draws from
_DOMAINS: dict[str, list[str]] = {
    "weather": ["city", "unit", "days", "country"],
    "invoice": ["order_id", "amount", "currency", "email", "notify"],
    "ticket": ["title", "priority", "status", "ticket_id", "tags", "username"],
    "flight": ["city", "date", "start_time", "quantity", "sort_order"],
    "hotel": ["city", "date", "days", "price", "size"],
    "route": ["address", "mode", "start_time", "radius_km"],
    "stock_quote": ["symbol", "date", "currency", "limit"],
    "email": ["recipients", "title", "message", "notify"],
    "calendar_event": ["title", "date", "start_time", "timezone"],
    "file": ["file_path", "recursive", "format", "dry_run"],
    "commit": ["repo_path", "message", "branch", "dry_run"],
    "branch": ["repo_path", "branch", "include_archived"],
    "product": ["query", "price", "color", "size", "limit"],
    "order": ["order_id", "item_ids", "quantity", "address", "notify"],
    "user": ["username", "email", "name", "status"],
    "translation": ["message", "language", "format"],
    "time": ["timezone", "start_time", "date"],
    "restaurant": ["city", "query", "price", "radius_km", "limit"],
    "report": ["title", "year", "format", "recipients"],
    "playlist": ["title", "tags", "limit", "sort_order"],
    "package": ["order_id", "address", "dimensions", "priority"],
    "news": ["query", "country", "language", "limit"],
    "exchange_rate": ["currency", "amount", "date"],
    "movie": ["title", "year", "language", "limit"],
    "recipe": ["query", "tags", "limit", "verbose"],
    "thermostat": ["temperature", "unit", "mode"],
    "webpage": ["url", "format", "verbose"],
    "contact": ["name", "email", "address", "tags"],
    "listing": ["filters", "city", "page", "sort_order"],
    "image": ["file_path", "dimensions", "format", "color"],
    "log": ["file_path", "query", "limit", "start_time"],
    "meeting": ["title", "recipients", "date", "start_time", "timezone"],
    "budget": ["amount", "currency", "year", "tags"],
    "shipment": ["order_id", "status", "notify", "days"],
    "account": ["username", "status", "include_archived"],
    "course": ["title", "language", "limit", "page"],
    "parking_spot": ["address", "radius_km", "days"],
    "pet": ["name", "size", "color", "tags"],
    "warehouse_item": ["item_ids", "quantity", "filters"],
    "backup": ["file_path", "recursive", "dry_run", "tags"],
}
_VERBS = [
    "get",
    "create",
    "update",
    "delete",
    "list",
    "search",
    "send",
    "cancel",
    "book",
    "check",
    "find",
    "schedule",
    "fetch",
    "archive",
    "export",
    "track",
    "add",
    "remove",
    "convert",
    "lookup",
]
_STYLES = ["snake", "camel", "namespaced"]

_ASK = [
    "{V} with {args}.",
    "Please {v} with {args}.",
    "Can you {v}? Use {args}.",
    "I need to {v}: {args}.",
    "{V} for me, {args}.",
    "Could you {v} using {args}?",
    "Go ahead and {v} with {args}.",
    "{Args}. {V}.",
    "Hey, {v} please, with {args}.",
    "I'd like you to {v} ({args}).",
]
_ASK_NOARGS = ["{V}.", "Please {v}.", "Can you {v}?", "I need you to {v} now."]
_PARALLEL = ["{V} with {a1}, and also with {a2}.", "Please {v} twice: first with {a1}, then with {a2}."]
_CHAT = [
    "What is the capital of Peru?",
    "Write a haiku about autumn leaves.",
    "Tell me a joke about programmers.",
    "How is your week going so far?",
    "Explain what a prime number is.",
    "What does the word 'ephemeral' mean?",
    "Summarize the plot of Romeo and Juliet in one sentence.",
    "Thanks, that is all for now.",
    "Who painted the Mona Lisa?",
    "Give me three tips for better sleep.",
    "How many legs does a spider have?",
]
_DECLINE = [
    "None of the available tools can do that, so I will not call one.",
    "I can't help with that using the tools I have.",
    "No tool here fits this request.",
]


def _tool_name(domain: str, verb: str, style: str) -> str:
    if style == "camel":
        parts = [verb, *domain.split("_")]
        return parts[0] + "".join(p.capitalize() for p in parts[1:])
    if style == "namespaced":
        return f"{domain.split('_')[0]}__{verb}_{domain}"
    return f"{verb}_{domain}"


def synthetic_catalog(rng: random.Random, domains: list[str] | None = None) -> list[Tool]:
    """One fake tool per (domain, verb) drawn for every domain in `domains` (default: all)."""
    tools = []
    for domain in domains or list(_DOMAINS):
        for verb in rng.sample(_VERBS, k=rng.randint(1, 3)):
            names = rng.sample(_DOMAINS[domain], k=rng.randint(1, min(4, len(_DOMAINS[domain]))))
            props = {n: dict(_PARAMS[n]) for n in names}  # no boilerplate descriptions: shorter prompts
            required = [n for n in names if rng.random() < 0.6] or names[:1]
            tools.append(
                {
                    "type": "function",
                    "function": {
                        "name": _tool_name(domain, verb, rng.choice(_STYLES)),
                        "description": f"{verb.capitalize()} a {label(domain)}.",
                        "parameters": {"type": "object", "properties": props, "required": required},
                    },
                }
            )
    return tools


def domains() -> list[str]:
    return list(_DOMAINS)


def _fn(tool: Tool) -> dict[str, Any]:
    return tool["function"]


def _arguments(tool: Tool, rng: random.Random) -> tuple[dict[str, Any], list[str]]:
    params = inline_refs(_fn(tool).get("parameters") or {})
    required = set(params.get("required", []))
    args: dict[str, Any] = {}
    phrases = []
    for name, schema in (params.get("properties") or {}).items():
        if name in required or rng.random() < 0.4:
            s = sample(schema, name, rng)
            args[name] = s.value
            phrases.append(s.phrase)
    return args, phrases


def _join(phrases: list[str]) -> str:
    return phrases[0] if len(phrases) == 1 else ", ".join(phrases[:-1]) + " and " + phrases[-1]


def _verb_phrase(tool: Tool) -> str:
    return label(_fn(tool)["name"].split("__")[-1])


def _request(tool: Tool, phrases: list[str], rng: random.Random) -> str:
    v = _verb_phrase(tool)
    if not phrases:
        t = rng.choice(_ASK_NOARGS)
        return t.format(v=v, V=v[0].upper() + v[1:])
    args = _join(phrases)
    t = rng.choice(_ASK)
    return t.format(v=v, V=v[0].upper() + v[1:], args=args, Args=args[0].upper() + args[1:])


def _call(tool: Tool, args: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "function",
        "function": {"name": _fn(tool)["name"], "arguments": json.dumps(args, ensure_ascii=False)},
    }


def _offer(target: Tool | None, pool: list[Tool], rng: random.Random, exclude: Tool | None = None) -> list[Tool]:
    others = [t for t in pool if t is not target and t is not exclude]
    k = min(len(others), rng.choice([0, 1, 1, 2]) + (0 if target else 1))  # few distractors: short prompts
    offered = rng.sample(others, k=k) + ([target] if target else [])
    rng.shuffle(offered)
    return offered


def example_call(target: Tool, pool: list[Tool], rng: random.Random) -> Example:
    args, phrases = _arguments(target, rng)
    return {
        "messages": [
            {"role": "user", "content": _request(target, phrases, rng)},
            {"role": "assistant", "content": "", "tool_calls": [_call(target, args)]},
        ],
        "tools": _offer(target, pool, rng),
    }


def example_parallel(target: Tool, pool: list[Tool], rng: random.Random) -> Example:
    (a1, p1), (a2, p2) = _arguments(target, rng), _arguments(target, rng)
    if a1 == a2 or not p1 or not p2:
        return example_call(target, pool, rng)
    v = _verb_phrase(target)
    text = rng.choice(_PARALLEL).format(v=v, V=v[0].upper() + v[1:], a1=_join(p1), a2=_join(p2))
    return {
        "messages": [
            {"role": "user", "content": text},
            {"role": "assistant", "content": "", "tool_calls": [_call(target, a1), _call(target, a2)]},
        ],
        "tools": _offer(target, pool, rng),
    }


def example_irrelevant(target: Tool, pool: list[Tool], rng: random.Random) -> Example:
    """A request for `target` (or small talk) while `target` is not offered: the answer is text."""
    text = rng.choice(_CHAT) if rng.random() < 0.3 else _request(target, _arguments(target, rng)[1], rng)
    tgt_words = set(_verb_phrase(target).split())
    pool = [t for t in pool if not tgt_words & set(_verb_phrase(t).split()[1:])] or pool
    offered = _offer(None, pool, rng, exclude=target)
    return {
        "messages": [{"role": "user", "content": text}, {"role": "assistant", "content": rng.choice(_DECLINE)}],
        "tools": offered,
    }


def synthesize(
    tools: list[Tool], n: int, rng: random.Random, irrelevant: float = 0.2, parallel: float = 0.1
) -> list[Example]:
    """`n` examples over `tools`: calls, parallel calls and no-call requests in the given shares."""
    out = []
    for _ in range(n):
        target = rng.choice(tools)
        r = rng.random()
        if r < irrelevant and len(tools) > 1:
            out.append(example_irrelevant(target, tools, rng))
        elif r < irrelevant + parallel:
            out.append(example_parallel(target, tools, rng))
        else:
            out.append(example_call(target, tools, rng))
    return out
