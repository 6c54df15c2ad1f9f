"""finetune.data.natural: properties of every generated example, over the real MCP catalogs."""

from __future__ import annotations

import json
import random
import re
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from finetune import data, roundtrip
from finetune.data import natural
from finetune.data.frames import servers
from finetune.schema_values import label

REPO = Path(__file__).resolve().parents[3]
CATS = natural.catalogs()


def _examples(kind: str, n: int = 300, seed: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [natural.example(CATS, kind, rng) for _ in range(n)]


def _calls(ex: dict[str, Any]) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(name, arguments, parameters schema) of every call in the example."""
    offered = data.tools_by_name(ex)
    return [
        (name, args, offered[name]["function"]["parameters"])
        for m in ex["messages"]
        if m["role"] == "assistant"
        for name, args in data.calls(m)
    ]


def _resolve(schema: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """`$ref` followed, `anyOf [x, null]` reduced to x."""
    if "$ref" in schema:
        schema = {**root["$defs"][schema["$ref"].split("/")[-1]], **{k: v for k, v in schema.items() if k != "$ref"}}
    branches = [b for b in schema.get("anyOf", []) if b.get("type") != "null"]
    if len(branches) == 1:
        schema = {**_resolve(branches[0], root), **{k: v for k, v in schema.items() if k != "anyOf"}}
    return schema


def _keys(value: Any) -> list[str]:
    """Every object key inside an argument value (nested objects, arrays of objects)."""
    if isinstance(value, dict):
        return [k for k, v in value.items() for k in [k, *_keys(v)]]
    if isinstance(value, list):
        return [k for v in value for k in _keys(v)]
    return []


def _names_argument(name: str, text: str) -> bool:
    """The request names the parameter: its identifier, its multi-word label, or the label used as a key."""
    low, lab = text.lower(), label(name)
    identifier = not (name.isalpha() and name.islower())
    return (
        (identifier and re.search(rf"\b{re.escape(name.lower())}\b", low) is not None)
        or (" " in lab and lab in low)
        or re.search(rf"\b{re.escape(lab)}\s*[:=]", low) is not None
    )


@pytest.mark.parametrize("kind", natural.KINDS)
def test_every_example_is_valid_against_its_schemas(kind: str) -> None:
    for ex in _examples(kind):
        assert data.validate(ex) == [], json.dumps(ex)[:600]
        for _, args, schema in _calls(ex):
            Draft202012Validator(schema).validate(args)


def test_no_request_names_an_argument_or_the_schema_title() -> None:
    for ex in _examples("call", 1500) + _examples("which", 500) + _examples("parallel", 500):
        request = ex["messages"][0]["content"]
        for _, args, schema in _calls(ex):
            for key in [*args, *_keys(args)]:
                assert not _names_argument(key, request), (key, request)
            assert schema.get("title", "\0") not in request


def test_defaults_are_left_out_and_enum_values_are_valid() -> None:
    seen_with_default = 0
    for ex in _examples("call", 1500):
        for _, args, schema in _calls(ex):
            props = schema.get("properties", {})
            for key, value in args.items():
                prop = _resolve(props[key], schema)
                assert "default" not in prop or value != prop["default"], (key, value, ex["messages"][0]["content"])
                assert "enum" not in prop or value in prop["enum"]
            defaulted = [k for k, p in props.items() if "default" in _resolve(p, schema)]
            seen_with_default += bool(defaulted) and not set(defaulted) & set(args)
    assert seen_with_default > 200  # many calls of tools with defaults leave every defaulted argument out


def test_values_live_in_the_request_context() -> None:
    for ex in _examples("call", 1000):
        request = ex["messages"][0]["content"]
        for _, args, _ in _calls(ex):
            for key, value in args.items():
                if isinstance(value, str) and value.startswith("/"):  # paths appear verbatim, in prose
                    assert value in request, (key, value, request)
                if key in ("message", "content") and isinstance(value, str):  # quoted text is copied exactly
                    assert value in request and re.search(r"[\"'“]" + re.escape(value), request), request


def test_the_catalogs_cover_the_shapes_of_real_schemas() -> None:
    called = {name.split("__")[-1] for ex in _examples("call", 2000) for name, _, _ in _calls(ex)}
    framed = {tool for frames, _ in servers().values() for tool, fs in frames.items() if fs}
    assert framed <= called
    snapshot = {
        t["function"]["name"] for s in ("time", "git", "filesystem", "memory", "everything") for t in CATS.by_server[s]
    }
    assert snapshot <= framed  # every tool of the five real servers has frames
    schemas = [
        t["function"]["parameters"]
        for tools in CATS.by_server.values()
        for t in tools
        if t["function"]["name"] in called
    ]
    text = json.dumps(schemas)
    assert '"$defs"' in text and '"$ref"' in text and '"anyOf"' in text and '"enum"' in text
    arrays_of_objects = [
        p
        for s in schemas
        for p in s.get("properties", {}).values()
        if p.get("type") == "array" and (p["items"].get("type") == "object" or "$ref" in p["items"])
    ]
    assert len(arrays_of_objects) >= 6
    assert max(len(t["function"]["description"]) for tools in CATS.by_server.values() for t in tools) > 300


def test_which_examples_offer_near_misses_and_call_the_asked_tool() -> None:
    near_miss = 0
    for ex in _examples("which", 400):
        [(name, _, _)] = _calls(ex)
        offered = [t["function"]["name"] for t in ex["tools"]]
        words = set(re.split(r"[_\-]+", name.split("__")[-1])) - {"git"}
        near_miss += any(o != name and words & set(re.split(r"[_\-]+", o.split("__")[-1])) for o in offered)
    assert near_miss > 300


def test_parallel_examples_ask_twice_in_one_message_and_call_twice() -> None:
    two = [ex for ex in _examples("parallel", 300) if len(ex["messages"][-1]["tool_calls"]) == 2]
    assert len(two) > 250
    for ex in two:
        (_, first, _), (_, second, _) = _calls(ex)
        assert first != second


def test_none_examples_offer_same_verb_tools_of_other_servers_but_never_the_asked_server() -> None:
    rng = random.Random(0)
    cross = 0
    for _ in range(300):
        offered = natural.offer(CATS, "none", "filesystem", "search_files", rng)
        assert all(server != "filesystem" for server, _ in offered)
        cross += any(t["function"]["name"] == "search_nodes" for _, t in offered)
    assert cross > 250
    for ex in _examples("none", 200) + _examples("cannot", 200):
        assert not ex["messages"][-1].get("tool_calls") and len(ex["messages"]) == 2
    servers_offered = [{t["function"]["name"].split("__")[-1] for t in ex["tools"]} for ex in _examples("cannot", 200)]
    whole = [{t["function"]["name"] for t in tools} for tools in CATS.by_server.values()]
    assert all(any(w <= names for w in whole) for names in servers_offered)  # a whole catalog that cannot do it


def test_answers_after_a_result_are_short_grounded_and_never_echo_the_result() -> None:
    for ex in _examples("result", 600):
        tool_turn, answer = ex["messages"][-2]["content"], ex["messages"][-1]["content"]
        assert "<tool_response>" not in answer and "tool_call" not in answer
        assert answer and len(answer) < 200 and not ex["messages"][-1].get("tool_calls")
        if len(tool_turn) > 40:
            assert tool_turn not in answer


def test_denials_and_pending_approvals_use_the_gateways_texts_and_the_agent_stops() -> None:
    for ex in _examples("denied", 100):
        tool_turn, answer = ex["messages"][-2]["content"], ex["messages"][-1]
        rule = re.match(r"error: denied by policy \(rule ([^)]+)\): ", tool_turn)
        assert rule is not None, tool_turn
        assert rule.group(1) in answer["content"] and not answer.get("tool_calls")
    for ex in _examples("pending", 100):
        tool_turn, answer = ex["messages"][-2]["content"], ex["messages"][-1]
        approval = re.match(r"error: pending approval (apr_[a-z0-9]{12}): rule ", tool_turn)
        assert approval is not None and "Call again with the same arguments" in tool_turn
        assert approval.group(1) in answer["content"] and not answer.get("tool_calls")
    for ex in _examples("unknown", 50):
        assert ex["messages"][-2]["content"].startswith("error: unknown tool: ")


def test_requests_vary_in_register_and_length() -> None:
    requests = [ex["messages"][0]["content"] for ex in _examples("call", 1000)]
    lengths = sorted(map(len, requests))
    assert lengths[0] < 30 and lengths[-1] > 140
    assert len(set(requests)) > 900
    assert any(r.startswith(("Hey, ", "Hi! ")) for r in requests) and any(r.endswith("Thanks!") for r in requests)
    assert any(not r.rstrip().endswith((".", "?", "!")) for r in requests)  # terse, unpunctuated ones too


def test_generation_is_deterministic_per_seed_and_fast() -> None:
    import time

    started = time.monotonic()
    a = natural.natural(2000, seed=7)
    assert time.monotonic() - started < 10
    assert a == natural.natural(2000, seed=7) and a != natural.natural(2000, seed=8)


def test_the_shipped_snapshot_is_the_risk_tests_snapshot() -> None:
    shipped = json.loads(natural.SNAPSHOT.read_text())
    assert shipped == json.loads((REPO / "tests" / "gateway" / "risk" / "catalogs.json").read_text())


def test_examples_round_trip_through_the_chat_template(tokenizer: Any) -> None:
    examples = [natural.example(CATS, kind, random.Random(i)) for i, kind in enumerate(natural.KINDS * 25)]
    assert roundtrip.check(tokenizer, [data.normalize(ex) for ex in examples]) == len(examples)


def test_data_build_adds_natural_examples(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from finetune.cli import finetune_app

    args = ["data", "build", "--out", str(tmp_path), "--synthetic", "0", "--natural", "300", "--split", "example"]
    result = CliRunner().invoke(finetune_app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["natural"] == 300 and summary["train"]["examples"] + summary["eval"]["examples"] > 250
    train = data.read_jsonl(tmp_path / "train.jsonl")  # validated line by line
    assert any(m["role"] == "tool" for ex in train for m in ex["messages"])


def test_a_mix_replaces_the_named_shares_and_keeps_the_rest() -> None:
    shares = dict(zip(natural.KINDS, natural.mix("none=0.3, cannot=0"), strict=True))
    assert shares["none"] == 0.3 and shares["cannot"] == 0
    assert shares["call"] == natural.SHARES[natural.KINDS.index("call")]
    assert natural.mix("") == natural.SHARES


@pytest.mark.parametrize("spec", ["nothing=0.2", "none", "none=lots", "none=-1", "none=nan", "none=inf"])
def test_a_bad_mix_names_the_bad_part(spec: str) -> None:
    with pytest.raises(ValueError, match=re.escape(repr(spec))):
        natural.mix(spec)


def test_a_mix_of_zeros_is_refused() -> None:
    with pytest.raises(ValueError, match="above 0"):
        natural.mix(",".join(f"{k}=0" for k in natural.KINDS))


def test_the_mix_changes_what_is_drawn() -> None:
    def no_call(shares: tuple[float, ...]) -> int:
        drawn = natural.natural(200, seed=1, shares=shares)
        return sum(not any(m.get("tool_calls") for m in ex["messages"]) for ex in drawn)

    # the default ends ~18% of examples without a call; with "none" weighted up, most do
    assert no_call(natural.SHARES) < 60 < 100 < no_call(natural.mix("call=0,which=0,parallel=0,none=1"))


def test_data_build_refuses_a_bad_mix_and_records_a_good_one(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from finetune.cli import finetune_app

    args = ["data", "build", "--out", str(tmp_path), "--synthetic", "0", "--natural", "200", "--split", "example"]
    bad = CliRunner().invoke(finetune_app, [*args, "--natural-mix", "nothing=1"])
    assert bad.exit_code == 2 and "nothing=1" in bad.output and not (tmp_path / "train.jsonl").exists()
    good = CliRunner().invoke(finetune_app, [*args, "--natural-mix", "none=0.5"])
    assert good.exit_code == 0, good.output
    assert json.loads((tmp_path / "summary.json").read_text())["natural_mix"]["none"] == 0.5


def test_foreign_offers_only_unrelated_made_up_tools_and_answers_in_words() -> None:
    real = {t["function"]["name"] for tools in CATS.by_server.values() for t in tools}
    for i in range(300):
        ex = natural.example(CATS, "foreign", random.Random(i))
        names = {t["function"]["name"] for t in ex["tools"]}
        assert 1 <= len(names) <= 3 and not names & real and not any(n.split("__")[-1] in real for n in names)
        assert not any(d in n for n in names for d in natural._NEAR_DOMAINS), names
        assert [m["role"] for m in ex["messages"]] == ["user", "assistant"]
        answer = ex["messages"][1]
        assert "tool_calls" not in answer
        about = [t["function"]["description"].rstrip(".").split(" a ", 1)[1] for t in ex["tools"]]
        assert all(a in answer["content"] for a in about), (about, answer)  # names what the tools are for


def test_foreign_is_off_by_default_and_drawn_when_asked() -> None:
    assert natural.SHARES[natural.KINDS.index("foreign")] == 0
    default = natural.natural(200, 0)
    assert natural.natural(200, 0) == default  # deterministic per seed
    assert all(any(t["function"]["name"] in _real_names() for t in ex["tools"]) for ex in default)
    asked = natural.natural(200, 0, natural.mix("foreign=0.5"))
    assert sum(not any(t["function"]["name"] in _real_names() for t in ex["tools"]) for ex in asked) > 60


def _real_names() -> set[str]:
    return {
        n
        for server, tools in CATS.by_server.items()
        for t in tools
        for n in (t["function"]["name"], f"{server}__{t['function']['name']}")
    }
