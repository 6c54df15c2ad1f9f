"""Audit events for tests: a typical event, a signer, writing through a real writer, and a database
that refuses inserts (a trigger), shared by the tests of ``gateway/audit/``."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import Engine, event, text

from gateway.audit.checkpoints import Signer, new_signing_key
from gateway.audit.verify import verify
from gateway.audit.writer import AuditWriter
from gateway.types import AuditEvent, args_hash


def make_event(n: int = 0, **overrides: Any) -> AuditEvent:
    arguments = overrides.pop("arguments", {"n": n})
    fields: dict[str, Any] = {
        "call_id": f"call-{n}",
        "phase": "decision",
        "method": "tools/call",
        "identity": "reader-agent",
        "server": "notes",
        "tool": "read",
        "arguments": arguments,
        "args_hash": overrides.pop("args_hash", None) or args_hash(arguments),
        "effect": "allow",
        "rule_ids": ("r1",),
        "reason": "granted",
    }
    fields.update(overrides)
    return AuditEvent(**fields)


def make_signer() -> Signer:
    return Signer.from_base64(new_signing_key()[0])


async def write(engine: Engine, events: list[AuditEvent], **writer_options: Any) -> list[int]:
    """Record ``events`` concurrently through one real writer; their seqs."""
    writer = AuditWriter(engine, **writer_options)
    await writer.start()
    try:
        return list(await asyncio.gather(*(writer.record(e) for e in events)))
    finally:
        await writer.stop()


def first_bad(engine: Engine) -> int | None:
    return verify(engine, None).first_bad


def count_commits(engine: Engine) -> list[int]:
    commits: list[int] = []
    event.listen(engine, "commit", lambda conn: commits.append(1))
    return commits


def refuse_inserts(engine: Engine) -> None:
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            conn.execute(
                text(
                    "CREATE TRIGGER refuse BEFORE INSERT ON audit_events BEGIN SELECT RAISE(ABORT, 'disk on fire'); END"
                )
            )
        else:
            conn.execute(
                text(
                    "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS "
                    "$$ BEGIN RAISE EXCEPTION 'disk on fire'; END $$"
                )
            )
            conn.execute(text("CREATE TRIGGER refuse BEFORE INSERT ON audit_events EXECUTE FUNCTION refuse()"))


def allow_inserts(engine: Engine) -> None:
    with engine.begin() as conn:
        conn.execute(
            text("DROP TRIGGER refuse" if engine.dialect.name == "sqlite" else "DROP TRIGGER refuse ON audit_events")
        )
