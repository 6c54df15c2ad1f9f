"""Shared real parts: the base model (fetched once into the cache) and real MCP catalogs."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from finetune.synth import Tool


@pytest.fixture(scope="session")
def base_dir() -> Path:
    from finetune.base_model import fetch

    return fetch()


@pytest.fixture(scope="session")
def tokenizer(base_dir: Path) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(base_dir)


@pytest.fixture(scope="session")
def real_catalogs() -> dict[str, list[Tool]]:
    """tools/list of real MCP servers published on PyPI, launched over stdio."""
    from finetune.catalog import from_stdio

    return {
        "time": from_stdio(sys.executable, ["-m", "mcp_server_time", "--local-timezone", "UTC"]),
        "git": from_stdio(sys.executable, ["-m", "mcp_server_git"]),
    }
