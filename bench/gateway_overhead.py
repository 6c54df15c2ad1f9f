"""What the gateway adds to a tools/call, against issue 15's targets.

Runs the same tools/call directly against an upstream and through the gateway (policy,
durable audit of decision and outcome, forwarding): an upstream over Streamable HTTP
(an SDK `echo` tool), and with ``--stdio`` also over stdio (PyPI `mcp-server-time`). Every
worker holds its own client session (the same `mcp` client on every path). Measured at
concurrency 1 (p50/p99 latency) and 16 (calls/s, errors: a failed call is counted, not
fatal), direct and gateway cells alternating in one run, so the ratios hold on a shared
machine where absolute times mean little. Prints the CPU (model, and whether it has
avx512_bf16), the load average, the gateway process's CPU time per call, and each ratio
against its target:

    c=1  gateway p50 <= 1.3x direct p50, gateway p99 <= 2x direct p99
    c=16 gateway calls/s >= 60% of direct, 0 errors (over --calls16 calls, at least 4,000 for the target)

With ``--async-outcome`` it measures a second gateway that answers before the outcome row
is committed (``audit_async_outcome``; off by default: the decision is committed before
forwarding and the outcome before answering).

    python bench/gateway_overhead.py [--calls1 400] [--calls16 4000] [--stdio] [--async-outcome]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.gateway.harness import Gateway, connect, run_gateway, run_notes_upstream, upstreams_yaml

POLICY = """
identities:
  bench:
    grants: ["*"]
