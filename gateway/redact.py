"""Redaction of secrets from tool arguments and free text before anything is stored.

Owns: deciding what a secret looks like. ``redact()`` returns a redacted deep copy of
tool arguments; ``redact_text()`` cleans one string (error messages, log lines);
``redact_json()`` is ``redact()`` serialized, with a fast path for the audit writer;
``redact_secret_values()`` removes from a text (an error echoing the arguments) every
value ``redact()`` would replace in those arguments.

Must never: mutate its input, drop keys (a redacted value is replaced, not removed,
so the stored record keeps its shape), or raise on unexpected value types (they pass
through unchanged).

Three layers, applied in this order by ``redact()``:

1. Fields named by policy, as dotted paths (``"db.password"``). A list on the path is
   entered element by element; ``*`` matches any key. The whole value is replaced.
2. Keys that look secret, whatever their value (case-insensitive, split into words on
   ``_ - .`` and camelCase, then also read with one or two neighbouring words joined, so
   ``pass_word``, ``passWord`` and ``api-key`` read as ``password`` and ``apikey``): words
   starting with ``password passwd passphrase passcode secret credential authorization``;
   the words ``pwd token apikey cookie jwt bearer privatekey accesskey secretkey sessionid
   signingkey sshkey encryptionkey masterkey``. So ``access_token``, ``X-Api-Key``,
   ``signing_key`` and ``dbPassword`` are redacted; ``max_tokens`` and ``author`` are not.
   A key that is itself secret-shaped (layer 3 finds a secret in it, e.g. an ``sk-ant-...``
   used as a key) is replaced by ``[REDACTED]`` (``[REDACTED]#2`` ... when there are
   several), and so is its value.
3. Every string value anywhere (also inside lists and under harmless keys) is cleaned
   by ``redact_text()``, which replaces the secret part of these shapes:

   =====================  =====================================================
   PEM private key        ``-----BEGIN ... PRIVATE KEY-----`` through its END line
   JWT                    ``eyJ<header>.eyJ<payload>.<signature>``
   URL credentials        ``scheme://user:PASSWORD@host`` (password only)
   Authorization header   ``Authorization: <anything to end of line>``
   Bearer token           ``Bearer <16+ token chars>``
   key=value secrets      ``password=… pwd: … api_key=… token=… secret=…``
                          (also ``DB_PASSWORD=…``, JSON ``"token": "…"``)
   OpenAI / Anthropic     ``sk-…``, ``sk-proj-…``, ``sk-ant-…``
   Stripe                 ``sk_live_… rk_live_… sk_test_…``
   GitHub                 ``ghp_ gho_ ghu_ ghs_ ghr_…``, ``github_pat_…``
   GitLab                 ``glpat-…``
   AWS access key id      ``AKIA… ASIA…`` (20 chars)
   Google API key         ``AIza…``
   Slack                  ``xoxb- xoxp- xoxa- xoxr- xoxs-…``, hooks.slack.com URLs
   Hugging Face / npm     ``hf_…``, ``npm_…``
   =====================  =====================================================
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from functools import lru_cache
from itertools import pairwise
from typing import Any

from gateway.types import canonical_json

REDACTED = "[REDACTED]"

_SECRET_WORD_PREFIXES = ("password", "passwd", "passphrase", "passcode", "secret", "credential", "authorization")
_SECRET_WORDS = frozenset(
    {
        *("pwd", "token", "apikey", "cookie", "jwt", "bearer", "privatekey", "accesskey", "secretkey"),
        *("sessionid", "signingkey", "sshkey", "encryptionkey", "masterkey"),
    }
)
SECRET_VALUE_MIN_CHARS = 4
"""Shorter secret values are not searched for in error texts (they would shred ordinary words)."""

_KEY_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")

# (triggers, pattern, replacement). Order matters: whole blocks and structured shapes first.
# A rule runs only when one of its triggers occurs in the lowercased text: most strings hold
# no secret, and a substring test is far cheaper than a (case-insensitive) regex scan.
_RULES: tuple[tuple[tuple[str, ...], str, str], ...] = (
    (
        ("private key",),
        r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?s:.*?)(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)",
        REDACTED,
    ),
    (("eyj",), r"\beyJ[A-Za-z0-9_-]{4,}\.eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*", REDACTED),
    (("://",), r"(?i:\b([a-z][a-z0-9+.\-]*://[^\s:/@?#]*:)[^\s/?#]+(@))", rf"\1{REDACTED}\2"),
    (("authorization",), r"(?i:\b(authorization\s*[:=]\s*)[^\r\n]+)", rf"\1{REDACTED}"),
    (("bearer",), r"(?i:\b(bearer\s+)[A-Za-z0-9._~+/=\-]{16,})", rf"\1{REDACTED}"),
    (
        ("pass", "pwd", "secret", "token", "key", "credential"),
        r"(?i:((?:password|passwd|passphrase|pwd|secret|token|api[_-]?key|access[_-]?key"
        r"|private[_-]?key|credentials?))"
        r"(\"?'?\s*[=:]\s*\"?'?)"
        r"(?!\[REDACTED\])[^\s\"'&;,}]+)",
        rf"\1\2{REDACTED}",
    ),
    (("sk-",), r"\bsk-(?:proj-|ant-|live-|test-|svcacct-|admin-)?[A-Za-z0-9_\-]{16,}", REDACTED),
    (("k_live_", "k_test_"), r"\b[sr]k_(?:live|test)_[A-Za-z0-9]{16,}", REDACTED),
    (("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), r"\bgh[pousr]_[A-Za-z0-9]{30,}", REDACTED),
    (("github_pat_",), r"\bgithub_pat_[A-Za-z0-9_]{22,}", REDACTED),
    (("glpat-",), r"\bglpat-[A-Za-z0-9_\-]{20,}", REDACTED),
    (
        ("akia", "asia", "agpa", "aida", "aroa", "aipa", "anpa", "anva"),
        r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|AIPA|ANPA|ANVA)[A-Z0-9]{16}\b",
        REDACTED,
    ),
    (("aiza",), r"\bAIza[0-9A-Za-z_\-]{35}", REDACTED),
    (("xox",), r"\bxox[abposr]-[A-Za-z0-9\-]{10,}", REDACTED),
    (("hooks.slack.com",), r"(https://hooks\.slack\.com/services/)[A-Za-z0-9/_\-]+", rf"\1{REDACTED}"),
    (("hf_",), r"\bhf_[A-Za-z0-9]{30,}", REDACTED),
    (("npm_",), r"\bnpm_[A-Za-z0-9]{36}", REDACTED),
)
_TEXT_RULES = tuple((triggers, re.compile(pattern), replacement) for triggers, pattern, replacement in _RULES)
_ANY_TRIGGER = re.compile("|".join(re.escape(trigger) for triggers, _, _ in _RULES for trigger in triggers))
# Every secret key word (layer 2) contains one of these; with the text triggers (layer 3) they
# let ``redact_json`` prove from the serialized text alone that nothing needs redacting.
_KEY_TRIGGERS = ("pass", "secret", "credential", "authorization", "pwd", "token", "key", "cookie", "jwt", "session")
_ANY_SECRET_HINT = re.compile(
    "|".join(re.escape(t) for t in sorted({*_KEY_TRIGGERS, *(t for triggers, _, _ in _RULES for t in triggers)}))
)


def redact_text(text: str) -> str:
    """Replace the secret part of every known secret shape in ``text``."""
    lowered = text.lower()
    if _ANY_TRIGGER.search(lowered) is None:
        return text
    for triggers, pattern, replacement in _TEXT_RULES:
        for trigger in triggers:
            if trigger in lowered:
                text = pattern.sub(replacement, text)
                break
    return text


@lru_cache(maxsize=4096)
def is_secret_key(key: str) -> bool:
    """Whether a mapping key names a secret (see the module docstring for the word list)."""
    words = [w.lower() for w in _KEY_WORD.findall(key)]
    joined = [
        *words,
        *(a + b for a, b in pairwise(words)),
        *(a + b + c for a, b, c in zip(words, words[1:], words[2:], strict=False)),
    ]
    return any(w.startswith(_SECRET_WORD_PREFIXES) or w in _SECRET_WORDS for w in joined)


def redact_secret_values(text: str, arguments: Mapping[str, Any], fields: frozenset[str] = frozenset()) -> str:
    """``text`` without any value that ``redact(arguments, fields)`` replaces (as written, as JSON
    escapes it, or as Python's repr does): a validation or upstream error echoing a redacted
    argument must not store it in clear. Values shorter than ``SECRET_VALUE_MIN_CHARS`` stay."""
    if not text:
        return text
    found: set[str] = set()
    try:
        _collect_secrets(arguments, [tuple(f.split(".")) for f in fields if f], found, 0)
    except RecursionError:  # absurdly deep arguments: the error text is dropped instead
        return REDACTED
    for value in sorted(found, key=len, reverse=True):
        for form in {value, json.dumps(value, ensure_ascii=False)[1:-1], repr(value)[1:-1]}:
            if len(form) >= SECRET_VALUE_MIN_CHARS and form in text:
                text = text.replace(form, REDACTED)
    return text


def _collect_secrets(value: Any, paths: list[tuple[str, ...]], found: set[str], secret: int) -> None:
    """Every string leaf of ``value`` that redaction would replace; ``secret`` > 0 under a replaced value."""
    if isinstance(value, str):
        if secret or redact_text(value) != value:
            found.add(value)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            name = str(key)
            matching = [p for p in paths if p[0] in ("*", name)]
            replaced = any(len(p) == 1 for p in matching) or is_secret_key(name) or redact_text(name) != name
            _collect_secrets(item, [p[1:] for p in matching if len(p) > 1], found, secret or int(replaced))
    elif isinstance(value, list | tuple):
        for item in value:
            _collect_secrets(item, paths, found, secret)
    elif secret and isinstance(value, int | float) and not isinstance(value, bool):
        found.add(str(value))


def redact(arguments: Mapping[str, Any], fields: frozenset[str] = frozenset()) -> dict[str, Any]:
    """A redacted deep copy of ``arguments``; ``fields`` are dotted paths named by policy."""
    paths = [tuple(f.split(".")) for f in fields if f]
    return _redact_mapping(arguments, paths)


def redact_json(arguments: Mapping[str, Any], fields: frozenset[str] = frozenset()) -> str:
    """``canonical_json(redact(arguments, fields))``, without walking the arguments when their
    serialized text holds no hint of a secret key or shape (the common case on the audit path).

    No trigger contains a character JSON escapes, so a trigger in any key or string shows
    in the text. The fast path serializes only dicts, lists and JSON scalars (anything else
    takes the full path), so its text is exactly what the full path would produce.
    """
    if not fields and isinstance(arguments, dict):
        try:
            text = _PLAIN_JSON(arguments)
        except _NotPlain:
            pass
        else:
            if _ANY_SECRET_HINT.search(text.lower()) is None:
                return text
    return canonical_json(redact(arguments, fields))


class _NotPlain(Exception):
    pass


def _refuse(value: Any) -> Any:
    raise _NotPlain


_PLAIN_JSON = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=_refuse).encode
"""``canonical_json`` for values made only of dicts, lists, tuples and JSON scalars."""


def _redact_mapping(value: Mapping[Any, Any], paths: list[tuple[str, ...]]) -> dict[str, Any]:
    out: dict[Any, Any] = {}
    for key, item in value.items():
        name = str(key)
        matching = [p for p in paths if p[0] in ("*", name)]
        if redact_text(name) != name:  # the key itself is a secret: neither it nor its value is kept
            key = REDACTED
            n = 1
            while key in out or key in value:
                n += 1
                key = f"{REDACTED}#{n}"
            out[key] = REDACTED
        elif any(len(p) == 1 for p in matching) or is_secret_key(name):
            out[key] = REDACTED
        else:
            out[key] = _redact_value(item, [p[1:] for p in matching])
    return out


def _redact_value(value: Any, paths: list[tuple[str, ...]]) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return _redact_mapping(value, paths)
    if isinstance(value, list | tuple):
        return [_redact_value(item, paths) for item in value]
    return value
