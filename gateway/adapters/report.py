"""The eval report (``eval.json``): its typed schema, its reader and the scores the registry takes from it.

An eval report holds base and adapter side by side, as `warden finetune eval` and the demo write it::

    {"heldout": {"base": {"tool_call_accuracy": 0.1, "irrelevance_accuracy": 0.9, "n_call": 40, ...,
                          "rows": [...]},
                 "adapter": {...}},
     "bfcl": {"base": {"simple_python": {"accuracy": 0.4, "n": 50, "rows": [...]}, ...}, "adapter": {...}},
     "n_heldout": 60, "generated_by": "vllm"}

The schema lives in the gateway because the registry reads it and the gateway never imports `finetune`;
`finetune.report.write_eval` is the one writer, through `EvalReport`. Keys unknown to this version are kept
(``extra="allow"``), so a newer writer's report still reads here.

Must never: evaluate anything, or write a report anywhere but through `finetune.report.write_eval`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

Side = Literal["adapter", "base"]
SIDES: tuple[Side, ...] = ("adapter", "base")
HELDOUT_METRICS = ("tool_call_accuracy", "irrelevance_accuracy")
Accuracy = float | None


class ReportError(ValueError):
    """An eval report that cannot be read, or lacks what was asked of it; the message says which."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)


class HeldOut(_Section):
    """One side on the held-out examples: exact tool calls, and answering without a call when none fits."""

    tool_call_accuracy: Accuracy = None
    irrelevance_accuracy: Accuracy = None
    n_call: int | None = None
    n_irrelevance: int | None = None
    rows: list[dict[str, Any]] = Field(default_factory=list)


class BfclCategory(_Section):
    """One side on one BFCL v4 category."""

    accuracy: Accuracy = None
    n: int | None = None
    rows: list[dict[str, Any]] = Field(default_factory=list)


class EvalReport(_Section):
    heldout: dict[Side, HeldOut] = Field(default_factory=dict)
    bfcl: dict[Side, dict[str, BfclCategory]] = Field(default_factory=dict)
    n_heldout: int | None = None
    generated_by: Literal["vllm", "transformers"] | None = None
    n_heldout_available: int | None = None
    """Held-out examples there were, when a time cap evaluated only `n_heldout` of them (the demo)."""
    vllm_dtype: dict[str, str] | None = None
    """The dtype vLLM served in and why (`{"dtype": ..., "reason": ...}`), when vLLM generated."""

    def score(self, side: Side, metric: str) -> float | None:
        """`metric` for `side`: a held-out metric (`tool_call_accuracy`, ...) or `bfcl:CATEGORY`; None if absent."""
        if metric.startswith("bfcl:"):
            category = self.bfcl.get(side, {}).get(metric.removeprefix("bfcl:"))
            return None if category is None else category.accuracy
        held = self.heldout.get(side)
        return getattr(held, metric, None) if held is not None and metric in HELDOUT_METRICS else None

    def summary(self) -> dict[str, Any]:
        """The held-out and BFCL sections without per-example rows or absent values (what the registry stores)."""
        rows: dict[str, Any] = {
            "heldout": {side: {"rows"} for side in self.heldout},
            "bfcl": {side: {cat: {"rows"} for cat in cats} for side, cats in self.bfcl.items()},
        }
        dumped = self.model_dump(include={"heldout", "bfcl"}, exclude=rows, exclude_none=True)
        return {section: sides for section, sides in dumped.items() if sides}


def read_report(path: Path) -> EvalReport:
    """The report at `path`; a ReportError names the file and what is wrong with it."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise ReportError(f"eval report {path}: cannot be read ({exc.strerror or exc})") from exc
    try:
        return EvalReport.model_validate_json(text)
    except ValidationError as exc:
        first = exc.errors()[0]
        if first["type"] == "json_invalid":
            raise ReportError(f"eval report {path}: cannot be read (not JSON: {first['msg']})") from None
        where = ".".join(str(part) for part in first["loc"] if part != "[key]") or "(top level)"
        raise ReportError(f"eval report {path}: {where}: {first['msg']}") from None
