"""gateway/redact.py: no secret of a known shape survives; harmless values do."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.redact import REDACTED, is_secret_key, redact, redact_secret_values, redact_text

# (shape, the secret itself, how it appears in text). Values are fake but shaped like real ones.
SECRETS: list[tuple[str, str, str]] = [
    ("openai", "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", "use key {} please"),
    ("openai-legacy", "sk-AbCdEfGhIjKlMnOpQrStT3BlbkFJ0123456789abcd", "OPENAI={}"),
    ("anthropic", "sk-ant-api03-AbCdEfGhIjKlMnOpQrStUvWxYz", "key: {}"),
    ("stripe", "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "charge with {}"),
    ("github", "ghp_1234567890abcdefghijABCDEFGHIJ123456", "git clone https://github.com/x/y with {}"),
    ("github-fine", "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "token {}"),
    ("gitlab", "glpat-abcdefghij0123456789", "GL {}"),
    ("aws", "AKIAIOSFODNN7EXAMPLE", "aws id {} in us-east-1"),
    ("google", "AIzaSyA1234567890abcdefghijklmnopqrstuv", "maps {}"),
    ("slack", "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "slack {}"),
    ("slack-hook", "T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX", "post to https://hooks.slack.com/services/{}"),
    ("huggingface", "hf_AbCdEfGhIjKlMnOpQrStUvWxYz01234567", "HF {}"),
    ("npm", "npm_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789", "npm {}"),
    ("bearer", "abcDEF123456ghiJKL789_-.xyz", "curl -H 'X: 1' -H 'Bearer {}'"),
    ("authorization", "Basic dXNlcjpwYXNzd29yZA==", "Authorization: {}\nnext line"),
    (
        "jwt",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        "cookie was {}",
    ),
    ("pg-url", "s3cr3t-pw", "connect to postgres://admin:{}@db.internal:5432/prod"),
    ("redis-url", "hunter22", "redis://:{}@cache:6379/0"),
    ("kv-password", "Tr0ub4dor&3x", "login with password={} now"),
    ("kv-db-password", "correct-horse", "DB_PASSWORD={}"),
    ("kv-json", "opensesame", 'config {{"api_key": "{}"}}'),
    ("kv-connstring", "P@55w0rd!", "Server=db;User Id=sa;Password={};"),
    ("kv-query-token", "q1w2e3r4t5y6", "GET /feed?access_token={}&page=2"),
    (
        "pem",
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7\nVJTUt9Us8cKjMzEfYyjiWA4R4/M2bS1GB4t7NXp98C3SC6dV",
        "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----",
    ),
    (
        "pem-unterminated",
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7",
        "-----BEGIN PRIVATE KEY-----\n{}",
    ),
]

SELF_EVIDENT = {
    "openai", "openai-legacy", "anthropic", "stripe", "github", "github-fine", "gitlab", "aws", "google", "slack",
    "huggingface", "npm", "jwt",
}  # fmt: skip


@pytest.mark.parametrize(("shape", "secret", "template"), SECRETS, ids=[s[0] for s in SECRETS])
def test_redact_text_removes_every_secret_shape(shape: str, secret: str, template: str) -> None:
    text = template.format(secret)
    cleaned = redact_text(text)
    assert secret not in cleaned
    assert REDACTED in cleaned


@pytest.mark.parametrize(("shape", "secret", "template"), SECRETS, ids=[s[0] for s in SECRETS])
def test_redact_finds_secrets_anywhere_in_arguments(shape: str, secret: str, template: str) -> None:
    text = template.format(secret)
    arguments: dict[str, Any] = {"query": text, "nested": {"list": ["ok", {"deep": text}]}}
    if shape in SELF_EVIDENT:  # recognisable without context, even as a bare value
        arguments["plain"] = secret
    assert secret not in json.dumps(redact(arguments))


def test_secret_looking_keys_are_redacted_whatever_their_value() -> None:
    arguments = {
        "password": "x",
        "dbPassword": 12345,
        "PASSWD": "x",
        "client_secret": "x",
        "GITHUB_TOKEN": "x",
        "access_token": "x",
        "X-Api-Key": "x",
        "apikey": "x",
        "APIKey": "x",
        "Authorization": "x",
        "private_key": "x",
        "aws_access_key_id": "x",
        "credentials": {"user": "u", "pass": "p"},
        "session_id": "x",
        "Cookie": "x",
    }
    redacted = redact(arguments)
    assert redacted == {key: REDACTED for key in arguments}


@pytest.mark.parametrize("key", ["max_tokens", "author", "path", "keyboard", "monkey", "passage", "keys", "id"])
def test_harmless_keys_are_not_taken_for_secrets(key: str) -> None:
    assert not is_secret_key(key)


def test_harmless_values_are_kept_unchanged() -> None:
    arguments = {
        "max_tokens": 256,
        "author": "Ada",
        "url": "https://example.com:8443/path?q=1",
        "email": "ada@example.com",
        "text": "The bearer of this letter is welcome. Time 12:30:45.",
        "flags": [True, None, 1.5],
        "sketch": "skeleton key sk-short",
    }
    assert redact(arguments) == arguments


def test_policy_fields_are_dotted_paths_through_dicts_and_lists() -> None:
    arguments = {
        "query": "select 1",
        "db": {"host": "h", "user": "u"},
        "rows": [{"ssn": "123-45-6789", "name": "a"}, {"ssn": "987-65-4321", "name": "b"}],
        "any": {"x": {"card": "4111"}, "y": {"card": "5500"}},
    }
    redacted = redact(arguments, frozenset({"query", "db.user", "rows.ssn", "any.*.card", "missing.path"}))
    assert redacted == {
        "query": REDACTED,
        "db": {"host": "h", "user": REDACTED},
        "rows": [{"ssn": REDACTED, "name": "a"}, {"ssn": REDACTED, "name": "b"}],
        "any": {"x": {"card": REDACTED}, "y": {"card": REDACTED}},
    }


def test_redact_returns_a_copy_and_never_mutates_its_input() -> None:
    arguments = {"password": "p", "nested": {"items": ["sk-proj-AbCdEfGhIjKlMnOpQrStUvWx"]}}
    before = json.dumps(arguments)
    redacted = redact(arguments)
    assert json.dumps(arguments) == before
    assert redacted["nested"] is not arguments["nested"]


def test_redaction_is_idempotent() -> None:
    text = " ".join(template.format(secret) for _, secret, template in SECRETS)
    once = redact_text(text)
    assert redact_text(once) == once


@pytest.mark.parametrize(
    "key", ["passWord", "pass_word", "PASS-WORD", "Pass.Word", "signing_key", "signingKey", "ssh_key", "SSHKey",
            "api-key", "x_api_key", "passcode", "encryption_key", "bearer", "client_secret"],
)  # fmt: skip
def test_normalised_secret_key_names_are_redacted(key: str) -> None:
    assert redact({key: "plain-value-1234"}) == {key: REDACTED}


@pytest.mark.parametrize("key", ["max_tokens", "author", "passage", "keyboard", "monkey", "sort_key", "passport"])
def test_ordinary_key_names_are_kept(key: str) -> None:
    assert redact({key: "plain-value-1234"}) == {key: "plain-value-1234"}


@pytest.mark.parametrize(("shape", "secret", "template"), [s for s in SECRETS if s[0] in SELF_EVIDENT])
def test_a_secret_used_as_a_key_is_replaced_with_its_value(shape: str, secret: str, template: str) -> None:
    redacted = redact({secret: "v", "other": {secret: 1}, "keep": "x"})
    assert secret not in json.dumps(redacted) and "v" not in redacted.values()
    assert redacted["keep"] == "x" and len(redacted) == 3  # the shape is kept


def test_values_redaction_replaces_are_removed_from_error_texts() -> None:
    arguments = {"ssn": ["123-45-6789"], "passWord": "zq-plain-9f8e7d", "note": "hello world"}
    error = "ssn/0: '123-45-6789' is not valid; upstream echoed \"zq-plain-9f8e7d\" and hello world"
    cleaned = redact_secret_values(error, arguments, frozenset({"ssn"}))
    assert "123-45-6789" not in cleaned and "zq-plain-9f8e7d" not in cleaned and "hello world" in cleaned
