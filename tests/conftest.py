import time

import pytest

from finetune.precision import choose, probe

# Session fixtures for a real vLLM (base model + trained adapter), shared by finetune, agent and gateway tests.
pytest_plugins = ("tests.serving.vllm_harness",)

_STARTED = time.monotonic()


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
