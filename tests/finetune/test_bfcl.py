import random

from finetune import bfcl, data, synth


def test_bfcl_loads_with_answers_and_openai_tools() -> None:
    entries = bfcl.load("simple_python")
    assert len(entries) >= 400
    e = entries[0]
    assert e["answer"] and e["tools"][0]["function"]["parameters"]["type"] == "object"
    assert all("." not in t["function"]["name"] for x in entries for t in x["tools"])
    assert bfcl.load("irrelevance")[0]["answer"] == []


def test_no_bfcl_question_in_generated_data(real_catalogs: dict) -> None:
    train, evals = data.build(list(real_catalogs.values()), 100, 1000, [], seed=0, eval_fraction=0.2, by_tool=True)
    examples = train + evals + synth.synthesize(synth.synthetic_catalog(random.Random(5)), 500, random.Random(5))
    assert bfcl.overlap(examples) == []
    # the guard itself works: a BFCL question planted in the data is found
    planted = bfcl.load("simple_python")[3]["messages"][0]["content"]
    leaked = {"messages": [{"role": "user", "content": planted}, {"role": "assistant", "content": "ok"}], "tools": []}
    assert bfcl.overlap([leaked]) == [planted]
