"""Catalogs of real servers for the risk tests: the checked-in snapshot, and the live one."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import mcp_types as types
import pytest

from gateway.risk.catalog import from_upstreams
from gateway.risk.suggest import CatalogTool
from tests.gateway.risk.servers import SNAPSHOT, install_npm_servers, upstreams_yaml


def snapshot_catalog() -> list[CatalogTool]:
    data = json.loads(SNAPSHOT.read_text())
    return [
        CatalogTool(f"{server}__{tool['name']}", server, types.Tool.model_validate(tool))
        for server, tools in data.items()
        for tool in tools
    ]


@pytest.fixture(scope="session")
def snapshot() -> list[CatalogTool]:
    return snapshot_catalog()


@pytest.fixture(scope="session")
def five_servers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An upstreams file declaring the five real servers (npm ones installed first)."""
    install_npm_servers()
    root = tmp_path_factory.mktemp("risk-servers")
    (root / "files").mkdir()
    path = root / "upstreams.yaml"
    path.write_text(upstreams_yaml(root / "files", root / "memory.json"))
    return path


@pytest.fixture(scope="session")
def live(five_servers: Path) -> list[CatalogTool]:
    """tools/list of the five servers, launched through the gateway's own upstream pool."""
    return anyio.run(from_upstreams, five_servers, "__", 120.0)
