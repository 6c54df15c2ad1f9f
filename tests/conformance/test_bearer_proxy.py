"""The bearer proxy is transparent: the conformance suite through it, straight to the
conformance upstream, passes as it does directly (SSE streams, resumption, Host/Origin
checks and all). So what fails through the gateway is the gateway's, not the proxy's."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conformance.processes import run_bearer_proxy, run_conformance_upstream
from tests.conformance.suite import Install, Report, run_suite

pytestmark = pytest.mark.slow


def test_the_suite_passes_through_the_proxy_alone(install: Install, tmp_path: Path, report: Report) -> None:
    with (
        run_conformance_upstream(tmp_path) as upstream,
        run_bearer_proxy(tmp_path, upstream.url, "not-checked-by-this-upstream") as proxy,
    ):
        results = run_suite(install, proxy.mcp_url, tmp_path / "through-proxy")
    report("conformance suite through the bearer proxy alone:", results)
    failing = {name: s.failures for name, s in results.items() if not s.ok}
    assert not failing
    assert sum(s.passed for s in results.values()) == 44
