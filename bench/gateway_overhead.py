"""What the gateway adds to a tools/call.

Runs the same tools/call directly against an upstream and through the gateway (policy,
durable audit of decision and outcome, forwarding), for an upstream over Streamable HTTP
(an SDK `echo` tool) and over stdio (PyPI `mcp-server-time`), at concurrency 1 and 16.
Prints p50/p99 per path, the added latency and the ratio gateway/direct, all measured in
this one run (absolute times on a shared 2-core machine mean little; ratios do).

    python bench/gateway_overhead.py [--calls 400]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.gateway.harness import connect, run_gateway, run_notes_upstream, upstreams_yaml

POLICY = """
identities:
  bench:
    grants: ["*"]
"""


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def measure(call: Callable[[], Awaitable[Any]], calls: int, concurrency: int) -> list[float]:
    for _ in range(20):  # warm-up
        await call()
    latencies: list[float] = []
    per_worker = calls // concurrency

    async def worker() -> None:
        for _ in range(per_worker):
            t0 = time.perf_counter()
            result = await call()
            latencies.append((time.perf_counter() - t0) * 1000)
            assert not result.is_error, result

    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(worker)
    return latencies


async def run(calls: int) -> None:
    rows: list[tuple[str, int, list[float], list[float]]] = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        policy_dir = tmp / "policies"
        policy_dir.mkdir()
        (policy_dir / "bench.yaml").write_text(POLICY)
        with run_notes_upstream(tmp) as notes, run_gateway(tmp, policy_dir, upstreams_yaml(notes.url), ["bench"]) as gw:
            stdio = StdioServerParameters(
                command=sys.executable, args=["-m", "mcp_server_time", "--local-timezone", "UTC"]
            )
            async with (
                Client(notes.url, cache=None) as direct_http,
                Client(stdio, cache=None) as direct_stdio,
                connect(gw, "bench") as through,
            ):
                for concurrency in (1, 16):
                    d = await measure(lambda: direct_http.call_tool("echo", {"text": "hi"}), calls, concurrency)
                    g = await measure(lambda: through.call_tool("notes__echo", {"text": "hi"}), calls, concurrency)
                    rows.append(("http ", concurrency, d, g))
                    d = await measure(
                        lambda: direct_stdio.call_tool("get_current_time", {"timezone": "UTC"}), calls, concurrency
                    )
                    g = await measure(
                        lambda: through.call_tool("time__get_current_time", {"timezone": "UTC"}), calls, concurrency
                    )
                    rows.append(("stdio", concurrency, d, g))

    print(f"gateway overhead: {calls} calls per cell; latencies in ms (p50 / p99)")
    print(
        f"{'upstream':8} {'conc':>4} {'direct p50':>10} {'p99':>7} {'gateway p50':>11} {'p99':>7} "
        f"{'added p50':>9} {'ratio p50':>9} {'calls/s direct':>14} {'calls/s gw':>10}"
    )
    for name, conc, d, g in rows:
        d50, d99, g50, g99 = pct(d, 0.5), pct(d, 0.99), pct(g, 0.5), pct(g, 0.99)
        rate_d = conc * 1000 / statistics.mean(d)
        rate_g = conc * 1000 / statistics.mean(g)
        print(
            f"{name:8} {conc:>4} {d50:>10.2f} {d99:>7.2f} {g50:>11.2f} {g99:>7.2f} {g50 - d50:>9.2f} "
            f"{g50 / d50:>8.2f}x {rate_d:>14.0f} {rate_g:>10.0f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls", type=int, default=400, help="calls per cell (split across workers)")
    anyio.run(run, parser.parse_args().calls)


if __name__ == "__main__":
    main()
