"""How the console shows a tool's risk: ``gateway.risk.classify`` turned into values templates show.

Owns: the risk of the tool behind a held call (approval page, inbox rows) and the tools table of
the Operations page (every listed tool, its classes, the conflicts between its annotations and
the other evidence, and whether agents see it: its definition is the accepted pin).

Must never: classify anything itself (``gateway.risk`` does), or show agents anything.
"""

from __future__ import annotations

from typing import Any

from gateway.models import Approval
from gateway.risk import Risk, classify
from gateway.state import GatewayState


def risk_view(risk: Risk) -> dict[str, Any]:
    """A Risk for a template: its label and level, each reason as text, the conflicts."""
    return {
        "label": risk.label,
        "level": str(risk.level),
        "classes": [str(c) for c in risk.classes],
        "evidence": [str(e) for e in risk.evidence],
        "conflicts": list(risk.conflicts),
    }


def held_call_risk(gateway: GatewayState, approval: Approval) -> dict[str, Any] | None:
    """The risk of the tool a held call names, as its upstream lists it now (None: not listed now).

    ``changed`` says the listed definition is no longer the one the call was held for (such a
    call does not run: the approval runs the definition it was held for only). None for a held
    request of another kind: a prompt or resource named like a tool is not that tool.
    """
    if approval.kind != "tool":
        return None
    entry = gateway.pool.entry(approval.tool_name)
    if entry is None:
        return None
    view = risk_view(classify(entry.tool))
    view["changed"] = approval.tool_hash is not None and approval.tool_hash != entry.definition_hash
    return view


def tool_table(gateway: GatewayState) -> list[dict[str, Any]]:
    """Every tool the ready upstreams list, with its risk and whether agents see it (its pin is accepted)."""
    return [
        {
            "name": entry.public_name,
            "server": entry.server,
            "tool": entry.tool.name,
            "risk": risk_view(classify(entry.tool)),
            "admitted": gateway.pins.admits(entry),
        }
        for entry in sorted(gateway.pool.catalog(), key=lambda e: e.public_name)
    ]
