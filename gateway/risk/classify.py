"""`classify(tool) -> Risk`: one tool definition's risk classes, with the evidence and its conflicts.

How evidence is weighed (the annotations are the server's claims, not facts):

1. Every reader in `evidence.py` contributes: annotations, then name, description, schema.
2. A tool gets every class some evidence argues for, except read-only: any evidence that it
   writes, destroys or executes code (`MUTATING`) rules read-only out, whoever claims it.
3. Read-only needs positive evidence (``readOnlyHint: true`` or a read verb in the name). A
   tool nothing speaks for is assumed to write (fail closed: it is not handed to readers).
4. A conflict is an annotation claiming less than the other evidence shows: ``readOnlyHint:
   true`` beside a ``delete`` verb or a ``command`` parameter, ``destructiveHint: false``
   beside a destructive verb, ``openWorldHint: false`` beside a URL parameter. Conflicts are
   kept on the Risk, in words, and the stronger class wins.

Must never: do I/O or depend on anything but the definition (name, description,
inputSchema, annotations). Same definition, same Risk.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import mcp_types as types

from gateway.risk.evidence import (
    MUTATING,
    SEVERITY,
    Evidence,
    RiskClass,
    from_annotations,
    from_description,
    from_name,
    from_schema,
)

HELD = frozenset({RiskClass.DESTRUCTIVE, RiskClass.EXECUTES_CODE})
"""Classes a suggested policy holds for a person's approval."""


@dataclass(frozen=True, slots=True)
class Risk:
    """A tool's risk: its classes (most severe first), every reason found, and where claims disagree."""

    classes: tuple[RiskClass, ...]
    evidence: tuple[Evidence, ...]
    conflicts: tuple[str, ...] = ()

    @property
    def level(self) -> RiskClass:
        """The most severe class."""
        return self.classes[0]

    @property
    def label(self) -> str:
        """The classes as one comma-joined string (audit events, tables): ``destructive,writes``."""
        return ",".join(self.classes)

    @property
    def held(self) -> bool:
        """Destructive or executes code: a suggested policy holds it for approval."""
        return bool(HELD.intersection(self.classes))

    def has(self, risk: RiskClass) -> bool:
        return risk in self.classes

    def reasons(self, risk: RiskClass) -> list[str]:
        """The evidence for one class, as text."""
        return [str(e) for e in self.evidence if e.risk == risk]

    def to_json(self) -> dict[str, Any]:
        return {
            "classes": [str(c) for c in self.classes],
            "level": str(self.level),
            "evidence": [{"source": e.source, "class": e.risk, "detail": e.detail} for e in self.evidence],
            "conflicts": list(self.conflicts),
        }


def classify(tool: types.Tool) -> Risk:
    """The risk of one tool definition (pure; see the module docstring for how evidence is weighed)."""
    evidence = [
        *from_annotations(tool.annotations),
        *from_name(tool.name),
        *from_description(tool.description),
        *from_schema(tool.input_schema),
    ]
    claimed = {e.risk for e in evidence if e.risk is not None}
    if claimed & MUTATING:
        claimed.discard(RiskClass.READ_ONLY)
    elif RiskClass.READ_ONLY not in claimed:
        evidence.append(Evidence("default", RiskClass.WRITES, "nothing says it only reads: assumed to write"))
        claimed.add(RiskClass.WRITES)
    classes = tuple(c for c in reversed(SEVERITY) if c in claimed)
    return Risk(classes, tuple(evidence), tuple(_conflicts(tool.annotations, evidence)))


_LABEL_MEMO_MAX = 4096
_labels: dict[int, tuple[types.Tool, str]] = {}


def risk_label(tool: types.Tool | None) -> str:
    """``classify(tool).label`` for the audit event of each call ("" for an unknown tool).

    Memoized per definition object (an upstream keeps its Tool objects until it relists them), so
    a call pays a dict lookup, not a classification; the memo holds the object it was computed
    for, so a recycled id never answers for another definition, and it is cleared when full.
    """
    if tool is None:
        return ""
    known = _labels.get(id(tool))
    if known is not None and known[0] is tool:
        return known[1]
    if len(_labels) >= _LABEL_MEMO_MAX:
        _labels.clear()
    label = classify(tool).label
    _labels[id(tool)] = (tool, label)
    return label


def risk_change(before: types.Tool, after: types.Tool) -> str | None:
    """How a definition change moved the tool's risk, in words (None when the classes are the same).

    For definition pinning and the console: surfaced beside the definition change itself.
    """
    old, new = classify(before), classify(after)
    if old.classes == new.classes:
        return None
    gained = [c for c in new.classes if c not in old.classes]
    lost = [c for c in old.classes if c not in new.classes]
    why = [str(e) for e in new.evidence if e.risk in gained and e not in old.evidence]
    parts = [f"risk of {after.name} changed: {old.label} -> {new.label}"]
    if gained:
        parts.append(f"gained {', '.join(gained)}" + (f" ({'; '.join(why)})" if why else ""))
    if lost:
        parts.append(f"lost {', '.join(lost)}")
    return "; ".join(parts)


def classify_json(tool: Mapping[str, Any]) -> Risk:
    """`classify` of a tool as tools/list JSON (``inputSchema``, ``annotations.readOnlyHint``)."""
    return classify(types.Tool.model_validate(dict(tool)))


def _conflicts(annotations: types.ToolAnnotations | None, evidence: list[Evidence]) -> list[str]:
    """Each annotation that claims less than the other evidence (or than the other annotations) shows."""
    if annotations is None:
        return []
    found: list[str] = []
    if annotations.read_only_hint is True and annotations.destructive_hint is True:
        found.append("annotations disagree with each other: readOnlyHint=true and destructiveHint=true")
    others = [e for e in evidence if e.source not in ("annotation", "default") and e.risk is not None]
    claims = (
        (annotations.read_only_hint is True, "readOnlyHint=true", MUTATING),
        (annotations.destructive_hint is False, "destructiveHint=false", frozenset({RiskClass.DESTRUCTIVE})),
        (annotations.open_world_hint is False, "openWorldHint=false", frozenset({RiskClass.OPEN_WORLD})),
    )
    for stated, claim, contradicted_by in claims:
        against = [e for e in others if e.risk in contradicted_by] if stated else []
        if against:
            shown = "; ".join(f"{e.source} {e.detail} ({e.risk})" for e in against)
            found.append(f"annotation {claim} is contradicted by {shown}")
    return found
