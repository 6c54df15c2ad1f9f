"""Mine examples from the gateway's audit log (a JSONL export of `audit_events`).

Each line is one flat audit record (gateway/types.py `AuditEvent` fields: call_id, phase,
identity, server, tool, arguments, effect, outcome, reason, request_ref, ...). Records are paired
by `call_id`:
- an allowed call whose outcome is `ok` becomes an example with that call;
- a call the policy denied becomes a policy-aware example: the same request, answered in text
  without a call, so the model learns not to attempt what that identity may not do.
The user request is the agent's own words where recorded (`user_request` on a record, or a
`request_ref -> text` map); otherwise it is phrased from the arguments. Arguments in the audit
log are redacted by the gateway; calls whose redacted arguments no longer fit the schema are
dropped by validation, never repaired. Reads files only; never touches the database.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from finetune.data import DataError, validate
from finetune.schema_values import label
from finetune.synth import Example, Tool


def read_events(path: Path) -> list[dict[str, Any]]:
    out = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{lineno}: not valid JSON ({e.msg})") from e
    return out


def _phrase(name: str, args: dict[str, Any]) -> str:
    parts = [f"{label(k)} {v if isinstance(v, str) else json.dumps(v)}" for k, v in args.items()]
    verb = label(name.split("__")[-1])
    return f"Please {verb}" + (f" with {', '.join(parts)}." if parts else ".")


def mine(
    events: list[dict[str, Any]],
    catalog: list[Tool],
    identity: str | None = None,
    requests: dict[str, str] | None = None,
    seed: int = 0,
) -> tuple[list[Example], dict[str, int]]:
    """Examples from paired audit records, and counts of what was used and dropped."""
    rng = random.Random(seed)
    tools = {t["function"]["name"]: t for t in catalog}
    by_call: dict[str, dict[str, Any]] = {}
    for ev in events:
        if identity and ev.get("identity") != identity:
            continue
        merged = by_call.setdefault(ev["call_id"], {})
        merged.update({k: v for k, v in ev.items() if v not in (None, "", [], {})})
    stats = {"allowed_ok": 0, "denied": 0, "skipped": 0, "invalid": 0}
    out: list[Example] = []
    for rec in by_call.values():
        name = f"{rec.get('server')}__{rec.get('tool')}" if rec.get("server") else rec.get("tool", "")
        tool = tools.get(name) or tools.get(rec.get("tool", ""))
        args = rec.get("arguments") or {}
        denied = rec.get("effect") == "deny" or rec.get("outcome") == "denied"
        ok = rec.get("effect") == "allow" and rec.get("outcome") == "ok"
        if tool is None or not (denied or ok):
            stats["skipped"] += 1
            continue
        name = tool["function"]["name"]
        text = rec.get("user_request") or (requests or {}).get(rec.get("request_ref") or "") or _phrase(name, args)
        others = [t for t in catalog if t is not tool]
        offered = [*rng.sample(others, k=min(len(others), 2)), tool]
        rng.shuffle(offered)
        if ok:
            answer: dict[str, Any] = {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"type": "function", "function": {"name": name, "arguments": json.dumps(args, ensure_ascii=False)}}
                ],
            }
        else:
            reason = rec.get("reason") or "the policy does not allow it"
            answer = {"role": "assistant", "content": f"I can't call {name} for this request: {reason}."}
        ex = {"messages": [{"role": "user", "content": text}, answer], "tools": offered}
        if validate(ex):
            stats["invalid"] += 1
            continue
        stats["allowed_ok" if ok else "denied"] += 1
        out.append(ex)
    return out, stats
