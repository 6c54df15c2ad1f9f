import os
import time

import pytest

from finetune.precision import choose, probe

# Session fixtures for a real vLLM (base model + trained adapter), shared by finetune, agent and gateway tests.
pytest_plugins = ("tests.serving.vllm_harness",)

_STARTED = time.monotonic()


VLLM_FIXTURES = frozenset({"vllm", "tool_adapter"})
"""Session fixtures that train an adapter or start vLLM: minutes each, so once per run, never per worker."""


def workers() -> int:
    """How many pytest-xdist workers share this machine (1: a plain serial run)."""
    return int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))


def pytest_configure(config: pytest.Config) -> None:
    """Under `pytest -n N` (`make test`), each worker's torch gets its share of the cores: N workers each
    running torch on every core spin in OpenMP barriers (measured on 2 cores: 1 thread 3-5x faster than 2
    when another job runs)."""
    if workers() > 1:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers()))


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the marks (--dist loadgroup)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that needs the trained adapter or the session's vLLM runs in one worker (one group); the
    other tests of a module stay together in one worker, in file order, as in a serial run (module fixtures
    are built once, and a test that reads what an earlier one left behaves as it does serially)."""
    for item in items:
        if VLLM_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.xdist_group("vllm"))
        else:
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::", 1)[0]))


@pytest.hookimpl(trylast=True)  # after xdist's hook has (or has not) tagged the grouped node ids
def pytest_collection_finish(session: pytest.Session) -> None:
    """Fail at once, not an hour later, if the grouping did not take: pytest-xdist 3.8 groups by appending
    `@group` to node ids, which pytest 9.2 silently ignores (pytest-xdist#1386), so every worker would train
    its own adapter and start its own vLLM. pyproject pins pytest below 9.2 until xdist is fixed."""
    if workers() <= 1 or session.config.getoption("dist", None) != "loadgroup":
        return
    lost = [i.nodeid for i in session.items if i.get_closest_marker("xdist_group") and "@" not in i.nodeid]
    if lost:
        raise pytest.UsageError(
            f"--dist loadgroup is not grouping ({lost[0]} has no @group suffix; pytest {pytest.__version__}): "
            "the vLLM tests would each start their own server. "
            "Use pytest<9.2 (pyproject) or run serially (-p no:xdist)."
        )


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Name the machine the suite ran on (last lines of a CI log): which CPU kind, and the precision it got."""
    capability = probe("cpu", with_torch=False)
    chosen = choose("auto", capability)
    minutes = (time.monotonic() - _STARTED) / 60
    terminalreporter.write_sep("=", "machine")
    terminalreporter.write_line(f"{capability.describe()}")
    terminalreporter.write_line(f"precision auto -> {chosen.value}; this session: {minutes:.1f} min since collection")
