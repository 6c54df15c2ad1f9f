"""finetune.shaping on examples built by finetune.data over synthesized catalogs (and through the CLI)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from typer.testing import CliRunner

from finetune import data, shaping, synth
from finetune.cli import finetune_app
from finetune.synth import Example, Tool


def _catalogs() -> list[list[Tool]]:
    rng = random.Random(7)
    return [synth.synthetic_catalog(rng), synth.synthetic_catalog(rng)]


def _built(by_tool: bool = False) -> tuple[list[Example], list[Example], list[list[Tool]]]:
    catalogs = _catalogs()
    train, evals = data.build(catalogs, 200, 0, [], 0, 0.1, by_tool)
    return train, evals, catalogs


def _names(tools: list[Tool]) -> set[str]:
    return {t["function"]["name"] for t in tools}


def _is_follow_up(ex: Example) -> bool:
    return any(m["role"] == "tool" for m in ex["messages"])


def test_every_shaped_example_validates() -> None:
    train, evals, catalogs = _built()
    shaped = shaping.shape(train, evals, catalogs, 0, 0.5, 0.5)
    assert len(shaped) > len(train)
    assert [ex for ex in shaped if data.validate(ex)] == []


def test_shares_are_respected_approximately() -> None:
    train, evals, catalogs = _built()
    shaped = shaping.shape(train, evals, catalogs, 0, 0.3, 0.4)
    widened, added = shaped[: len(train)], shaped[len(train) :]
    full = [_names(c) for c in catalogs]
    calls = [ex for ex in train if ex["messages"][-1].get("tool_calls")]
    eligible = [ex for ex in calls if any(_names(ex["tools"]) <= c for c in full)]
    n_full = sum(1 for ex in widened if _names(ex["tools"]) in full and len(ex["tools"]) > 3)
    assert len(eligible) > 100 and abs(n_full / len(eligible) - 0.3) < 0.1
    single = [ex for ex in widened if len(ex["messages"][-1].get("tool_calls") or []) == 1]
    assert all(_is_follow_up(ex) for ex in added) and abs(len(added) / len(single) - 0.4) < 0.1


def test_follow_ups_continue_the_call_with_its_answer_and_a_text_answer() -> None:
    train, evals, catalogs = _built()
    added = shaping.shape(train, evals, catalogs, 0, 0.0, 1.0)[len(train) :]
    assert added
    for ex in added:
        call, tool, answer = ex["messages"][-3:]
        assert len(call["tool_calls"]) == 1 and tool["role"] == "tool" and tool["content"]
        assert answer["role"] == "assistant" and answer["content"] and not answer.get("tool_calls")
    refusals = [ex for ex in added if ex["messages"][-2]["content"].startswith("error: ")]
    assert 0.15 < len(refusals) / len(added) < 0.45


def test_same_seed_same_examples_and_another_seed_others() -> None:
    train, evals, catalogs = _built()
    first = shaping.shape(train, evals, catalogs, 3, 0.3, 0.4)
    assert json.dumps(first) == json.dumps(shaping.shape(train, evals, catalogs, 3, 0.3, 0.4))
    assert json.dumps(first) != json.dumps(shaping.shape(train, evals, catalogs, 4, 0.3, 0.4))


def test_an_example_answered_in_text_is_never_widened() -> None:
    train, evals, catalogs = _built()
    shaped = shaping.shape(train, evals, catalogs, 0, 1.0, 0.0)
    texts = [(a, b) for a, b in zip(train, shaped, strict=True) if not a["messages"][-1].get("tool_calls")]
    assert texts and all(a is b for a, b in texts)


def test_zero_shares_leave_train_as_it_was() -> None:
    train, evals, catalogs = _built()
    assert shaping.shape(train, evals, catalogs, 0, 0.0, 0.0) == train


def test_widening_never_offers_a_held_out_eval_tool() -> None:
    train, evals, catalogs = _built(by_tool=True)
    held_out = _names([t for ex in evals for t in ex["tools"]])
    assert held_out and not held_out & _names([t for ex in train for t in ex["tools"]])
    shaped = shaping.shape(train, evals, catalogs, 0, 1.0, 0.5)
    assert not held_out & _names([t for ex in shaped for t in ex["tools"]])
    assert any(len(ex["tools"]) > 3 for ex in shaped)


def test_a_share_outside_zero_to_one_is_refused() -> None:
    train, evals, catalogs = _built()
    with pytest.raises(ValueError, match="follow_up_share must be between 0 and 1"):
        shaping.shape(train, evals, catalogs, 0, 0.5, 1.5)


def test_data_build_shapes_the_train_split_only(tmp_path: Path) -> None:
    tools = tmp_path / "tools.json"
    tools.write_text(json.dumps(_catalogs()[0]))
    args = ["data", "build", "--out", str(tmp_path / "d"), "--tools", str(tools), "--synthetic", "0"]
    args += ["--per-catalog", "150", "--split", "example", "--follow-up-share", "0.5", "--full-catalog-share", "0.5"]
    result = CliRunner().invoke(finetune_app, args)
    assert result.exit_code == 0, result.output
    train = data.read_jsonl(tmp_path / "d" / "train.jsonl")
    evals = data.read_jsonl(tmp_path / "d" / "eval.jsonl")
    assert any(_is_follow_up(ex) for ex in train) and not any(_is_follow_up(ex) for ex in evals)
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert summary["follow_up_share"] == 0.5 and summary["train"]["examples"] == len(train)


def _requests(examples: list[Example]) -> list[tuple[str, str]]:
    """Every (request, call) a list of examples teaches, in order."""
    pairs = []
    for ex in examples:
        msgs = ex["messages"]
        for i, m in enumerate(msgs[:-1]):
            if m["role"] == "user" and msgs[i + 1].get("tool_calls"):
                pairs.append((m["content"], json.dumps(msgs[i + 1]["tool_calls"], sort_keys=True)))
    return pairs


def test_sessions_merge_whole_catalog_requests_and_teach_the_same_calls() -> None:
    train, evals, catalogs = _built()
    plain = shaping.shape(train, evals, catalogs, 0, 0.5, 0.0)
    merged = shaping.shape(train, evals, catalogs, 0, 0.5, 0.0, session_size=3)
    assert [ex for ex in merged if data.validate(ex)] == []
    sessions = [ex for ex in merged if sum(m["role"] == "user" for m in ex["messages"]) > 1]
    assert len(sessions) > 10
    full = [_names(c) for c in catalogs]
    for ex in sessions:
        assert _names(ex["tools"]) in full
        users = [i for i, m in enumerate(ex["messages"]) if m["role"] == "user"]
        assert 2 <= len(users) <= 3
        for u in users[1:]:  # the call before each later request was answered, then the answer given in words
            call, tool, answer = ex["messages"][u - 3 : u]
            assert len(call["tool_calls"]) == 1 and tool["role"] == "tool" and tool["content"]
            assert answer["role"] == "assistant" and answer["content"] and not answer.get("tool_calls")
    assert sorted(_requests(merged)) == sorted(_requests(plain))  # every call taught once, none lost or added
    long_prompts = sum(1 for ex in merged if len(ex["tools"]) > 3)
    assert long_prompts < sum(1 for ex in plain if len(ex["tools"]) > 3) / 2


def test_sessions_end_like_follow_ups_for_about_their_share() -> None:
    train, evals, catalogs = _built()
    merged = shaping.shape(train, evals, catalogs, 0, 1.0, 0.5, session_size=2)
    sessions = [ex for ex in merged if sum(m["role"] == "user" for m in ex["messages"]) > 1]
    ended = [ex for ex in sessions if not ex["messages"][-1].get("tool_calls")]
    assert len(sessions) > 20 and 0.3 < len(ended) / len(sessions) < 0.7
    alone = [ex for ex in merged if ex not in sessions]  # follow-ups come from these: a catalog's odd one may be one
    assert len([ex for ex in alone if _is_follow_up(ex) and ex["tools"] in catalogs]) <= len(catalogs)


def test_session_size_one_is_the_default_and_zero_is_refused() -> None:
    train, evals, catalogs = _built()
    assert shaping.shape(train, evals, catalogs, 1, 0.3, 0.4, session_size=1) == shaping.shape(
        train, evals, catalogs, 1, 0.3, 0.4
    )
    first = shaping.shape(train, evals, catalogs, 1, 0.3, 0.4, session_size=4)
    assert json.dumps(first) == json.dumps(shaping.shape(train, evals, catalogs, 1, 0.3, 0.4, session_size=4))
    with pytest.raises(ValueError, match="session_size must be at least 1"):
        shaping.shape(train, evals, catalogs, 0, 0.5, 0.5, session_size=0)


def test_data_build_merges_sessions_when_asked(tmp_path: Path) -> None:
    tools = tmp_path / "tools.json"
    tools.write_text(json.dumps(_catalogs()[0]))
    args = ["data", "build", "--out", str(tmp_path / "d"), "--tools", str(tools), "--synthetic", "0"]
    args += ["--per-catalog", "150", "--split", "example", "--full-catalog-share", "0.5", "--session-size", "3"]
    result = CliRunner().invoke(finetune_app, args)
    assert result.exit_code == 0, result.output
    train = data.read_jsonl(tmp_path / "d" / "train.jsonl")
    assert any(sum(m["role"] == "user" for m in ex["messages"]) == 3 for ex in train)
    assert json.loads((tmp_path / "d" / "summary.json").read_text())["session_size"] == 3
