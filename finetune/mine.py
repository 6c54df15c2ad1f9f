"""Mine examples from the gateway's audit log: its database (read through `gateway.audit.query`,
as `warden audit export` reads it) or a JSONL export of it (`warden audit export`).

What the log holds of one `tools/call` (gateway/proxy/): a `decision` event (identity, server,
tool, REDACTED arguments, effect, rule ids, reason, `request_ref`) and, for a forwarded call, an
`outcome` event (`ok`, `tool_error`, ...); a call refused before forwarding has one event carrying
both. Events are paired by `call_id`:
- a call policy allowed whose outcome is `ok` becomes an example with that call;
- a call policy denied (a rule, or no grant) becomes a policy-aware example: the same request
  answered in text without a call, so the model learns not to attempt what that identity may not do.
Skipped: `tools/list` events, calls held for approval (a person decided, not the policy), rate-limited
and fail-closed denials (the identity may make that call, just not then), other outcomes (tool
errors, timeouts), and tools that are not in the catalog. Dropped: examples in which the gateway's
redaction marker would appear (a model must never learn to write `[REDACTED]`), and examples that
do not validate against the tool's schema; nothing is repaired.

The user request: the audit log records only `request_ref`, the correlation id the agent sets in the
request's `_meta` (`warden/request_id`). The agent's words are in its transcripts (`warden agent run`
writes JSONL whose `start` event has `request_id` and `task`): `read_requests` maps one to the other.
Only the FIRST call of a request is paired with its words (later calls answered tool results, not the
request); every other call gets a request phrased from its arguments.

Never writes: the database is opened query-only (SQLite `PRAGMA query_only`, PostgreSQL read-only
transactions), and a SQLite file that does not exist is an error, never created.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError
from sqlalchemy import Engine, event, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from finetune.data import DataError, validate
from finetune.schema_values import label
from finetune.synth import Example, Tool
from gateway.audit.query import EventFilter, iter_events
from gateway.db import create_db_engine
from gateway.redact import REDACTED

Kind = Literal["allowed_ok", "denied"]


class MineError(ValueError):
    """The audit log or the transcripts cannot be read; the message names which and why."""


def read_events(path: Path) -> list[dict[str, Any]]:
    """Audit events from a JSONL export; a bad line raises DataError naming `path:line`."""
    out = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{lineno}: not valid JSON ({e.msg})") from e
    return out


def read_db(url: str, identity: str | None = None) -> Iterator[dict[str, Any]]:
    """Every audit event (of `identity`), oldest first, read query-only from the gateway's database.

    Streams in chunks (`gateway.audit.query.iter_events`); each event is the dict a JSONL export has.
    Raises MineError naming the database (password hidden) when it cannot be opened or read.
    """
    try:
        where = EventFilter(identity=identity)
    except ValidationError as e:
        raise MineError(f"identity {identity!r}: {e.errors()[0]['msg']}") from None
    engine, shown = open_read_only(url)
    try:
        for found in iter_events(engine, where):
            yield found.model_dump(mode="json")
    except SQLAlchemyError as e:
        raise MineError(f"cannot read the audit log at {shown}: {str(e).splitlines()[0]}") from None
    finally:
        engine.dispose()


def open_read_only(url: str) -> tuple[Engine, str]:
    """An engine on the gateway's database that cannot write, and the URL as it may be shown."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise MineError(f"the audit database: not a database URL: {url!r}") from None
    shown = parsed.render_as_string(hide_password=True)
    sqlite = parsed.get_backend_name() == "sqlite"
    if sqlite and not (parsed.database and Path(parsed.database).is_file()):
        raise MineError(f"the audit database {shown}: no SQLite database file at {parsed.database or '(none)'}")
    try:
        engine = create_db_engine(url)
    except ArgumentError as e:  # an unknown dialect or a driver that is not installed
        raise MineError(f"the audit database {shown} cannot be opened: {e}") from None
    if sqlite:
        event.listen(engine, "connect", _query_only)
        return engine, shown
    return engine.execution_options(postgresql_readonly=True), shown


