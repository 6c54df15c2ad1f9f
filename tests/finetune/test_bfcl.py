import random
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from filelock import FileLock

from finetune import bfcl, data, synth


def test_bfcl_loads_with_answers_and_openai_tools() -> None:
    entries = bfcl.load("simple_python")
    assert len(entries) >= 400
    e = entries[0]
    assert e["answer"] and e["tools"][0]["function"]["parameters"]["type"] == "object"
    assert all("." not in t["function"]["name"] for x in entries for t in x["tools"])
    assert bfcl.load("irrelevance")[0]["answer"] == []


def test_a_second_reader_waits_for_the_download_in_progress(tmp_path: Path) -> None:
    """Two first readers at once (two test workers): the second waits for the first's extraction and
    reads it; it never downloads again nor renames onto the first's tree."""
    holder = FileLock(tmp_path / ".download.lock")
    holder.acquire()
    waiter = ThreadPoolExecutor(1).submit(bfcl.data_dir, tmp_path)
    time.sleep(0.5)
    assert not waiter.done()
    out = tmp_path / "bfcl_eval" / "data"
    out.mkdir(parents=True)
    (out / "BFCL_v4_simple_python.json").write_text("")  # what the first reader extracted
    holder.release()
    assert waiter.result(timeout=30) == out
    assert not list(tmp_path.glob("*.whl")) and sorted(p.name for p in tmp_path.iterdir()) == [
        ".download.lock",
        "bfcl_eval",
    ]


def test_no_bfcl_question_in_generated_data(real_catalogs: dict) -> None:
    train, evals = data.build(list(real_catalogs.values()), 100, 1000, [], seed=0, eval_fraction=0.2, by_tool=True)
    examples = train + evals + synth.synthesize(synth.synthetic_catalog(random.Random(5)), 500, random.Random(5))
    assert bfcl.overlap(examples) == []
    # the guard itself works: a BFCL question planted in the data is found
    planted = bfcl.load("simple_python")[3]["messages"][0]["content"]
    leaked = {"messages": [{"role": "user", "content": planted}, {"role": "assistant", "content": "ok"}], "tools": []}
    assert bfcl.overlap([leaked]) == [planted]
