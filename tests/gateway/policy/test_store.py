"""PolicyStore: good edits are applied, broken edits keep the last good policy, watch() reloads."""

from __future__ import annotations

import logging
from pathlib import Path

import anyio
import pytest

from gateway.policy import PolicyError, PolicyStore
from tests.gateway.policy.conftest import write

GOOD = "identities:\n  bot: {grants: [time__a]}\n"


def test_constructing_with_a_bad_directory_raises(tmp_path: Path) -> None:
    write(tmp_path, "p.yaml", "rules: [\n")
    with pytest.raises(PolicyError):
        PolicyStore(tmp_path)


def test_good_edit_is_applied(tmp_path: Path) -> None:
    write(tmp_path, "p.yaml", GOOD)
    results: list[bool] = []
    store = PolicyStore(tmp_path, on_reload=results.append)
    first = store.current
    write(tmp_path, "p.yaml", GOOD.replace("time__a", "time__b"))
    assert store.reload() is True
    assert store.current is not first
    assert [g for g in store.current.identities["bot"].grant.tools.globs] == ["time__b"]
    assert results == [True]


def test_broken_edit_keeps_last_good_policy_and_logs_file_line(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write(tmp_path, "p.yaml", GOOD)
    results: list[bool] = []
    store = PolicyStore(tmp_path, on_reload=results.append)
    good = store.current
    write(tmp_path, "p.yaml", GOOD + "rules:\n  - {id: x, effect: maybe, tools: [a]}\n")
    with caplog.at_level(logging.ERROR, logger="gateway.policy.store"):
        assert store.reload() is False
    assert store.current is good
    assert results == [False]
    assert f"{path}:4:" in caplog.text


@pytest.mark.anyio
async def test_watch_reloads_on_file_change(tmp_path: Path) -> None:
    write(tmp_path, "p.yaml", GOOD)
    reloaded = anyio.Event()
    store = PolicyStore(tmp_path, on_reload=lambda ok: reloaded.set() if ok else None)
    async with anyio.create_task_group() as tg:
        tg.start_soon(store.watch)
        # The watcher starts asynchronously, so an early write could be missed: rewrite the
        # file until a reload is seen, waiting on the event (not sleeping) between writes.
        with anyio.fail_after(20):
            attempt = 0
            while not reloaded.is_set():
                attempt += 1
                write(tmp_path, "p.yaml", GOOD.replace("time__a", f"time__v{attempt}"))
                with anyio.move_on_after(0.5):
                    await reloaded.wait()
        tg.cancel_scope.cancel()
    assert store.current.identities["bot"].grant.tools.globs[0].startswith("time__v")
