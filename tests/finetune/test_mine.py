import json
from pathlib import Path

import pytest

from finetune import data, mine

CATALOG = [
    {
        "type": "function",
        "function": {
            "name": "notes__add_note",
            "description": "",
            "parameters": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
        },
    },
    {
        "type": "function",
        "function": {
            "name": "notes__delete_note",
            "description": "",
            "parameters": {"type": "object", "properties": {"note_id": {"type": "integer"}}, "required": ["note_id"]},
        },
    },
]


def _events() -> list[dict]:
    return [
        {
            "call_id": "c1",
            "phase": "decision",
            "identity": "ana",
            "server": "notes",
            "tool": "add_note",
            "arguments": {"text": "buy milk"},
            "effect": "allow",
            "request_ref": "r1",
        },
        {
            "call_id": "c1",
            "phase": "outcome",
            "identity": "ana",
            "server": "notes",
            "tool": "add_note",
            "outcome": "ok",
        },
        {
            "call_id": "c2",
            "phase": "decision",
            "identity": "ana",
            "server": "notes",
            "tool": "delete_note",
            "arguments": {"note_id": 7},
            "effect": "deny",
            "reason": "only admins delete notes",
        },
        {
            "call_id": "c3",
            "phase": "decision",
            "identity": "ana",
            "server": "notes",
            "tool": "add_note",
            "arguments": {"text": "x"},
            "effect": "allow",
        },
        {
            "call_id": "c3",
            "phase": "outcome",
            "identity": "ana",
            "server": "notes",
            "tool": "add_note",
            "outcome": "tool_error",
        },
    ]


def test_allowed_ok_calls_and_denials_become_examples(tmp_path: Path) -> None:
    p = tmp_path / "audit.jsonl"
    p.write_text("\n".join(json.dumps(e) for e in _events()))
    examples, stats = mine.mine(mine.read_events(p), CATALOG, requests={"r1": "Add a note: buy milk"})
    assert stats == {"allowed_ok": 1, "denied": 1, "skipped": 1, "invalid": 0}
    ok, denied = examples
    assert ok["messages"][0]["content"] == "Add a note: buy milk"
    assert data.calls(ok["messages"][-1]) == [("notes__add_note", {"text": "buy milk"})]
    assert not denied["messages"][-1].get("tool_calls") and "only admins" in denied["messages"][-1]["content"]
    assert all(data.validate(ex) == [] for ex in examples)


def test_broken_audit_line_is_named(tmp_path: Path) -> None:
    p = tmp_path / "audit.jsonl"
    p.write_text(json.dumps(_events()[0]) + "\n{oops\n")
    with pytest.raises(data.DataError, match=r"audit\.jsonl:2"):
        mine.read_events(p)
