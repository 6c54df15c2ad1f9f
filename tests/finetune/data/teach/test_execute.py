"""finetune.data.teach.execute against real servers: mcp-server-time and mcp-server-git (stdio, PyPI)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from finetune.data.teach.cache import DiskCache
from finetune.data.teach.execute import executor

TIME = f"{sys.executable} -m mcp_server_time --local-timezone UTC"
GIT = f"{sys.executable} -m mcp_server_git"


def test_read_only_tools_run_for_real_and_a_rerun_reads_the_cache(tmp_path: Path) -> None:
    cache = DiskCache(tmp_path / "cache")
    with executor({"time": TIME}, cache) as run:
        first = run.run("time", "get_current_time", {"timezone": "Asia/Tokyo"})
        bad = run.run("time", "get_current_time", {"timezone": "Mars/Olympus"})
        assert run.runs == 2
    assert first.executed and not first.is_error and json.loads(first.text)["timezone"] == "Asia/Tokyo"
    assert bad.executed and bad.is_error  # the real server refuses the zone: the candidate will be rejected
    with executor({"time": TIME}, DiskCache(tmp_path / "cache")) as again:
        assert again.run("time", "get_current_time", {"timezone": "Asia/Tokyo"}) == first
        assert again.runs == 0  # from the cache: the clock moved, the data does not


def test_tools_that_are_not_read_only_never_run(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    with executor({"git": GIT}, DiskCache(tmp_path / "cache")) as run:
        outcome = run.run("git", "git_commit", {"repo_path": str(repo), "message": "x"})
        assert not outcome.executed and "not read-only" in outcome.text and run.runs == 0
        assert not run.run("time", "get_current_time", {"timezone": "UTC"}).executed  # a server not set up
