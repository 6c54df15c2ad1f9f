"""What a tool definition says about its risk: the classes, their order, and named evidence.

Owns the `RiskClass` enum with its severity order, the `Evidence` value and the four readers
of a tool definition: its MCP annotations, its name, its description and its input schema.
Each reader returns evidence; `classify.py` weighs it. Word lists are here, in one place, so
an operator can read why a word counts.

Must never: do I/O, look at call arguments, or decide a call. Pure and deterministic: the
same definition gives the same evidence, in the same order.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

import mcp_types as types


class RiskClass(StrEnum):
    """What a tool may do, least severe first (the order of `SEVERITY`)."""

    READ_ONLY = "read-only"  # changes nothing
    OPEN_WORLD = "open-world"  # reaches systems outside the server (the internet, other hosts)
    WRITES = "writes"  # changes state it can be undone from
    HANDLES_SECRETS = "handles-secrets"  # reads or takes credentials, tokens, environment variables
    DESTRUCTIVE = "destructive"  # deletes, overwrites or resets
    EXECUTES_CODE = "executes-code"  # runs commands, scripts or code it is given


SEVERITY: tuple[RiskClass, ...] = tuple(RiskClass)
"""Least to most severe; `Risk.level` is the most severe class a tool has."""

MUTATING = frozenset({RiskClass.WRITES, RiskClass.DESTRUCTIVE, RiskClass.EXECUTES_CODE})
"""Classes that rule out read-only."""

Source = Literal["annotation", "name", "description", "schema", "default"]


@dataclass(frozen=True, slots=True)
class Evidence:
    """One named reason: where it was found, the class it argues for (None: a note only), and what."""

    source: Source
    risk: RiskClass | None
    detail: str

    def __str__(self) -> str:
        claim = f" -> {self.risk}" if self.risk is not None else ""
        return f"{self.source}: {self.detail}{claim}"


def _vocabulary(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Verbs in tool names (matched as whole words of the name: git_reset, delete-entities, killProcess).
DESTRUCTIVE_VERBS = _vocabulary(
    "delete remove rm del drop reset purge destroy kill truncate wipe erase revoke unlink overwrite "
    "terminate uninstall prune discard clear"
)
EXEC_VERBS = _vocabulary("exec execute run eval evaluate shell spawn invoke script bash sh sql")
WRITE_VERBS = _vocabulary(
    "write create update add edit set put push commit move rename insert save upload patch modify append "
    "checkout merge apply send post toggle mkdir install import enable disable publish deploy register "
    "assign change replace store copy restore rebase tag stage unstage"
)
READ_VERBS = _vocabulary(
    "get list read search find show status diff log view describe query open lookup count check inspect "
    "tree info echo stat convert fetch browse"
)
OPEN_WORLD_WORDS = _vocabulary("fetch http https web browse download crawl scrape email webhook url")
SECRET_WORDS = _vocabulary("env environ secret secrets password passwd token tokens credential credentials")

# Parameter names (whole lowercased name, or one of its words).
EXEC_PARAMS = _vocabulary("command cmd commands script code shell expression program sql eval")
OPEN_WORLD_PARAMS = _vocabulary("url urls uri endpoint webhook host hostname domain href")
SECRET_PARAMS = _vocabulary(
    "password passwd passphrase token secret credential credentials apikey api_key privatekey private_key "
    "accesskey access_key authorization auth bearer"
)
PATH_PARAMS = _vocabulary("path paths file files filename directory dir source destination")

# Phrases in descriptions: only strong ones (descriptions are prose, and prose says "not deleted").
_DESCRIPTION: tuple[tuple[re.Pattern[str], RiskClass], ...] = (
    (re.compile(r"\b(delete[sd]?|deleting|overwrites?|permanently|irreversibl[ye]|erases?|wipes?)\b"),
     RiskClass.DESTRUCTIVE),
    (re.compile(r"\b(execute[sd]?|executing|runs? (?:a |the |any )?(?:shell )?(?:command|script|code))\b"),
     RiskClass.EXECUTES_CODE),
    (re.compile(r"\b(environment variables?|passwords?|api keys?|credentials?|secrets?)\b"),
     RiskClass.HANDLES_SECRETS),
    (re.compile(r"\b(the internet|any url|web pages?|http requests?)\b"), RiskClass.OPEN_WORLD),
)  # fmt: skip

_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")


def words(name: str) -> list[str]:
    """The lowercased words of an identifier: ``git_create_branch``, ``get-env``, ``killProcess``."""
    return [w.lower() for w in _WORD_SPLIT.split(name) if w]


def from_annotations(annotations: types.ToolAnnotations | None) -> list[Evidence]:
    """The server's own claims. Explicit hints only, plus the spec's default that a tool declared
    not read-only is destructive unless it says ``destructiveHint: false``."""
    if annotations is None:
        return [Evidence("annotation", None, "no annotations: the server makes no claims")]
    found: list[Evidence] = []
    read_only, destructive = annotations.read_only_hint, annotations.destructive_hint
    if read_only is True:
        found.append(Evidence("annotation", RiskClass.READ_ONLY, "readOnlyHint=true"))
    elif read_only is False:
        found.append(Evidence("annotation", RiskClass.WRITES, "readOnlyHint=false"))
    if destructive is True:
        found.append(Evidence("annotation", RiskClass.DESTRUCTIVE, "destructiveHint=true"))
    elif destructive is None and read_only is False:
        found.append(Evidence("annotation", RiskClass.DESTRUCTIVE, "destructiveHint unset (MCP default true)"))
    if annotations.open_world_hint is True:
        found.append(Evidence("annotation", RiskClass.OPEN_WORLD, "openWorldHint=true"))
    if annotations.idempotent_hint is not None:
        found.append(Evidence("annotation", None, f"idempotentHint={str(annotations.idempotent_hint).lower()}"))
    return found


def from_name(name: str) -> list[Evidence]:
    """Verbs and nouns in the tool's name."""
    found: list[Evidence] = []
    for word in words(name):
        for vocabulary, risk, what in (
            (DESTRUCTIVE_VERBS, RiskClass.DESTRUCTIVE, "verb"),
            (EXEC_VERBS, RiskClass.EXECUTES_CODE, "verb"),
            (WRITE_VERBS, RiskClass.WRITES, "verb"),
            (READ_VERBS, RiskClass.READ_ONLY, "verb"),
            (OPEN_WORLD_WORDS, RiskClass.OPEN_WORLD, "word"),
            (SECRET_WORDS, RiskClass.HANDLES_SECRETS, "word"),
        ):
            if word in vocabulary:
                found.append(Evidence("name", risk, f"{what} {word!r}"))
    return found


