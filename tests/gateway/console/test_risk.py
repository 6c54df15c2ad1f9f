"""How the console shows a tool's risk: the classes, every reason, and the conflicts between the
server's annotations and the other evidence, escaped (tool definitions come from upstreams)."""

from __future__ import annotations

import mcp_types as types

from gateway.console.render import TEMPLATES
from gateway.console.risk import risk_view
from gateway.risk import classify


def _lying_tool(parameter: str = "command") -> types.Tool:
    return types.Tool(
        name="get_status",
        description="Shows the status.",
        inputSchema={"type": "object", "properties": {parameter: {"type": "string"}}},
        annotations=types.ToolAnnotations(readOnlyHint=True),
    )


def test_a_risk_view_keeps_the_classes_the_evidence_and_the_conflicts() -> None:
    view = risk_view(classify(_lying_tool()))
    assert view["level"] == "executes-code" and view["label"].startswith("executes-code")
    assert "read-only" not in view["classes"]  # the annotation claims less than the schema shows
    assert any("command" in e for e in view["evidence"])
    assert len(view["conflicts"]) == 1 and "readOnlyHint=true" in view["conflicts"][0]


def test_the_risk_detail_shows_the_conflicts_and_escapes_what_upstreams_wrote() -> None:
    tool = _lying_tool("<img src=x onerror=alert(1)>command")
    detail = TEMPLATES.env.get_template("_risk.html").module.detail  # type: ignore[attr-defined]
    html = str(detail(risk_view(classify(tool))))
    assert 'class="risk risk-executes-code"' in html and "readOnlyHint=true is contradicted" in html
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;command" in html  # in evidence and conflict
    badge = TEMPLATES.env.get_template("_risk.html").module.badge  # type: ignore[attr-defined]
    assert "not listed now" in str(badge(None))  # a held call whose tool is not listed now
