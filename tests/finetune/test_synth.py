import json
import random

from jsonschema import Draft202012Validator

from finetune import data, synth
from finetune.synth import Tool


def _assert_valid(examples: list[synth.Example]) -> None:
    for ex in examples:
        assert data.validate(ex) == [], json.dumps(ex)[:500]
        offered = data.tools_by_name(ex)
        for name, args in data.calls(ex["messages"][-1]):
            Draft202012Validator(offered[name]["function"]["parameters"]).validate(args)


def test_synthesis_on_real_mcp_server_schemas_yields_valid_examples(real_catalogs: dict[str, list[Tool]]) -> None:
    for tools in real_catalogs.values():
        examples = synth.synthesize(tools, 120, random.Random(1))
        _assert_valid(examples)
        with_call = [ex for ex in examples if ex["messages"][-1].get("tool_calls")]
        assert len(with_call) > 60
        assert any(not ex["messages"][-1].get("tool_calls") for ex in examples)  # no-call requests too
        assert any(len(ex["tools"]) > 1 for ex in with_call)  # several tools offered where one fits
        for ex in with_call:  # argument values appear literally in the request
            request = ex["messages"][0]["content"]
            for _, args in data.calls(ex["messages"][-1]):
                for v in args.values():
                    if isinstance(v, str):
                        assert v in request


def test_synthetic_catalogs_cover_schema_features_and_are_valid() -> None:
    rng = random.Random(0)
    tools = synth.synthetic_catalog(rng)
    kinds = {p.get("type") for t in tools for p in t["function"]["parameters"]["properties"].values()}
    assert {"string", "integer", "number", "boolean", "array", "object"} <= kinds
    assert any("enum" in p for t in tools for p in t["function"]["parameters"]["properties"].values())
    _assert_valid(synth.synthesize(tools, 300, rng))


def test_build_is_deterministic_and_split_by_tool_keeps_eval_tools_unseen() -> None:
    a = data.build([], 0, 400, [], seed=3, eval_fraction=0.2, by_tool=True)
    b = data.build([], 0, 400, [], seed=3, eval_fraction=0.2, by_tool=True)
    assert a == b
    train, evals = a
    train_tools = {n for ex in train for n in data.tools_by_name(ex)}
    eval_called = {n for ex in evals for n, _ in data.calls(ex["messages"][-1])}
    assert evals and not train_tools & eval_called
    assert len({data.key(e) for e in train + evals}) == len(train) + len(evals)  # deduplicated
