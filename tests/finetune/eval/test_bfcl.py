"""BFCL v4 scoring per category, by BFCL's own AST checker (from the pinned wheel)."""

import json
from typing import Any

import pytest

from finetune import bfcl
from finetune.eval import ast_checker
from finetune.eval import bfcl as bfcl_v4


def _pick(options: list[Any]) -> Any:
    return _concrete(next(o for o in options if o != ""))


def _concrete(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _pick(v) for k, v in value.items() if isinstance(v, list) and any(o != "" for o in v)}
    if isinstance(value, list):
        return [_concrete(v) for v in value]
    return value


def _calls(entry: bfcl_v4.Entry, mutate: bool = False) -> str:
    out = []
    for gt in entry.answer:
        ((name, params),) = gt.items()
        args = {k: _pick(v) for k, v in params.items() if any(o != "" for o in v)}
        if mutate:
            key = next(iter(args))
            args[key] = "__certainly_wrong__" if not isinstance(args[key], str) else args[key] + " no"
        out.append("<tool_call>\n" + json.dumps({"name": bfcl._name(name), "arguments": args}) + "\n</tool_call>")
    return "\n".join(out)


def test_checker_is_bfcls_own_code_from_the_pinned_wheel() -> None:
    module = ast_checker.load()
    assert str(module.__file__).startswith(str(ast_checker.CHECKER_CACHE))
    assert hasattr(module, "parallel_function_checker_no_order") and hasattr(module, "multiple_function_checker")


def test_every_single_turn_category_loads_in_full() -> None:
    sizes = {c: len(bfcl_v4.entries(c)) for c in bfcl_v4.CATEGORIES}
    assert sizes["simple_python"] == 400 and sizes["multiple"] == 200 and sizes["parallel"] == 200
    assert sizes["parallel_multiple"] == 200 and sizes["irrelevance"] == 240
    assert all(sizes[c] > 0 for c in bfcl_v4.CATEGORIES)
    with pytest.raises(ValueError, match="unknown BFCL category"):
        bfcl_v4.entries("simple_cobol")


@pytest.mark.parametrize("category", bfcl_v4.AST_CATEGORIES)
def test_ast_categories_score_the_ground_truth_right_and_others_wrong(category: str) -> None:
    entries = [e for e in bfcl_v4.entries(category) if e.answer][:5]
    for e in entries:
        assert bfcl_v4.score(_calls(e), e) == (True, "ok"), e.id
        ok, why = bfcl_v4.score(_calls(e, mutate=True), e)
        assert not ok and why != "ok", e.id
        assert bfcl_v4.score("I think you should do it yourself.", e) == (False, "no call")
        assert bfcl_v4.score("<tool_call>\n{not json}\n</tool_call>", e)[0] is False


def test_parallel_needs_every_call_in_any_order() -> None:
    e = next(x for x in bfcl_v4.entries("parallel") if len(x.answer) >= 2)
    calls = _calls(e).split("\n<tool_call>")
    reordered = "<tool_call>" + "\n<tool_call>".join(reversed(calls[1:])) + "\n" + calls[0]
    assert bfcl_v4.score(reordered, e)[0] is True
    assert bfcl_v4.score(calls[0], e) == (False, "parallel_function_checker_no_order:wrong_count")


@pytest.mark.parametrize("category", bfcl_v4.NO_CALL)
def test_irrelevance_is_right_only_without_a_call(category: str) -> None:
    e = bfcl_v4.entries(category)[0]
    assert bfcl_v4.score("None of these tools can do that.", e) == (True, "ok")
    name = e.tools[0]["function"]["name"]
    assert bfcl_v4.score(f'<tool_call>\n{{"name": "{name}", "arguments": {{}}}}\n</tool_call>', e)[0] is False


def test_live_relevance_wants_a_call() -> None:
    e = bfcl_v4.entries("live_relevance")[0]
    name = e.tools[0]["function"]["name"]
    assert bfcl_v4.score(f'<tool_call>\n{{"name": "{name}", "arguments": {{}}}}\n</tool_call>', e)[0] is True
    assert bfcl_v4.score("Sorry, I cannot.", e) == (False, "no call")


def test_sample_is_fixed_per_seed_and_all_when_limit_is_zero() -> None:
    items = bfcl_v4.entries("multiple")
    assert bfcl_v4.sample(items, 0, 0) == items
    a, b = bfcl_v4.sample(items, 20, 0), bfcl_v4.sample(items, 20, 0)
    assert [e.id for e in a] == [e.id for e in b] and len(a) == 20
    assert [e.id for e in bfcl_v4.sample(items, 20, 1)] != [e.id for e in a]


def test_run_reports_n_accuracy_interval_and_errors() -> None:
    def answer_all_with_ground_truth(prompts: list[str], max_new_tokens: int) -> list[str]:
        by_prompt = {p: _calls(e) for p, e in zip(prompts, chosen, strict=True)}
        return [by_prompt[p] for p in prompts]

    from transformers import AutoTokenizer

    from finetune.base_model import DEFAULT_CACHE

    tokenizer = AutoTokenizer.from_pretrained(DEFAULT_CACHE)
    chosen = bfcl_v4.sample(bfcl_v4.entries("simple_python"), 6, 0)
    result = bfcl_v4.run(answer_all_with_ground_truth, tokenizer, categories=("simple_python",), limit=6)
    r = result["simple_python"]
    assert (r["k"], r["n"], r["accuracy"]) == (6, 6, 1.0)
    assert 0.5 < r["ci95_low"] < 1.0 == r["ci95_high"] and r["errors"] == {}