"""

Call = Callable[[Client], Awaitable[Any]]
Session = Callable[[], AbstractAsyncContextManager[Client]]


@dataclass
class Cell:
    """One measurement: latencies of the calls that succeeded, errors, wall time, gateway CPU seconds."""

    latencies: list[float]
    errors: int
    wall_s: float
    cpu_s: float

    @property
    def rate(self) -> float:
        return (len(self.latencies) + self.errors) / self.wall_s

    def pct(self, q: float) -> float:
        ordered = sorted(self.latencies) or [float("nan")]
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def cpu_line() -> str:
    model, bf16 = platform.processor() or "unknown", False
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        info = ""
    for line in info.splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
        if line.startswith("flags"):
            bf16 = "avx512_bf16" in line.split()
    return f"cpu: {model}; {os.cpu_count()} cores; avx512_bf16: {'yes' if bf16 else 'no'}"


def process_cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of process ``pid`` (0 when unknown)."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(session: Session, call: Call, calls: int, concurrency: int, pid: int | None) -> Cell:
    """``calls`` calls over ``concurrency`` workers, each with its own session."""
    latencies: list[float] = []
    errors = 0
    async with AsyncExitStack() as stack:
        clients = [await stack.enter_async_context(session()) for _ in range(concurrency)]
        for client in clients:  # warm-up: connections open, caches filled
            for _ in range(5):
                await call(client)

        async def worker(client: Client) -> None:
            nonlocal errors
            for _ in range(calls // concurrency):
                t0 = time.perf_counter()
                try:
                    failed = (await call(client)).is_error
                except Exception:  # counted: the bench reports errors, it does not stop on them
                    failed = True
                if failed:
                    errors += 1
                else:
                    latencies.append((time.perf_counter() - t0) * 1000)

        cpu0, t0 = process_cpu_s(pid), time.perf_counter()
        async with anyio.create_task_group() as tg:
            for client in clients:
                tg.start_soon(worker, client)
        return Cell(latencies, errors, time.perf_counter() - t0, process_cpu_s(pid) - cpu0)


@dataclass
class Target:
    name: str
    direct: Session
    through: Session
    direct_call: Call
    through_call: Call


def paths(gw: Gateway, notes_url: str, stdio: bool) -> list[Target]:
    def gateway_session() -> AbstractAsyncContextManager[Client]:
        return connect(gw, "bench")

    found = [
        Target(
            "http",
            lambda: Client(notes_url, cache=None),
            gateway_session,
            lambda c: c.call_tool("echo", {"text": "hi"}),
            lambda c: c.call_tool("notes__echo", {"text": "hi"}),
        )
    ]
    if stdio:
        args = ["-m", "mcp_server_time", "--local-timezone", "UTC"]
        params = StdioServerParameters(command=sys.executable, args=args)
        found.append(
            Target(
                "stdio",
                lambda: Client(params, cache=None),
                gateway_session,
                lambda c: c.call_tool("get_current_time", {"timezone": "UTC"}),
                lambda c: c.call_tool("time__get_current_time", {"timezone": "UTC"}),
            )
        )
    return found


def verdict(ok: bool) -> str:
    return "MET" if ok else "not met"


def report(name: str, c1: tuple[Cell, Cell], c16: tuple[Cell, Cell], calls16: int) -> None:
    (d1, g1), (d16, g16) = c1, c16
    print(f"\n[{name}] c=1: {len(d1.latencies) + d1.errors} calls per path; c=16: {calls16} calls per path")
    print(f"{'path':8} {'c=1 p50':>8} {'p99':>8} {'c=16 calls/s':>13} {'errors':>7} {'gw CPU/call':>12}")
    print(f"{'direct':8} {d1.pct(0.5):>8.2f} {d1.pct(0.99):>8.2f} {d16.rate:>13.0f} {d1.errors + d16.errors:>7}")
    cpu_call = 1000 * (g1.cpu_s + g16.cpu_s) / (len(g1.latencies) + g1.errors + len(g16.latencies) + g16.errors)
    print(
        f"{'gateway':8} {g1.pct(0.5):>8.2f} {g1.pct(0.99):>8.2f} {g16.rate:>13.0f} {g1.errors + g16.errors:>7}"
        f" {cpu_call:>10.2f}ms"
    )
    p50, p99, share = g1.pct(0.5) / d1.pct(0.5), g1.pct(0.99) / d1.pct(0.99), g16.rate / d16.rate
    errors = g16.errors + g1.errors
    print(f"  c=1 p50 ratio  {p50:5.2f}x  (target <= 1.30x, stretch 1.15x)  {verdict(p50 <= 1.3)}")
    print(f"  c=1 p99 ratio  {p99:5.2f}x  (target <= 2.00x)                  {verdict(p99 <= 2.0)}")
    print(f"  c=16 share     {100 * share:5.1f}%  (target >= 60% of direct)          {verdict(share >= 0.6)}")
    enough = calls16 >= 4000
    print(
        f"  c=16 errors    {errors:5d}   (target 0 over >= 4,000 calls)     "
        f"{verdict(errors == 0 and enough)}{'' if enough else ' (too few calls for the target)'}"
    )


@asynccontextmanager
async def system(tmp: Path, async_outcome: bool) -> AsyncIterator[tuple[Gateway, str]]:
    policy_dir = tmp / "policies"
    policy_dir.mkdir()
    (policy_dir / "bench.yaml").write_text(POLICY)
    env = {"WARDEN_AUDIT_ASYNC_OUTCOME": "true" if async_outcome else "false"}
    with (
        run_notes_upstream(tmp) as notes,
        run_gateway(tmp, policy_dir, upstreams_yaml(notes.url), ["bench"], **env) as gw,
    ):
        yield gw, notes.url


async def run(calls1: int, calls16: int, stdio: bool, async_too: bool) -> None:
    print(cpu_line())
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for async_outcome in (False, True) if async_too else (False,):
        mode = "async outcome (audit_async_outcome=true)" if async_outcome else "durable outcome (default)"
        print(f"\n=== gateway with {mode}")
        with tempfile.TemporaryDirectory() as tmp_name:
            async with system(Path(tmp_name), async_outcome) as (gw, notes_url):
                pid = gw.process.pid
                for p in paths(gw, notes_url, stdio):
                    d1 = await measure(p.direct, p.direct_call, calls1, 1, None)
                    g1 = await measure(p.through, p.through_call, calls1, 1, pid)
                    d16 = await measure(p.direct, p.direct_call, calls16, 16, None)
                    g16 = await measure(p.through, p.through_call, calls16, 16, pid)
                    report(p.name, (d1, g1), (d16, g16), calls16)
    print(f"\nload average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calls1", type=int, default=400, help="calls at concurrency 1, per path")
    parser.add_argument("--calls16", type=int, default=4000, help="calls at concurrency 16, per path")
    parser.add_argument("--stdio", action="store_true", help="also measure the stdio upstream (mcp-server-time)")
    parser.add_argument(
        "--async-outcome", action="store_true", help="also measure a gateway with audit_async_outcome=true"
    )
    args = parser.parse_args()
    anyio.run(run, args.calls1, args.calls16, args.stdio, args.async_outcome)


if __name__ == "__main__":
    main()
