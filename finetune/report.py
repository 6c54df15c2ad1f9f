"""Results as people read them: eval results side by side (a markdown table and a bar-chart PNG, base vs
adapter) and a training run's loss curve (PNG)."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def rows(results: dict[str, Any]) -> list[tuple[str, float | None, float | None]]:
    """(metric, base, adapter) for every accuracy in `results`."""
    out: list[tuple[str, float | None, float | None]] = []
    held = results.get("heldout", {})
    for metric in ("tool_call_accuracy", "irrelevance_accuracy"):
        if held:
            out.append(
                (
                    f"held-out {metric.replace('_', ' ')}",
                    held.get("base", {}).get(metric),
                    held.get("adapter", {}).get(metric),
                )
            )
    bfcl = results.get("bfcl", {})
    for cat in bfcl.get("base", bfcl.get("adapter", {})):
        out.append(
            (
                f"BFCL {cat}",
                bfcl.get("base", {}).get(cat, {}).get("accuracy"),
                bfcl.get("adapter", {}).get(cat, {}).get("accuracy"),
            )
        )
    return out


def markdown(results: dict[str, Any]) -> str:
    def pct(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.1f}%"

    lines = ["| metric | base | adapter |", "|---|---|---|"]
    lines += [f"| {m} | {pct(b)} | {pct(a)} |" for m, b, a in rows(results)]
    return "\n".join(lines) + "\n"


def bar_chart(results: dict[str, Any], path: Path) -> None:
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
