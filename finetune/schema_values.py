"""Argument values that respect a JSON schema, each with the words a user would say.

`sample(schema, name, rng)` returns a value valid for `schema` (enums, integer/number bounds,
strings with formats or name hints, arrays, nested objects, optional fields) and a phrase that
contains the value literally, so a small model learns to copy values from the request.
Deterministic for a given `random.Random`. Never reads files or the network.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from typing import Any

# Word pools keyed by a hint found in the parameter name. Values are short and copyable.
_POOLS: dict[str, list[str]] = {
    "city": ["Paris", "Tokyo", "Nairobi", "Lima", "Oslo", "Austin", "Melbourne", "Montreal", "Seville", "Hanoi"],
    "country": ["Germany", "Brazil", "Japan", "Kenya", "Canada", "Norway", "India", "Chile"],
    "email": ["dana@example.com", "li.wei@acme.io", "ops@warden.dev", "sam.ortiz@mail.org", "kim@corp.net"],
    "name": ["Dana Smith", "Li Wei", "Sam Ortiz", "Priya Nair", "Jonas Berg", "Ana Lima", "Omar Haddad"],
    "user": ["dsmith", "liwei", "sortiz", "pnair", "jberg", "alima"],
    "title": ["Quarterly report", "Login page broken", "Team offsite", "Release notes v2", "Budget review"],
    "query": ["open invoices", "red running shoes", "python tutorials", "cheap flights", "vegan recipes"],
    "path": ["/var/log/app.log", "docs/readme.md", "src/main.py", "/tmp/export.csv", "reports/2024/q3.pdf"],
    "url": ["https://example.com/status", "https://api.acme.io/v1/items", "https://warden.dev/docs"],
    "timezone": ["Europe/Paris", "America/New_York", "Asia/Tokyo", "UTC", "Australia/Sydney"],
    "language": ["French", "Spanish", "German", "Japanese", "Portuguese"],
    "currency": ["USD", "EUR", "JPY", "GBP", "CHF"],
    "date": ["2025-03-14", "2024-12-01", "2026-07-30", "2025-01-09"],
    "time": ["09:30", "14:00", "18:45", "07:15"],
    "message": ["Running late, start without me", "The build is green", "Please review the draft"],
    "color": ["red", "teal", "black", "orange"],
    "symbol": ["AAPL", "MSFT", "TSLA", "NVDA"],
    "branch": ["main", "feature/login", "release-1.2", "hotfix/cache"],
    "repo": ["/home/dana/projects/site", "/srv/git/api", "/work/warden"],
}
_WORDS = ["alpha", "orbit", "maple", "cobalt", "delta", "harbor", "nimbus", "quartz", "summit", "willow"]
_HINTS = [  # first matching substring wins
    ("email", "email"),
    ("timezone", "timezone"),
    ("tz", "timezone"),
    ("city", "city"),
    ("country", "country"),
    ("language", "language"),
    ("currency", "currency"),
    ("date", "date"),
    ("time", "time"),
    ("url", "url"),
    ("path", "path"),
    ("file", "path"),
    ("query", "query"),
    ("search", "query"),
    ("title", "title"),
    ("subject", "title"),
    ("message", "message"),
    ("text", "message"),
    ("body", "message"),
    ("color", "color"),
    ("symbol", "symbol"),
    ("ticker", "symbol"),
    ("branch", "branch"),
    ("repo", "repo"),
    ("user", "user"),
    ("owner", "user"),
    ("name", "name"),
    ("recipient", "email"),
]


@dataclass(frozen=True, slots=True)
class Sampled:
    value: Any
    phrase: str
    """Words naming the parameter and containing the value literally."""


def label(name: str) -> str:
    """`source_timezone` -> `source timezone`, `maxResults` -> `max results`."""
    out: list[str] = []
    for ch in name.replace("-", "_").replace(".", "_"):
        if ch.isupper() and out and out[-1] != "_":
            out.append("_")
        out.append(ch.lower())
    return " ".join(p for p in "".join(out).split("_") if p)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


_SHAPES = ["09:30", "14:05", "2025-03-14", "42", "A1", "abc-123", "v1.2.3"]
"""Tried when a pattern rejects every pooled value."""


def _patterned(pattern: str, rng: random.Random) -> str | None:
    """A pooled value (or a common shape) that matches `pattern`, or None."""
    fits = [v for pool in (*_POOLS.values(), _SHAPES) for v in pool if re.search(pattern, v)]
    return rng.choice(fits) if fits else None


def _string(schema: dict[str, Any], name: str, rng: random.Random) -> str:
    if isinstance(schema.get("pattern"), str) and (fit := _patterned(schema["pattern"], rng)) is not None:
        return fit
    fmt = schema.get("format")
    if fmt == "email":
        return rng.choice(_POOLS["email"])
    if fmt == "date":
        return rng.choice(_POOLS["date"])
    if fmt in ("uri", "url"):
        return rng.choice(_POOLS["url"])
    low = name.lower()
    for hint, pool in _HINTS:
        if hint in low:
            value = rng.choice(_POOLS[pool])
            break
    else:
        value = f"{rng.choice(_WORDS)}-{rng.randint(10, 999)}" if low.endswith("id") else rng.choice(_WORDS)
    lo, hi = schema.get("minLength", 0), schema.get("maxLength", 10_000)
    if not lo <= len(value) <= hi:
        value = (value * (lo // max(len(value), 1) + 1))[: max(lo, min(hi, len(value)))]
    return value


def _number(schema: dict[str, Any], integer: bool, rng: random.Random) -> int | float:
    lo = schema.get("minimum", schema.get("exclusiveMinimum", 1 if integer else 0.5))
    hi = schema.get("maximum", schema.get("exclusiveMaximum", lo + 500))
    if integer:
        lo_i = int(lo) + (1 if "exclusiveMinimum" in schema and "minimum" not in schema else 0)
        hi_i = int(hi) - (1 if "exclusiveMaximum" in schema and "maximum" not in schema else 0)
        return rng.randint(lo_i, max(lo_i, hi_i))
    value = round(rng.uniform(float(lo), float(hi)), rng.choice([1, 2]))
    return value if value != int(value) else value + 0.5 if value + 0.5 < hi else value


def _array(schema: dict[str, Any], name: str, lab: str, rng: random.Random) -> Sampled:
    items = schema.get("items", {"type": "string"})
    n = max(schema.get("minItems", 1), min(schema.get("maxItems", 3), rng.randint(1, 3)))
    values: list[Any] = []
    for _ in range(n * 3):
        v = sample(items, name.rstrip("s"), rng).value
        if v not in values:
            values.append(v)
        if len(values) == n:
            break
    return Sampled(values, f"{lab} {', '.join(_text(v) for v in values)}")


def _object(schema: dict[str, Any], lab: str, rng: random.Random) -> Sampled:
    props: dict[str, Any] = schema.get("properties", {})
    if not props:
        return Sampled({}, f"empty {lab}")
    required = set(schema.get("required", []))
    obj: dict[str, Any] = {}
    parts = []
    for key, sub in props.items():
        if key in required or rng.random() < 0.5:
            s = sample(sub, key, rng)
            obj[key] = s.value
            parts.append(s.phrase)
    if not obj:
        key, sub = next(iter(props.items()))
        s = sample(sub, key, rng)
        obj[key], parts = s.value, [s.phrase]
    return Sampled(obj, f"{lab} with {' and '.join(parts)}")


def inline_refs(schema: Any, root: dict[str, Any] | None = None, depth: int = 0) -> Any:
    """`schema` with every local `{"$ref": "#/$defs/X"}` replaced by X (sibling keys kept), as pydantic and
    FastMCP servers publish them. A reference nested deeper than 8 levels (a recursive model) is left out."""
    root = schema if root is None else root
    if isinstance(schema, list):
        return [inline_refs(v, root, depth) for v in schema]
    if not isinstance(schema, dict):
        return schema
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/") and depth < 8:
        target = root.get("$defs", {}).get(ref.removeprefix("#/$defs/"), {})
        merged = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return inline_refs(merged, root, depth + 1)
    return {k: inline_refs(v, root, depth) for k, v in schema.items() if k != "$defs"}


def sample(schema: dict[str, Any], name: str, rng: random.Random) -> Sampled:
    """A value valid for `schema` and the phrase that names it."""
    lab = label(name)
    if "enum" in schema:
        value = rng.choice(schema["enum"])
        return Sampled(value, f"{lab} {_text(value)}")
    if "const" in schema:
        return Sampled(schema["const"], f"{lab} {_text(schema['const'])}")
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind is None:
        branch = next((b for b in schema.get("anyOf", []) + schema.get("oneOf", []) if b.get("type") != "null"), None)
        if branch is not None:
            return sample(branch, name, rng)
        kind = "string"
    if kind == "boolean":
        value = rng.random() < 0.5
        return Sampled(value, f"{lab} set to {_text(value)}")
    if kind in ("integer", "number"):
        num = _number(schema, kind == "integer", rng)
        return Sampled(num, f"{lab} {_text(num)}")
    if kind == "array":
        return _array(schema, name, lab, rng)
    if kind == "object":
        return _object(schema, lab, rng)
    value = _string(schema, name, rng)
    quoted = f"'{value}'" if " " in value and rng.random() < 0.5 else value
    return Sampled(value, f"{lab} {quoted}")
