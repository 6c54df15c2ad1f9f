"""gateway/adapters/report.py: the eval report's schema and reader, on the shapes writers have produced."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gateway.adapters.report import EvalReport, ReportError, read_report

ROWS = [{"expected": [["get_time", {"tz": "UTC"}]], "output": "<tool_call>...", "correct": True}]

# What `warden finetune eval` wrote before the report was typed (a real run's keys, shortened rows).
CLI_REPORT: dict[str, Any] = {
    "heldout": {
        side: {
            "tool_call_accuracy": acc,
            "irrelevance_accuracy": 1.0,
            "n_call": 40,
            "n_irrelevance": 2,
            "rows": ROWS,
        }
        for side, acc in (("adapter", 0.8), ("base", 0.05))
    },
    "bfcl": {
        side: {"simple_python": {"accuracy": acc, "n": 50, "rows": [{"id": "s_0", "output": "x", "correct": True}]}}
        for side, acc in (("adapter", 0.42), ("base", 0.3))
    },
    "n_heldout": 42,
    "generated_by": "vllm",
}
# What the demo wrote: held-out only, no bfcl section.
DEMO_REPORT: dict[str, Any] = {
    "heldout": {"base": {"tool_call_accuracy": 0, "rows": []}, "adapter": {"tool_call_accuracy": 1, "rows": []}},
    "n_heldout": 12,
    "generated_by": "vllm",
}


def _write(path: Path, value: Any) -> Path:
    path.write_text(value if isinstance(value, str) else json.dumps(value))
    return path


def test_reports_written_before_the_schema_read_with_every_score(tmp_path: Path) -> None:
    report = read_report(_write(tmp_path / "eval.json", CLI_REPORT))
    assert report.score("adapter", "tool_call_accuracy") == 0.8
    assert report.score("base", "irrelevance_accuracy") == 1.0
    assert report.score("base", "bfcl:simple_python") == 0.3
    assert report.score("adapter", "bfcl:multiple") is None
    assert report.score("adapter", "n_call") is None  # a count is not a metric
    assert (report.n_heldout, report.generated_by) == (42, "vllm")
    demo = read_report(_write(tmp_path / "demo.json", DEMO_REPORT))
    assert (demo.score("base", "tool_call_accuracy"), demo.score("adapter", "tool_call_accuracy")) == (0.0, 1.0)
    assert demo.bfcl == {}


def test_the_summary_keeps_scores_and_drops_rows(tmp_path: Path) -> None:
    summary = read_report(_write(tmp_path / "eval.json", CLI_REPORT)).summary()
    assert "rows" not in json.dumps(summary)
    assert summary["heldout"]["adapter"] == {
        "tool_call_accuracy": 0.8,
        "irrelevance_accuracy": 1.0,
        "n_call": 40,
        "n_irrelevance": 2,
    }
    assert summary["bfcl"]["base"] == {"simple_python": {"accuracy": 0.3, "n": 50}}
    assert set(read_report(_write(tmp_path / "demo.json", DEMO_REPORT)).summary()) == {"heldout"}


def test_a_newer_writers_extra_keys_survive_a_round_trip(tmp_path: Path) -> None:
    newer = {**DEMO_REPORT, "seed": 7, "heldout": {"base": {"tool_call_accuracy": 0.5, "latency_ms": 12.5}}}
    report = read_report(_write(tmp_path / "eval.json", newer))
    again = json.loads(report.model_dump_json())
    assert again["seed"] == 7 and again["heldout"]["base"]["latency_ms"] == 12.5


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", r"cannot be read \(not JSON"),
        ("[1, 2]", r"\(top level\): Input should be .*object"),
        ({"heldout": {"base": {"tool_call_accuracy": True}}}, r"heldout\.base\.tool_call_accuracy: .*number"),
        ({"heldout": {"base": {"tool_call_accuracy": "0.9"}}}, r"heldout\.base\.tool_call_accuracy: .*number"),
        ({"heldout": {"candidate": {"tool_call_accuracy": 0.9}}}, r"heldout\.candidate: .*'adapter' or 'base'"),
        ({"bfcl": {"base": {"simple": {"accuracy": [1]}}}}, r"bfcl\.base\.simple\.accuracy: .*number"),
        ({"generated_by": "gpu"}, r"generated_by: .*'vllm' or 'transformers'"),
    ],
)
def test_a_malformed_report_is_refused_naming_the_file_and_the_place(
    tmp_path: Path, content: Any, message: str
) -> None:
    path = _write(tmp_path / "eval.json", content)
    with pytest.raises(ReportError, match=rf"eval report {path}: {message}"):
        read_report(path)


def test_a_missing_report_is_refused_without_a_traceback_of_its_own(tmp_path: Path) -> None:
    with pytest.raises(ReportError, match=r"eval report .*nope\.json: cannot be read \(No such file"):
        read_report(tmp_path / "nope.json")


def test_an_empty_report_has_no_scores() -> None:
    assert EvalReport().score("adapter", "tool_call_accuracy") is None
    assert EvalReport().summary() == {}
