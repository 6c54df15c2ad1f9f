"""Redaction on the audit path: a corpus of seeded secrets leaves no trace in the database, the
exports, the API's answers or the logs. On SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, MetaData, select

from gateway.audit.errors import AuditError
from gateway.audit.query import EventFilter, export_lines, get_event, iter_events, query_events
from gateway.audit.writer import AuditWriter
from gateway.redact import REDACTED, redact, redact_json
from gateway.types import canonical_json
from tests.gateway.audit.events import allow_inserts, make_event, refuse_inserts
from tests.gateway.test_redact import SECRETS, SELF_EVIDENT

pytestmark = pytest.mark.anyio

POLICY_SECRET = "123-45-6789"


def secret_events() -> list[tuple[Any, frozenset[str]]]:
    events: list[tuple[Any, frozenset[str]]] = []
    for n, (_shape, secret, template) in enumerate(SECRETS):
        text = template.format(secret)
        arguments = {"query": text, "password": secret, "nested": [{"note": text}], "Authorization": secret}
        events.append(
            (
                make_event(n, arguments=arguments, error=f"upstream said: {text}", reason=f"rule matched {text}"),
                frozenset(),
            )
        )
    events.append(
        (
            make_event(999, arguments={"ssn": POLICY_SECRET, "rows": [{"ssn": POLICY_SECRET}]}),
            frozenset({"ssn", "rows.ssn"}),
        )
    )
    return events + hidden_secret_events()


KEY_SECRET = "zq-plain-9f8e7d6c"
"""A value with no secret shape: only its key (or policy) says it is secret."""
NORMALISED_KEYS = ("passWord", "pass_word", "PASS-WORD", "signing_key", "ssh_key", "sshKey", "api-key", "Pass.Code")


def hidden_secret_events() -> list[tuple[Any, frozenset[str]]]:
    """Secrets where issue 12 found them stored in clear: as keys, under normalised key names, in
    request refs, and echoed by error texts (schema validation, upstream errors)."""
    events: list[tuple[Any, frozenset[str]]] = []
    for n, (shape, secret, template) in enumerate(SECRETS, start=1000):
        text = template.format(secret)
        keys = {secret: "as a key"} if shape in SELF_EVIDENT else {}  # the rest need their context
        events.append((make_event(n, arguments={**keys, "x": {text: 1}}, request_ref=text), frozenset()))
    for n, key in enumerate(NORMALISED_KEYS, start=2000):
        events.append(
            (make_event(n, arguments={key: KEY_SECRET}, error=f"upstream: bad value {KEY_SECRET}"), frozenset())
        )
    schema_error = f"ssn: ['{POLICY_SECRET}'] is not of type 'string'"
    for n, error in enumerate((schema_error, f'upstream echoed {{"ssn": "{POLICY_SECRET}"}}'), start=3000):
        events.append(
            (make_event(n, effect="deny", arguments={"ssn": [POLICY_SECRET]}, error=error), frozenset({"ssn"}))
        )
    return events


def leaks(text: str) -> list[str]:
    found = [shape for shape, secret, _ in SECRETS if secret in text]
    found += ["policy field"] if POLICY_SECRET in text else []
    return found + (["secret-named key"] if KEY_SECRET in text else [])


def dump_database(engine: Engine) -> str:
    """Every value of every row of every table, as text."""
    metadata = MetaData()
    metadata.reflect(engine)
    parts = []
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            for row in conn.execute(select(table)):
                parts.append(" ".join(str(value) for value in row))
    return "\n".join(parts)


async def test_no_seeded_secret_reaches_the_database_the_exports_or_the_logs(
    engine: Engine, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    writer = AuditWriter(engine)
    await writer.start()
    seqs = await asyncio.gather(*(writer.record(event, fields) for event, fields in secret_events()))
    await writer.stop()

    assert leaks(dump_database(engine)) == []
    if engine.dialect.name == "sqlite":  # the raw bytes too: database file and write-ahead log
        path = Path(database_url.removeprefix("sqlite:///"))
        raw = b"".join(p.read_bytes() for p in path.parent.glob(path.name + "*"))
        assert leaks(raw.decode("utf-8", errors="replace")) == []
    everything = EventFilter()
    assert leaks("".join(export_lines(iter_events(engine, everything), "jsonl"))) == []
    assert leaks("".join(export_lines(iter_events(engine, everything), "csv"))) == []
    assert leaks(query_events(engine, everything, limit=1000).model_dump_json()) == []
    assert leaks("".join(get_event(engine, seq).model_dump_json() for seq in seqs)) == []  # type: ignore[union-attr]
    assert leaks(caplog.text) == []
    assert REDACTED in dump_database(engine)


async def test_a_failed_commit_does_not_leak_secrets_in_its_error(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    writer = AuditWriter(engine)
    await writer.start()
    refuse_inserts(engine)
    results = await asyncio.gather(*(writer.record(e, f) for e, f in secret_events()), return_exceptions=True)
    allow_inserts(engine)
    await writer.stop()
    assert all(isinstance(r, AuditError) for r in results)
    assert leaks(" ".join(str(r) for r in results) + caplog.text) == []


CASES: list[tuple[dict[str, Any], frozenset[str]]] = [
    ({"path": "/notes/1", "limit": 10, "flags": [True, None, 1.5], "nested": {"a": ["b", {"c": "d"}]}}, frozenset()),
    ({"path": "/notes/1"}, frozenset({"path"})),
    ({"keyboard": "qwerty"}, frozenset()),  # a hint ("key") but no secret: the full path gives the same text
    ({"t": ("a", "b")}, frozenset()),  # tuples serialize as lists on both paths
    ({"when": object()}, frozenset()),  # not JSON: the full path stringifies it
    *[({"q": template.format(secret), "password": secret}, frozenset()) for _, secret, template in SECRETS],
]


@pytest.mark.parametrize(("arguments", "fields"), CASES)
def test_redact_json_is_exactly_redact_serialized(arguments: dict[str, Any], fields: frozenset[str]) -> None:
    if "when" in arguments:
        assert redact_json(arguments, fields).startswith('{"when":"<object object')
        return
    assert redact_json(arguments, fields) == canonical_json(redact(arguments, fields))
