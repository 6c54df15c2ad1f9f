import os

import pytest

from tests.conformance.suite import Install, Report, Scenario, SuiteMissing, find_install, table


@pytest.fixture(scope="session")
def install() -> Install:
    """The suite as `make conformance` installs it; skipped when absent, failed instead under
    WARDEN_CONFORMANCE_REQUIRED (which `make test` sets)."""
    try:
        return find_install()
    except SuiteMissing as missing:
        if os.environ.get("WARDEN_CONFORMANCE_REQUIRED"):
            pytest.fail(str(missing))
        pytest.skip(str(missing))


@pytest.fixture
def report(capsys: pytest.CaptureFixture[str]) -> Report:
    """Print a line (and a run's table) past pytest's capture, so every run shows it."""

    def show(title: str, results: dict[str, Scenario] | None = None) -> None:
        with capsys.disabled():
            print(f"\n{title}" + (f"\n{table(results)}" if results is not None else ""))

    return show
