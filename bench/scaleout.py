"""Scale-out: calls/s through a real load balancer over 1, 2 and 4 gateway workers on PostgreSQL.

For each worker count N: a fresh database on a throwaway PostgreSQL cluster, the gateway as
`warden gateway serve --workers N` (``--mode workers``: uvicorn worker processes on one port)
or as N single-process replicas (``--mode replicas``), Debian's HAProxy in front running the
shipped examples/haproxy.cfg, and the SDK notes upstream's `echo` tool over Streamable HTTP.
C clients (one 2026-07-28 client each, stateless requests: any replica may answer) call
through HAProxy for a fixed time. Prints calls/s, the ratio to 1 worker and the errors (a
refused or failed call counts as an error, never as throughput), plus the CPU model, its core
count and whether it has avx512_bf16. On a 2-core machine the upstream, HAProxy, PostgreSQL
and the clients share the cores with the workers: expect little scaling there.

    python bench/scaleout.py [--seconds 8] [--concurrency 16] [--mode workers|replicas|both]
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.gateway.harness import Gateway, connect, free_port, run_gateway, run_notes_upstream
from tests.gateway.shared.lb import run_haproxy
from tests.gateway.shared.test_replicas import notes_only

POLICY = """
identities:
  bench:
    grants: ["*"]
"""


@dataclasses.dataclass
class Cell:
    mode: str
    workers: int
    ok: int = 0
    errors: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0


def cpu() -> str:
    info = Path("/proc/cpuinfo").read_text()
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    flags = next((line for line in info.splitlines() if line.startswith("flags")), "")
    bf16 = "avx512_bf16" if "avx512_bf16" in flags.split() else "no avx512_bf16"
    return f"{model}, {os.cpu_count()} cores, {bf16}"


@contextlib.contextmanager
def postgres() -> Iterator[int]:
    """A throwaway PostgreSQL cluster (initdb + pg_ctl, as user postgres when root); yields its port."""
    found = shutil.which("pg_ctl") or next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))), None)
    if found is None:
        raise SystemExit("PostgreSQL binaries not found: apt-get install postgresql")
    bindir = Path(found).resolve().parent
    root = Path(tempfile.mkdtemp(prefix="warden-bench-pg-"))  # not under a root-only temp dir: postgres reads it
    as_user: list[str] = []
    if os.geteuid() == 0:
        entry = pwd.getpwnam("postgres")
        os.chown(root, entry.pw_uid, entry.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", free_port()
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"], check=True)
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=300"
    pg_ctl = [*as_user, str(bindir / "pg_ctl"), "-D", str(data)]
    subprocess.run([*pg_ctl, "-l", str(root / "pg.log"), "-w", "-o", options, "start"], check=True)
    try:
        yield port
    finally:
        subprocess.run([*pg_ctl, "-m", "fast", "stop"], capture_output=True, check=False)
        shutil.rmtree(root, ignore_errors=True)


def create_database(port: int, name: str) -> str:
    import psycopg

    with psycopg.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres", autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}".encode())
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{name}"


@contextlib.contextmanager
def gateways(mode: str, n: int, tmp: Path, database_url: str, upstream: str) -> Iterator[list[Gateway]]:
    """N workers in one gateway process, or N one-worker replicas sharing the database and keys."""
    policy_dir = tmp / "policies"
    policy_dir.mkdir()
    (policy_dir / "bench.yaml").write_text(POLICY)
    quiet = {"WARDEN_LOG_LEVEL": "WARNING"}
    with contextlib.ExitStack() as stack:
        if mode == "workers":
            first = run_gateway(tmp, policy_dir, upstream, ["bench"], database_url, WARDEN_WORKERS=str(n), **quiet)
            yield [stack.enter_context(first)]
            return
        started: list[Gateway] = []
        for i in range(n):
            (tmp / f"r{i}").mkdir()
            who = [] if started else ["bench"]
            gw = stack.enter_context(run_gateway(tmp / f"r{i}", policy_dir, upstream, who, database_url, **quiet))
            gw.keys = started[0].keys if started else gw.keys
            started.append(gw)
        yield started


async def load(lb: Gateway, cell: Cell, concurrency: int, seconds: float) -> None:
    async def client(measure_from: float, until: float) -> None:
        async with connect(lb, "bench") as session:
            while (now := time.monotonic()) < until:
                try:
                    result = await session.call_tool("notes__echo", {"text": "hi"})
                    failed = result.is_error
                except Exception:  # a failed call is an error in the table, never throughput
                    failed = True
                if now >= measure_from:
                    cell.errors += failed
                    cell.ok += not failed

    start = time.monotonic()
    measure_from = start + 2  # warm-up: connections, caches
    async with anyio.create_task_group() as tg:
        for _ in range(concurrency):
            tg.start_soon(client, measure_from, measure_from + seconds)
    cell.seconds = seconds


def measure(cell: Cell, work: Path, database_url: str, upstream: str, *, concurrency: int, seconds: float) -> Cell:
    """One cell: start the gateways and HAProxy, drive the load, stop them."""
    with (
        gateways(cell.mode, cell.workers, work, database_url, upstream) as gws,
        run_haproxy(work, [gw.port for gw in gws]) as lb_url,
    ):
        lb = dataclasses.replace(gws[0], port=int(lb_url.rsplit(":", 1)[1]))
        anyio.run(load, lb, cell, concurrency, seconds)
    return cell


def run(modes: list[str], counts: list[int], concurrency: int, seconds: float) -> list[Cell]:
    cells = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        with postgres() as pg_port, run_notes_upstream(tmp) as notes:
            for mode in modes:
                for n in counts:
                    work = tmp / f"{mode}-{n}"
                    work.mkdir()
                    url = create_database(pg_port, f"bench_{mode}_{n}")
                    upstream = notes_only(notes.url)
                    cell = measure(Cell(mode, n), work, url, upstream, concurrency=concurrency, seconds=seconds)
                    cells.append(cell)
                    print(f"  {mode} x{n}: {cell.rate:.0f} calls/s, {cell.errors} errors", flush=True)
    return cells


def report(cells: list[Cell], concurrency: int, seconds: float) -> None:
    print(f"\nscale-out through HAProxy on PostgreSQL: c={concurrency}, {seconds:g} s per cell; CPU: {cpu()}")
    print(f"{'mode':9} {'workers':>7} {'calls/s':>8} {'vs 1':>6} {'errors':>7}")
    for cell in cells:
        base = next(c for c in cells if c.mode == cell.mode and c.workers == 1)
        ratio = cell.rate / base.rate if base.rate else 0.0
        print(f"{cell.mode:9} {cell.workers:>7} {cell.rate:>8.0f} {ratio:>5.2f}x {cell.errors:>7}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=8.0, help="measured seconds per cell (after 2 s warm-up)")
    parser.add_argument("--concurrency", type=int, default=16, help="clients calling at once")
    parser.add_argument("--mode", choices=["workers", "replicas", "both"], default="workers")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4], help="worker counts (1 first)")
    args = parser.parse_args()
    modes = ["workers", "replicas"] if args.mode == "both" else [args.mode]
    report(run(modes, args.workers, args.concurrency, args.seconds), args.concurrency, args.seconds)


if __name__ == "__main__":
    main()