def _query_only(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA query_only=ON")
    finally:
        cursor.close()


def read_requests(path: Path) -> dict[str, str]:
    """`request_id -> task` from agent transcripts: one JSONL file, or every `*.jsonl` under a directory."""
    if not path.exists():
        raise MineError(f"transcripts: {path} does not exist")
    files = sorted(path.rglob("*.jsonl")) if path.is_dir() else [path]
    out: dict[str, str] = {}
    for file in files:
        for lineno, line in enumerate(file.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                ev = json.loads(line)
            except json.JSONDecodeError as e:
                raise DataError(f"{file}:{lineno}: not valid JSON ({e.msg})") from e
            if isinstance(ev, dict) and ev.get("event") == "start" and ev.get("request_id") and ev.get("task"):
                out[str(ev["request_id"])] = str(ev["task"])
    return out


def _phrase(tool: str, args: Mapping[str, Any]) -> str:
    """A request phrased from the call, its values written out as the synthesized requests do."""
    parts = [f"{label(k)} {v if isinstance(v, str) else json.dumps(v)}" for k, v in args.items()]
    verb = label(tool)
    return f"Please {verb}" + (f" with {', '.join(parts)}." if parts else ".")


def _calls(events: Iterable[Mapping[str, Any]], identity: str | None) -> list[dict[str, Any]]:
    """One merged record per `tools/call`, in the order the calls were first seen (oldest first)."""
    by_call: dict[str, dict[str, Any]] = {}
    for ev in events:
        if ev.get("method", "tools/call") != "tools/call" or (identity and ev.get("identity") != identity):
            continue
        merged = by_call.setdefault(str(ev["call_id"]), {})
        merged.update({k: v for k, v in ev.items() if v not in (None, "", [], {})})
    return list(by_call.values())


def _kind(rec: Mapping[str, Any]) -> Kind | None:
    """What a call teaches: made (allowed, ok), refused (denied by policy), or nothing."""
    if rec.get("approval_id") or rec.get("effect") == "approve":
        return None  # a person decided
    if rec.get("effect") == "allow" and rec.get("outcome") == "ok":
        return "allowed_ok"
    denied = rec.get("effect") == "deny" or rec.get("outcome") == "denied"
    rules = rec.get("rule_ids") or []
    transient = "fail-closed" in rules or str(rec.get("reason", "")).startswith("rate limit ")
    return "denied" if denied and not transient else None


def _answer(kind: Kind, name: str, args: Mapping[str, Any], reason: str) -> dict[str, Any]:
    if kind == "allowed_ok":
        call = {"name": name, "arguments": json.dumps(args, ensure_ascii=False)}
        return {"role": "assistant", "content": "", "tool_calls": [{"type": "function", "function": call}]}
    return {"role": "assistant", "content": f"I can't call {name} for this request: {reason or 'not allowed'}."}


def mine(
    events: Iterable[Mapping[str, Any]],
    catalog: list[Tool],
    identity: str | None = None,
    *,
    requests: Mapping[str, str] | None = None,
    seed: int = 0,
    separator: str = "__",
) -> tuple[list[Example], dict[str, int]]:
    """Examples from paired audit events, and counts of what was used, skipped and dropped.

    `catalog`: the tools offered (names as the gateway lists them, `server{separator}tool`); each
    example offers its tool and two others. `requests`: `request_ref -> user request` (read_requests).
    """
    rng = random.Random(seed)
    tools = {t["function"]["name"]: t for t in catalog}
    stats = {"allowed_ok": 0, "denied": 0, "with_request": 0, "skipped": 0, "redacted": 0, "invalid": 0}
    seen_refs: set[str] = set()
    out: list[Example] = []
    for rec in _calls(events, identity):
        ref = rec.get("request_ref")
        first = bool(ref) and ref not in seen_refs
        if ref:
            seen_refs.add(ref)
        tool = tools.get(f"{rec.get('server')}{separator}{rec.get('tool')}" if rec.get("server") else "")
        kind = _kind(rec)
        args = rec.get("arguments") or {}
        if tool is None or kind is None or not isinstance(args, dict):
            stats["skipped"] += 1
            continue
        name = tool["function"]["name"]
        words = (requests or {}).get(ref) if first and ref else None
        others = [t for t in catalog if t is not tool]
        offered = [*rng.sample(others, k=min(len(others), 2)), tool]
        rng.shuffle(offered)
        request = {"role": "user", "content": words or _phrase(str(rec["tool"]), args)}
        ex = {"messages": [request, _answer(kind, name, args, str(rec.get("reason", "")))], "tools": offered}
        if REDACTED in json.dumps(ex["messages"], ensure_ascii=False):
            stats["redacted"] += 1
        elif validate(ex):
            stats["invalid"] += 1
        else:
            stats[kind] += 1
            stats["with_request"] += bool(words)
            out.append(ex)
    return out, stats
