import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from finetune import data

TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer", "minimum": 1}},
            "required": ["city"],
        },
    },
}


def _ex(args: dict, tools: list | None = None) -> dict:
    return {
        "messages": [
            {"role": "user", "content": "weather in Oslo"},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [
                    {"type": "function", "function": {"name": "get_weather", "arguments": json.dumps(args)}}
                ],
            },
        ],
        "tools": tools if tools is not None else [TOOL],
    }


def _write(tmp_path: Path, lines: list[str]) -> Path:
    p = tmp_path / "user.jsonl"
    p.write_text("\n".join(lines) + "\n")
    return p


def test_user_jsonl_valid_lines_load_with_arguments_as_json_text(tmp_path: Path) -> None:
    ex = _ex({"city": "Oslo"})
    ex["messages"][1]["tool_calls"][0]["function"]["arguments"] = {"city": "Oslo"}  # dict form accepted
    got = data.read_jsonl(_write(tmp_path, [json.dumps(ex), "", json.dumps(_ex({"city": "Lima", "days": 2}))]))
    assert len(got) == 2
    assert got[0]["messages"][1]["tool_calls"][0]["function"]["arguments"] == '{"city": "Oslo"}'


def test_broken_json_line_is_named(tmp_path: Path) -> None:
    p = _write(tmp_path, [json.dumps(_ex({"city": "Oslo"})), '{"messages": [', json.dumps(_ex({"city": "x"}))])
    with pytest.raises(data.DataError, match=r"user.jsonl:2: not valid JSON"):
        data.read_jsonl(p)


def test_call_violating_schema_is_named_with_line_and_path(tmp_path: Path) -> None:
    p = _write(tmp_path, [json.dumps(_ex({"city": "Oslo", "days": 0}))])
    with pytest.raises(data.DataError, match=r"user.jsonl:1: .*'get_weather' violates its schema at days"):
        data.read_jsonl(p)
    p = _write(tmp_path, [json.dumps(_ex({"days": 2}))])
    with pytest.raises(data.DataError, match=r"'city' is a required property"):
        data.read_jsonl(p)


def test_tool_without_schema_and_unknown_tool_are_errors() -> None:
    no_schema = {"type": "function", "function": {"name": "get_weather"}}
    assert any("has no parameters schema" in e for e in data.validate(_ex({"city": "Oslo"}, [no_schema])))
    assert any("not among the offered tools" in e for e in data.validate(_ex({"city": "Oslo"}, [])))


def test_write_is_atomic_and_leaves_nothing_half_written(tmp_path: Path) -> None:
    out = tmp_path / "train.jsonl"
    data.write_jsonl(out, [_ex({"city": "Oslo"})])

    def broken() -> Iterator[dict[str, Any]]:
        yield _ex({"city": "Lima"})
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        data.write_jsonl(out, broken())
    assert [p.name for p in tmp_path.iterdir()] == ["train.jsonl"]
    assert len(out.read_text().splitlines()) == 1  # the old complete file is intact
