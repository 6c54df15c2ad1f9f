"""finetune/report.py: the one eval report writer, and the table and chart drawn from a report."""

from __future__ import annotations

import json
from pathlib import Path

from finetune import evaluate, report
from gateway.adapters.registry import read_eval
from gateway.adapters.report import EvalReport, read_report


def _report() -> EvalReport:
    rows = [
        {"expected": [["get_time", {"tz": "UTC"}]], "output": "a", "correct": True},
        {"expected": [["get_time", {"tz": "UTC"}]], "output": "b", "correct": False},
        {"expected": [], "output": "no call", "correct": True},
    ]
    results = EvalReport(n_heldout=3, generated_by="transformers")
    results.heldout["adapter"] = report.heldout(evaluate.summarize(rows))
    results.heldout["base"] = report.heldout(evaluate.summarize([{**r, "correct": False} for r in rows]))
    bfcl = {"simple_python": {"accuracy": 0.5, "n": 2, "rows": [{"id": "s0", "output": "x", "correct": True}]}}
    results.bfcl["adapter"] = report.bfcl(bfcl)
    results.bfcl["base"] = report.bfcl({"simple_python": {"accuracy": 0.0, "n": 2, "rows": []}})
    return results


def test_what_the_writer_writes_the_reader_and_the_registry_read_back(tmp_path: Path) -> None:
    path = tmp_path / "run" / "eval.json"
    report.write_eval(path, _report())
    assert read_report(path) == _report()
    scores = read_eval(path)
    assert (scores.metric, scores.adapter, scores.base) == ("tool_call_accuracy", 0.5, 0.0)
    assert read_eval(path, "bfcl:simple_python").adapter == 0.5
    assert [p.name for p in path.parent.iterdir()] == ["eval.json"]  # the temp file was renamed, none left


def test_the_file_keeps_the_shape_earlier_reports_had(tmp_path: Path) -> None:
    path = tmp_path / "eval.json"
    report.write_eval(path, _report())
    raw = json.loads(path.read_text())
    assert set(raw) == {"heldout", "bfcl", "n_heldout", "generated_by"}
    adapter = raw["heldout"]["adapter"]
    assert set(adapter) == {"tool_call_accuracy", "irrelevance_accuracy", "n_call", "n_irrelevance", "rows"}
    assert (adapter["tool_call_accuracy"], adapter["irrelevance_accuracy"], len(adapter["rows"])) == (0.5, 1.0, 3)
    assert raw["bfcl"]["adapter"]["simple_python"]["accuracy"] == 0.5


def test_a_rewrite_replaces_the_report_whole(tmp_path: Path) -> None:
    path = tmp_path / "eval.json"
    partial = EvalReport(n_heldout=3)
    partial.heldout["adapter"] = _report().heldout["adapter"]
    report.write_eval(path, partial)  # after the first side, as `warden finetune eval` does
    assert read_report(path).score("base", "tool_call_accuracy") is None
    report.write_eval(path, _report())
    assert read_report(path).score("base", "tool_call_accuracy") == 0.0


def test_the_table_lists_every_accuracy_side_by_side() -> None:
    table = report.markdown(_report())
    assert "| held-out tool call accuracy | 0.0% | 50.0% |" in table
    assert "| held-out irrelevance accuracy | 0.0% | 100.0% |" in table
    assert "| BFCL simple_python | 0.0% | 50.0% |" in table
    assert report.markdown(EvalReport()) == "| metric | base | adapter |\n|---|---|---|\n"


def test_the_chart_is_a_png(tmp_path: Path) -> None:
    report.bar_chart(_report(), tmp_path / "eval.png")
    assert (tmp_path / "eval.png").read_bytes()[:4] == b"\x89PNG"