def from_description(description: str | None) -> list[Evidence]:
    """Strong phrases in the description (first match of each kind)."""
    text = (description or "").lower()
    found: list[Evidence] = []
    for pattern, risk in _DESCRIPTION:
        match = pattern.search(text)
        if match:
            found.append(Evidence("description", risk, f"says {match.group(0)!r}"))
    return found


def from_schema(schema: Mapping[str, Any] | None) -> list[Evidence]:
    """Parameters whose names (or ``format: uri``) say what the tool takes, nested ones included."""
    found: list[Evidence] = []
    seen: set[tuple[RiskClass | None, str]] = set()
    for path, prop in _properties(schema or {}, ""):
        leaf = path.rsplit(".", 1)[-1]
        for risk, why in _param_risks(leaf, prop):
            if (risk, path) not in seen:
                seen.add((risk, path))
                found.append(Evidence("schema", risk, f"parameter {path!r} {why}"))
    return found


def _param_risks(name: str, prop: Mapping[str, Any]) -> Iterator[tuple[RiskClass | None, str]]:
    lowered = name.lower()
    parts = {lowered, *words(name)}
    if parts & EXEC_PARAMS:
        yield RiskClass.EXECUTES_CODE, "takes code or a command"
    if parts & OPEN_WORLD_PARAMS or prop.get("format") in ("uri", "url", "iri"):
        yield RiskClass.OPEN_WORLD, "takes a URL or host"
    if parts & SECRET_PARAMS or prop.get("writeOnly") is True:
        yield RiskClass.HANDLES_SECRETS, "takes a credential"
    if parts & PATH_PARAMS:
        yield None, "names a path on the server's host"


def _properties(schema: Mapping[str, Any], prefix: str, depth: int = 0) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(dotted path, property schema) for every named property, items of arrays included; depth-capped."""
    if depth > 8 or not isinstance(schema, Mapping):
        return
    props = schema.get("properties")
    if isinstance(props, Mapping):
        for name in sorted(props):
            prop = props[name] if isinstance(props[name], Mapping) else {}
            path = f"{prefix}{name}"
            yield path, prop
            yield from _properties(prop, f"{path}.", depth + 1)
    items = schema.get("items")
    if isinstance(items, Mapping):
        yield from _properties(items, prefix, depth + 1)
