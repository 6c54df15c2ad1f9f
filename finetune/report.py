"""Results as people read them: the one writer of ``eval.json``, eval results side by side (a markdown
table and a bar-chart PNG, base vs adapter), and a training run's loss curve (PNG).

The report's schema and reader are the gateway's (`gateway.adapters.report`: the registry reads it, and the
gateway never imports finetune). Everything that produces an eval report (`warden finetune eval`, the demo)
builds an `EvalReport` and writes it with `write_eval`; nothing writes eval.json by hand.
Must never: score anything (finetune.evaluate and finetune.bfcl do).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from finetune.data import write_json
from gateway.adapters.report import HELDOUT_METRICS, BfclCategory, EvalReport, HeldOut

__all__ = ["BfclCategory", "EvalReport", "HeldOut", "bar_chart", "markdown", "rows", "write_eval"]


def write_eval(path: Path, report: EvalReport) -> None:
    """Write `report` to `path` atomically (a temp file, then rename): a reader sees the old or the new one."""
    optional = {name for name in ("n_heldout_available", "vllm_dtype") if getattr(report, name) is None}
    write_json(path, report.model_dump(mode="json", exclude=optional))  # absent, not null: the earlier shape


def heldout(summary: dict[str, Any]) -> HeldOut:
    """`finetune.evaluate.evaluate`'s summary as the report's typed section."""
    return HeldOut.model_validate(summary)


def bfcl(per_category: dict[str, Any]) -> dict[str, BfclCategory]:
    """`finetune.bfcl.run`'s results as the report's typed section."""
    return {cat: BfclCategory.model_validate(result) for cat, result in per_category.items()}


def rows(results: EvalReport) -> list[tuple[str, float | None, float | None]]:
    """(metric, base, adapter) for every accuracy in `results`."""
    out: list[tuple[str, float | None, float | None]] = []
    if results.heldout:
        for metric in HELDOUT_METRICS:
            label = f"held-out {metric.replace('_', ' ')}"
            out.append((label, results.score("base", metric), results.score("adapter", metric)))
    categories = results.bfcl.get("base", results.bfcl.get("adapter", {}))
    for cat in categories:
        out.append((f"BFCL {cat}", results.score("base", f"bfcl:{cat}"), results.score("adapter", f"bfcl:{cat}")))
    return out


def markdown(results: EvalReport) -> str:
    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.1f}%"

    lines = ["| metric | base | adapter |", "|---|---|---|"]
    lines += [f"| {m} | {pct(b)} | {pct(a)} |" for m, b, a in rows(results)]
    return "\n".join(lines) + "\n"


def bar_chart(results: EvalReport, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = rows(results)
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(data)), 4))
    xs = range(len(data))
    ax.bar([x - 0.2 for x in xs], [100 * (b or 0) for _, b, _ in data], 0.4, label="base")
    ax.bar([x + 0.2 for x in xs], [100 * (a or 0) for _, _, a in data], 0.4, label="adapter")
    ax.set_xticks(list(xs), [m for m, _, _ in data], rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def loss_curve(history: list[dict[str, Any]], path: Path) -> None:
    """Train loss per step and eval-loss points, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    tr = [h for h in history if "loss" in h]
    ev = [h for h in history if h.get("eval_loss") is not None]
    ax.plot([h["step"] for h in tr], [h["loss"] for h in tr], label="train loss")
    if ev:
        ax.plot([h["step"] for h in ev], [h["eval_loss"] for h in ev], "o-", label="eval loss")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss per supervised token")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
