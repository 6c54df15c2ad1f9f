"""The teacher path end to end: a tiny teacher (the cached SmolLM2-135M) served by real vLLM, real
mcp-server-time executing the read-only calls, `warden finetune data teach` writing the data.

The teacher is the session's vLLM (tests/serving/vllm_harness.py) under its served base-model name.
Two runs: `strict` (the teacher's arguments are held to the tool's schema by structured outputs; a time
zone enum so the real server can answer) and `free` (any object: a 135M model's arguments for a nested
`$defs` schema fail it). Then both again from the cache with the teacher unreachable.
Run under `flock /tmp/warden-heavy.lock` (it starts vLLM when the session has not).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from typer.testing import CliRunner

from finetune import data
from finetune.cli import finetune_app
from finetune.data import natural
from finetune.data.frames import tracker
from serving.ports import free_port
from serving.process import VllmServer

pytestmark = pytest.mark.slow

TIME = f"{sys.executable} -m mcp_server_time --local-timezone UTC"
ZONES = ["Asia/Tokyo", "Europe/Paris", "America/New_York"]


def _tools(path: Path) -> tuple[Path, Path]:
    """Two catalog files: the real get_current_time with its zone held to an enum, and schedule_meeting."""
    raw = json.loads(natural.SNAPSHOT.read_text())
    clock = next(t for t in raw["time"] if t["name"] == "get_current_time")
    clock["inputSchema"]["properties"]["timezone"]["enum"] = ZONES
    meeting = next(t for t in tracker.TOOLS if t["name"] == "schedule_meeting")
    (path / "time.json").write_text(json.dumps({"time": [clock]}))
    (path / "tracker.json").write_text(json.dumps({"tracker": [meeting]}))
    return path / "time.json", path / "tracker.json"


def _teach(url: str, model: str, key: str, out: Path, tools: Path, mode: str, n: int, cache: Path) -> dict[str, Any]:
    args = ["data", "teach", "--out", str(out), "--n", str(n), "--seed", "3", "--mode", mode, "--teacher-url", url,
            "--teacher-name", model, "--api-key", key, "--tools", str(tools), "--cache", str(cache),
            "--max-tokens", "96", "--execute", f"time={TIME}"]  # fmt: skip
    result = CliRunner().invoke(finetune_app, args)
    assert result.exit_code == 0, result.output
    return dict(json.loads((out / "summary.json").read_text()))


def _records(out: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (out / "candidates.jsonl").read_text().splitlines()]


def _schema_errors(schema: dict[str, Any], args: dict[str, Any]) -> bool:
    return any(True for _ in Draft202012Validator(schema).iter_errors(args))


def _check_verdicts(records: list[dict[str, Any]], schema: dict[str, Any], out: Path) -> None:
    """Every verdict is the independent check's, and exactly the candidates passing every stage are written."""
    for r in records:
        v = r["verdicts"]
        if v["parse"]:
            assert not r["accepted"] and "schema" not in v
            continue
        assert bool(v["schema"]) == _schema_errors(schema, r["arguments"]), r
        stages = ("parse", "schema", "names", "defaults", "leak", "execute", "confirm")
        assert r["accepted"] == all(s in v and not v[s] for s in stages), r
    written = [json.loads(line) for line in (out / "teach.jsonl").read_text().splitlines()]
    accepted = [r for r in records if r["accepted"]]
    assert [ex["messages"][0]["content"] for ex in written] == [r["request"] for r in accepted]
    for ex in written:
        assert data.validate(ex) == []


def test_tiny_teacher_end_to_end_verified_executed_and_cached(vllm: VllmServer, tmp_path: Path) -> None:
    time_file, tracker_file = _tools(tmp_path)
    url, model, key, cache = f"{vllm.url}/v1", vllm.spec.served_name, vllm.api_key, tmp_path / "cache"
    strict = _teach(url, model, key, tmp_path / "strict", time_file, "strict", 4, cache)
    free = _teach(url, model, key, tmp_path / "free", tracker_file, "free", 3, cache)
    assert strict["teacher_calls"] > 0 and free["teacher_calls"] > 0
    print(f"teach strict: {json.dumps(strict)}\nteach free: {json.dumps(free)}")  # shown with -s: what passed where

    clock = json.loads(time_file.read_text())["time"][0]["inputSchema"]
    records = _records(tmp_path / "strict")
    _check_verdicts(records, clock, tmp_path / "strict")
    parsed = [r for r in records if not r["verdicts"]["parse"]]
    assert parsed and all(not r["verdicts"]["schema"] for r in parsed)  # held to the schema: all pass
    ran = [r for r in parsed if "execute" in r["verdicts"]]
    assert strict["executed"] == len(ran)
    for r in ran:  # executed against the real server: its answer is about the zone the teacher chose
        assert json.loads(r["result"])["timezone"] == r["arguments"]["timezone"]

    meeting = json.loads(tracker_file.read_text())["tracker"][0]["inputSchema"]
    records = _records(tmp_path / "free")
    _check_verdicts(records, meeting, tmp_path / "free")
    assert any(r["verdicts"].get("schema") for r in records)  # what fails the schema is rejected

    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens: a single teacher call would fail the run
    for name, tools, mode, n in (("strict", time_file, "strict", 4), ("free", tracker_file, "free", 3)):
        again = _teach(dead, model, key, tmp_path / f"{name}-again", tools, mode, n, cache)
        assert again["teacher_calls"] == 0 and again["executed"] == 0
        for file in ("teach.jsonl", "candidates.jsonl"):
            assert (tmp_path / f"{name}-again" / file).read_bytes() == (tmp_path / name / file).read_bytes()
