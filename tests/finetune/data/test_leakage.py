"""No benchmark or eval question is ever training data (finetune.data.leakage over every generator).

BFCL v4: every question file of the `bfcl-eval` wheel the eval reads (live and multi-turn included).
Eval sets: the hand-written JSONL sets in finetune/eval (the natural-language and multi-turn sets over
the real MCP schemas), whichever exist in this tree.
"""

from __future__ import annotations

import random
from typing import Any

import pytest

from finetune import bfcl, data, synth
from finetune.data import leakage, natural


@pytest.fixture(scope="module")
def guard() -> leakage.Guard:
    return leakage.default_guard()


def _generated(guard: leakage.Guard) -> list[dict[str, Any]]:
    """What every generator produces, as `warden finetune data build` runs them: natural requests (several
    seeds, the opt-in kinds too; drawn with the guard, as the CLI does), synthetic catalogs, and a whole build."""
    out = [ex for seed in range(4) for ex in natural.natural(3000, seed, guard=guard)]
    opt_in = natural.mix("foreign=0.3")  # the kinds that are off by default are generated too
    out += natural.natural(1000, 11, shares=opt_in, guard=guard)
    out += synth.synthesize(synth.synthetic_catalog(random.Random(5)), 1500, random.Random(5))
    cats = natural.catalogs().by_server
    train, evals = data.build(list(cats.values()), 100, 1000, natural.natural(500, 9, guard=guard), 0, 0.2, True)
    return out + train + evals


def test_the_guard_reads_every_bfcl_file_and_the_eval_sets(guard: leakage.Guard) -> None:
    files = {p.name for p in leakage.bfcl_files()}
    assert {"BFCL_v4_simple_python.json", "BFCL_v4_live_simple.json", "BFCL_v4_multi_turn_base.json"} <= files
    simple = bfcl.load("simple_python")[0]["messages"][0]["content"]
    assert guard.hit(simple) and len(guard.exact) > 4000
    for path in leakage.eval_files():  # every question of our own eval sets is guarded
        assert leakage.questions([path]) <= guard.exact


def test_no_bfcl_or_eval_question_in_generated_data(guard: leakage.Guard) -> None:
    assert leakage.leaks(_generated(guard), guard) == []


def test_natural_generation_with_the_guard_redraws_a_guarded_request() -> None:
    plain = natural.natural(400, seed=2)
    banned = leakage.Guard([plain[10]["messages"][0]["content"]])
    guarded = natural.natural(400, seed=2, guard=banned)
    assert guarded[:10] == plain[:10] and guarded[10] != plain[10] and len(guarded) == 400
    assert leakage.leaks(guarded, banned) == []


def test_a_planted_question_is_found_exactly_and_normalised(guard: leakage.Guard) -> None:
    question = bfcl.load("multiple")[7]["messages"][0]["content"]
    altered = "  " + question.upper().replace(",", " ,").rstrip("?.") + "!! "
    planted = [
        {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": "ok"}], "tools": []}
        for q in (question, altered, "What is the capital of Peru, then?")
    ]
    assert leakage.leaks(planted, guard) == [question, altered]
    own = leakage.Guard(["Our standup is at 09:30 here in New York. When is that for Priya?"])
    assert leakage.leaks(
        [
            {
                "messages": [
                    {"role": "user", "content": "our standup is at 09 30 here in new york; when is that for priya"}
                ]
            }
        ],
        own,
    )


def test_normalise_folds_case_punctuation_whitespace_and_unicode() -> None:
    assert leakage.normalise("  \uff37hat\u2019s the TIME,\tin Tokyo?? ") == "what s the time in tokyo"
