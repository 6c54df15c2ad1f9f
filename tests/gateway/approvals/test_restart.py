"""Approvals across time and failure end to end, a gateway each: an undecided approval expires,
a pending one survives a gateway restart, and an unusable approval store fails closed."""

from __future__ import annotations

import json

import httpx
import pytest
from sqlalchemy import text

from gateway.db import create_db_engine
from tests.gateway.approvals.harness import (
    IDENTITIES,
    StartGateway,
    approval_row,
    audit_of,
    auth,
    call,
    decide,
    notes_titled,
    pending_id,
)
from tests.gateway.harness import rows, text_of

pytestmark = pytest.mark.anyio


async def test_an_undecided_approval_expires_and_the_call_is_denied_and_audited(
    approvals_gateway: StartGateway,
) -> None:
    with approvals_gateway(IDENTITIES, WARDEN_APPROVAL_HOLD_S="20", WARDEN_APPROVAL_TTL_S="1") as gw:
        result = await call(gw, "writer-agent", "notes__add_note", {"title": "publish too-late", "body": "b"})
        assert result.is_error and "expired" in text_of(result), text_of(result)
        approval_id = text_of(result).split()[2]
        assert approval_row(gw, approval_id)["state"] == "expired"
        assert audit_of(gw, approval_id) == [
            ("tools/call", "decision", "writer-agent", "approve", None),
            ("approvals/expire", "decision", "writer-agent", "deny", "denied"),
            ("tools/call", "outcome", "writer-agent", "deny", "denied"),
        ]
        late = await decide(gw, approval_id, "approve", reason="sorry, was away")
        assert late.status_code == 409 and "expired" in late.json()["detail"]
        assert await notes_titled(gw, "publish too-late") == 0


async def test_a_pending_approval_survives_a_gateway_restart(approvals_gateway: StartGateway) -> None:
    args = {"title": "publish after-restart", "body": "b"}
    with approvals_gateway(IDENTITIES, WARDEN_APPROVAL_HOLD_S="0") as first:
        approval_id = pending_id(await call(first, "writer-agent", "notes__add_note", args))
    with approvals_gateway([], WARDEN_APPROVAL_HOLD_S="0", WARDEN_DATABASE_URL=first.database_url) as second:
        second.keys.update(first.keys)
        second.database_url = first.database_url
        async with httpx.AsyncClient() as http:
            listed = await http.get(f"{second.url}/approvals", headers=auth(second, "alice"))
        assert approval_id in [a["id"] for a in listed.json()]
        assert (await decide(second, approval_id, "approve", reason="after the restart")).status_code == 200
        result = await call(second, "writer-agent", "notes__add_note", args)
        assert not result.is_error, text_of(result)
        assert approval_row(second, approval_id)["state"] == "consumed"


async def test_an_unusable_approval_store_denies_the_call(approvals_gateway: StartGateway) -> None:
    with approvals_gateway(IDENTITIES, WARDEN_APPROVAL_HOLD_S="0") as gw:
        engine = create_db_engine(gw.database_url)
        with engine.begin() as conn:
            conn.execute(text("ALTER TABLE approvals RENAME TO approvals_offline"))
        engine.dispose()
        result = await call(gw, "writer-agent", "notes__add_note", {"title": "publish no-store", "body": "b"})
        assert result.is_error and "approval store" in text_of(result) and "fails closed" in text_of(result)
        assert not any(leak in text_of(result).lower() for leak in ("approvals", "sql", "no such table", "error:"))
        denied = rows(gw, "SELECT * FROM audit_events WHERE method = 'tools/call' AND tool = 'add_note'")[-1]
        assert (denied["effect"], denied["outcome"], json.loads(denied["rule_ids"])) == (
            "deny",
            "denied",
            ["fail-closed"],
        )
        assert await notes_titled(gw, "publish no-store") == 0
