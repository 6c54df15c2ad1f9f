"""How operators see a tool: its public name, definition and risk, as JSON (`/admin/tools`).

Must never: be served to agents (their tools/list stays the upstream's definitions, filtered by
grants), or include anything but the definition and what `classify` derived from it.
"""

from __future__ import annotations

from typing import Any

import mcp_types as types

from gateway.risk.classify import classify


def tool_view(public_name: str, server: str, tool: types.Tool) -> dict[str, Any]:
    definition = tool.model_copy(update={"name": public_name}).model_dump(mode="json", by_alias=True, exclude_none=True)
    return {
        "name": public_name,
        "server": server,
        "tool": tool.name,
        "risk": classify(tool).to_json(),
        "definition": definition,
    }
