"""The hand-written natural-language set: its shape, its scorer, and that training never sees it."""

import json
import random
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from finetune import data, synth
from finetune.eval import natural

ROOT = Path(__file__).resolve().parents[3]


def _concrete(value: Any) -> Any:
    if isinstance(value, dict) and "$any" in value:
        return _concrete(value["$any"][0])
    if isinstance(value, dict) and "$contains" in value:
        return f"noted: {value['$contains']}"
    if isinstance(value, dict):
        return {k: _concrete(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_concrete(v) for v in value]
    return value


def _text(name: str, args: Any) -> str:
    return "<tool_call>\n" + json.dumps({"name": name, "arguments": args}) + "\n</tool_call>"


def _case(case_id: str) -> natural.Case:
    return next(c for c in natural.cases() if c.id == case_id)


def test_set_covers_five_real_servers_with_calls_and_no_calls() -> None:
    cases, cats = natural.cases(), natural.catalogs()
    assert set(cats) == {"time", "git", "everything", "filesystem", "memory"}
    assert len([c for c in cases if c.names]) >= 40 and len([c for c in cases if not c.names]) >= 12
    assert {c.server for c in cases if c.names} == set(cats)
    assert len({c.id for c in cases}) == len(cases) and len(natural.requests()) == len(cases)


def test_catalog_snapshot_is_the_servers_tools_list_the_gateway_tests_use() -> None:
    snapshot = json.loads((ROOT / "finetune/data/mcp_catalogs.json").read_text())
    assert snapshot == json.loads((ROOT / "tests/gateway/risk/catalogs.json").read_text())


def test_every_expected_call_is_valid_for_the_real_schema() -> None:
    cats = natural.catalogs()
    for c in (c for c in natural.cases() if c.names):
        offered = {t["function"]["name"]: t for t in cats[c.server]}
        for name in c.names:
            assert name in offered, (c.id, name)
            jsonschema.validate(_concrete(c.arguments), offered[name]["function"]["parameters"])
        assert natural.score(_text(c.names[0], _concrete(c.arguments)), c, cats[c.server]) == (True, "ok"), c.id


def test_no_call_cases_are_right_only_without_a_call() -> None:
    cats = natural.catalogs()
    c = _case("none-07")  # "Delete /tmp/old-build entirely." offered filesystem: no delete tool
    assert natural.score("There is no tool here that deletes files.", c, cats[c.server]) == (True, "ok")
    wrong = _text("move_file", {"source": "/tmp/old-build", "destination": "/dev/null"})
    assert natural.score(wrong, c, cats[c.server]) == (False, "called a tool")


@pytest.mark.parametrize(
    ("case_id", "args", "why"),
    [
        ("git-02", {"repo_path": "/srv/app", "max_count": 5}, "ok"),
        ("git-02", {"repo_path": "srv/app", "max_count": 5}, "wrong value"),  # the leading / dropped
        ("git-02", {"repo_path": "/srv/app"}, "missing argument"),
        (
            "git-09",
            {"repo_path": "/home/dana/projects/atlas", "branch_name": "feature/login-form", "base_branch": None},
            "ok",
        ),
        (
            "git-09",
            {"repo_path": "/home/dana/projects/atlas", "branch_name": "feature/login-form", "base_branch": "main"},
            "unexpected argument",
        ),
        ("git-02", {"repo_path": "/srv/app", "max_count": {"default": 10, "title": "Max Count"}}, "wrong value"),
        ("fs-07", {"path": "/data/exports", "pattern": "**/*.csv"}, "ok"),
        ("fs-10", {"paths": ["/etc/resolv.conf", "/etc/hosts"]}, "ok"),  # order of a list of paths is free
        (
            "mem-01",
            {
                "entities": [
                    {"name": "Alice Chen", "entityType": "person", "observations": ["Works on the Payments team"]}
                ]
            },
            "ok",
        ),
        (
            "mem-01",
            {"entities": [{"name": "Alice Chen", "entityType": "person", "observations": ["in finance"]}]},
            "wrong value",
        ),
        ("ev-02", {"a": 1234.0, "b": 5678}, "ok"),
        ("ev-02", {"a": "1234", "b": "5678"}, "wrong value"),
    ],
)
def test_argument_rules(case_id: str, args: dict[str, Any], why: str) -> None:
    c, cats = _case(case_id), natural.catalogs()
    assert natural.score(_text(c.names[0], args), c, cats[c.server]) == (why == "ok", why)


def test_wrong_tool_no_call_and_two_calls_are_wrong() -> None:
    c, cats = _case("fs-03"), natural.catalogs()
    tools = cats[c.server]
    assert natural.score(_text("directory_tree", {"path": "/srv/uploads"}), c, tools) == (False, "wrong tool")
    assert natural.score("None of the available tools can do that.", c, tools) == (False, "no call")
    two = _text("list_directory", {"path": "/srv/uploads"}) * 2
    assert natural.score(two, c, tools) == (False, "2 calls")
    assert natural.score('```json\n{"name": "list_directory"}\n```', c, tools) == (False, "no call")


def test_generated_training_data_never_contains_the_set() -> None:
    catalogs = list(natural.catalogs().values())
    train, evals = data.build(catalogs, 60, 500, [], seed=0, eval_fraction=0.2, by_tool=True)
    examples = train + evals + synth.synthesize(synth.synthetic_catalog(random.Random(3)), 300, random.Random(3))
    assert natural.overlap(examples) == []
    planted = _case("git-05").request
    leaked = {"messages": [{"role": "user", "content": "  " + planted.upper()}], "tools": []}
    assert natural.overlap([leaked]) == ["  " + planted.upper()]


def test_no_training_code_reads_the_eval_sets() -> None:
    """Only finetune/eval/ may name the hand-written sets; data generation (finetune/data*, synth, shaping,
    mine, train) must never open them."""
    names = ("natural_mcp", "multiturn_mcp", "finetune.eval.natural", "finetune.eval.multiturn", "eval import natural")
    offenders = [
        str(p.relative_to(ROOT))
        for p in (ROOT / "finetune").rglob("*.py")
        if "eval" not in p.relative_to(ROOT / "finetune").parts and any(n in p.read_text() for n in names)
    ]
    assert offenders == []


def test_json_outside_tags_is_read_as_a_call_only_by_the_diagnostic() -> None:
    c, cats = _case("fs-05"), natural.catalogs()
    fenced = '```json\n{\n  "name": "create_directory",\n  "arguments": {"path": "/tmp/build/artifacts"}\n}\n```'
    assert natural.score(fenced, c, cats[c.server]) == (False, "no call")  # what the server sees
    assert natural.score(natural.as_hermes(fenced), c, cats[c.server]) == (True, "ok")
    bare = '{"name": "create_directory", "arguments": {"path": "/tmp/build/artifacts"}}'
    assert natural.score(natural.as_hermes(bare), c, cats[c.server]) == (True, "ok")
    assert natural.as_hermes("I can't assist with that.") == "I can't assist with that."
    two = bare + "\n" + bare.replace("artifacts", "logs")
    assert natural.score(natural.as_hermes(two), c, cats[c.server]) == (False, "2 calls")
    tagged = _text("create_directory", {"path": "/x"})
    assert natural.as_hermes(tagged) == tagged
