"""The eval run's assembly: suites in order, saved after each, every figure with n and interval."""

from typing import Any

import pytest

from finetune.eval import runner


@pytest.fixture(scope="module")
def tokenizer() -> Any:
    from transformers import AutoTokenizer

    from finetune.base_model import DEFAULT_CACHE

    return AutoTokenizer.from_pretrained(DEFAULT_CACHE)


def test_suites_run_in_order_save_after_each_and_report_intervals(tokenizer: Any) -> None:
    def refuse_everything(prompts: list[str], max_new_tokens: int) -> list[str]:
        return ["None of the available tools can do that."] * len(prompts)

    saved: list[list[str]] = []
    opts = runner.RunOptions(("natural", "multiturn"), meta={"base": "x"})
    results = runner.run_suites(
        refuse_everything, tokenizer, opts, log=lambda _: None, save=lambda r: saved.append(list(r))
    )
    assert saved == [["meta", "seconds", "natural"], ["meta", "seconds", "natural", "multiturn"]]
    assert results["natural"]["calls"]["k"] == 0 and results["natural"]["no_call"]["accuracy"] == 1.0
    assert results["natural"]["errors"] == {"no call": results["natural"]["calls"]["n"]}
    table = runner.markdown(results)
    assert "| natural: one call right | 0.0% (0/53; 95% CI 0.0-6.8) |" in table
    assert "| natural: no call right | 100.0% (14/14; 95% CI 78.5-100.0) |" in table
    assert "multi-turn: denied" in table and "multi-turn property: stopped" in table


def test_unknown_suite_is_refused(tokenizer: Any) -> None:
    with pytest.raises(ValueError, match="unknown suite 'vibes'"):
        runner.run_suites(lambda p, n: [], tokenizer, runner.RunOptions(("vibes",)), log=lambda _: None)


@pytest.mark.slow
def test_in_process_engine_generates_without_vllm(tokenizer: Any) -> None:
    """`warden model eval --engine transformers`: the 135M default answers the multi-turn suite in-process."""
    from finetune.base_model import DEFAULT_CACHE

    opts = runner.RunOptions(("multiturn",), max_new_tokens=8)
    with runner.in_process(DEFAULT_CACHE, None) as (gens, how):
        results = runner.run_suites(gens["base"], tokenizer, opts, log=lambda _: None)
    assert how["engine"] == "transformers" and list(gens) == ["base"]
    mt = results["multiturn"]
    assert mt["all"]["n"] == 12 and len(mt["rows"]) == 12
    assert all(r["tokens"] <= 12 for r in mt["rows"]) and mt["properties"]["stopped"]["n"] == 12


def test_sides_table_puts_adapter_and_base_in_columns_of_the_same_rows(tokenizer: Any) -> None:
    """`warden model eval --adapter`: one table, a column per side, every metric of the run in one row."""

    def refuse(prompts: list[str], max_new_tokens: int) -> list[str]:
        return ["None of the available tools can do that."] * len(prompts)

    opts = runner.RunOptions(("multiturn",))
    base = runner.run_suites(refuse, tokenizer, opts, log=lambda _: None)
    table = runner.markdown_sides({"adapter": base, "base": base}).splitlines()
    assert table[0] == "| metric | adapter | base |"
    rows = [line for line in table[2:] if line.startswith("| multi-turn: all |")]
    assert len(rows) == 1 and rows[0].count("(0/12;") == 2
    assert len(table) == 2 + len(runner.figures(base))
