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

A third row, ``floor``, is the same client through a do-nothing Python reverse proxy
(bench/floor_proxy.py: uvicorn + httpx forwarding the HTTP body; no MCP, no policy, no audit)
in the same run: how far the gateway is from what any Python hop costs on this machine.

With ``--async-outcome`` it measures a second gateway that answers before the outcome row
is committed (``audit_async_outcome``; off by default: the decision is committed before
forwarding and the outcome before answering).

    python bench/gateway_overhead.py [--calls1 400] [--calls16 4000] [--stdio] [--async-outcome]
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
from mcp.client.client import Client
from mcp.client.stdio import StdioServerParameters

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from serving.ports import free_port
from tests.gateway.harness import (
    Gateway,
    connect,
    run_gateway,
    run_notes_upstream,
    upstreams_yaml,
    wait_until,
)

FLOOR_PROXY = Path(__file__).with_name("floor_proxy.py")

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
    floor: Session | None = None  # the direct session through the do-nothing proxy


@dataclass
class Floor:
    url: str
    pid: int


@contextmanager
def run_floor_proxy(upstream_url: str) -> Iterator[Floor]:
    """bench/floor_proxy.py in its own process (like the gateway), in front of the upstream."""
    port = free_port()
    base = upstream_url.rsplit("/", 1)[0]
    proc = subprocess.Popen([sys.executable, str(FLOOR_PROXY), str(port), base])
    try:

        def listening() -> bool:
            with socket.socket() as sock:
                return sock.connect_ex(("127.0.0.1", port)) == 0

        wait_until(lambda: listening() or proc.poll() is not None, 30, "floor proxy to listen")
        assert proc.poll() is None, "floor proxy exited at start"
        yield Floor(f"http://127.0.0.1:{port}/mcp", proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)


def paths(gw: Gateway, notes_url: str, stdio: bool, floor_url: str) -> list[Target]:
    def gateway_session() -> AbstractAsyncContextManager[Client]:
        return connect(gw, "bench")

    found = [
        Target(
            "http",
            lambda: Client(notes_url, cache=None),
            gateway_session,
            lambda c: c.call_tool("echo", {"text": "hi"}),
            lambda c: c.call_tool("notes__echo", {"text": "hi"}),
            lambda: Client(floor_url, cache=None),
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


def row(name: str, c1: Cell, c16: Cell, cpu: bool) -> None:
    calls = len(c1.latencies) + c1.errors + len(c16.latencies) + c16.errors
    cpu_call = f" {1000 * (c1.cpu_s + c16.cpu_s) / calls:>10.2f}ms" if cpu else ""
    print(f"{name:8} {c1.pct(0.5):>8.2f} {c1.pct(0.99):>8.2f} {c16.rate:>13.0f} {c1.errors + c16.errors:>7}{cpu_call}")


def report(name: str, c1: tuple[Cell, ...], c16: tuple[Cell, ...], calls16: int) -> None:
    (d1, g1, *f1), (d16, g16, *f16) = c1, c16
    print(f"\n[{name}] c=1: {len(d1.latencies) + d1.errors} calls per path; c=16: {calls16} calls per path")
    print(f"{'path':8} {'c=1 p50':>8} {'p99':>8} {'c=16 calls/s':>13} {'errors':>7} {'CPU/call':>12}")
    row("direct", d1, d16, cpu=False)
    if f1:
        row("floor", f1[0], f16[0], cpu=True)
    row("gateway", g1, g16, cpu=True)
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
    if f1:  # what any Python hop costs here: the part of the gap no gateway code can remove
        fp50, fshare = f1[0].pct(0.5) / d1.pct(0.5), f16[0].rate / d16.rate
        print(f"  floor          {fp50:5.2f}x c=1 p50, {100 * fshare:5.1f}% c=16 share (do-nothing Python proxy)")
        over_p50, over_rate = g1.pct(0.5) / f1[0].pct(0.5), g16.rate / f16[0].rate
        print(f"  gateway/floor  {over_p50:5.2f}x c=1 p50, {over_rate:5.2f}x c=16 calls/s")


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


async def cells(
    p: Target, calls1: int, calls16: int, pid: int, floor_pid: int
) -> tuple[tuple[Cell, ...], tuple[Cell, ...]]:
    """Direct, gateway (and floor) cells at c=1, then at c=16, alternating."""
    d1 = await measure(p.direct, p.direct_call, calls1, 1, None)
    g1 = await measure(p.through, p.through_call, calls1, 1, pid)
    f1 = [await measure(p.floor, p.direct_call, calls1, 1, floor_pid)] if p.floor else []
    d16 = await measure(p.direct, p.direct_call, calls16, 16, None)
    g16 = await measure(p.through, p.through_call, calls16, 16, pid)
    f16 = [await measure(p.floor, p.direct_call, calls16, 16, floor_pid)] if p.floor else []
    return (d1, g1, *f1), (d16, g16, *f16)


async def run(calls1: int, calls16: int, stdio: bool, async_too: bool) -> None:
    print(cpu_line())
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for async_outcome in (False, True) if async_too else (False,):
        mode = "async outcome (audit_async_outcome=true)" if async_outcome else "durable outcome (default)"
        print(f"\n=== gateway with {mode}")
        with tempfile.TemporaryDirectory() as tmp_name:
            async with system(Path(tmp_name), async_outcome) as (gw, notes_url):
                with run_floor_proxy(notes_url) as floor:
                    pid = gw.process.pid
                    for p in paths(gw, notes_url, stdio, floor.url):
                        c1, c16 = await cells(p, calls1, calls16, pid, floor.pid)
                        report(p.name, c1, c16, calls16)
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
