"""The vLLM server process: its command line, environment and lifecycle, written once.

Owns: building the vLLM command line from checked inputs (``build_spec``), starting it in its own
process group with its log in a file, waiting until it is healthy (with progress for the person
waiting: vLLM takes 20-40 s to start on an AVX-512 CPU and minutes on an AVX2 one), and stopping it
with its engine. ``launch(...)`` is the one context manager every caller uses.

`VLLM_CPU_KVCACHE_SPACE` bounds the CPU build's KV cache (unset, it reserves most of the RAM).
`--dtype` is the caller's choice per machine (vllm-cpu prefills 2-3x slower in bf16 where it is not
native). vllm-cpu
binds its OpenMP threads to the cores itself (`VLLM_CPU_OMP_THREADS_BIND=auto`); left as is, because
Warden never trains while vLLM runs; set it (or `nobind`) in the environment on a machine shared with
other CPU work.
The `vllm` CLI of `vllm-cpu` 0.32 fails (it looks up metadata under the name `vllm`), so the
server is started as `python -m vllm.entrypoints.openai.api_server`.

Every launch requires an API key (serving.keys): given, or generated per launch; it is passed in
the environment (``VLLM_API_KEY``), never on the command line. vLLM checks it under /v1 only, so
serving/vllm_guard (loaded into vLLM with ``--middleware``) requires it on every other path too
(SageMaker's ``POST /adapters`` loads adapters).

Never: listens on anything but loopback (vLLM's runtime adapter endpoints are Warden's admin
API's to use); imports vLLM or torch.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from serving.errors import ServeError
from serving.install import VllmInstall
from serving.keys import new_api_key
from serving.models import AdapterSpec, check_adapter, check_base_dir, max_lora_rank, tool_parser_for
from serving.ports import LOOPBACK

GUARD_DIR = Path(__file__).with_name("vllm_guard")
"""Holds only warden_vllm_guard.py; on vLLM's PYTHONPATH so `--middleware` can import it."""

Progress = Callable[[float], None]
"""Called about every `PROGRESS_EVERY_S` while vLLM starts, with the seconds waited so far."""
PROGRESS_EVERY_S = 15.0
DTYPES = ("auto", "bfloat16", "float16", "float32")
"""The `--dtype` values Warden passes to vLLM."""


@dataclass(frozen=True, slots=True)
class ServeSpec:
    install: VllmInstall
    base: Path
    served_name: str
    adapters: tuple[AdapterSpec, ...]
    port: int
    tool_parser: str
    kvcache_gib: int = 2
    max_loras: int = 4
    max_model_len: int | None = None
    enforce_eager: bool = False
    """`--enforce-eager`: no torch.compile warm-up (on 2 loaded CPU cores the 0.5B base's inductor warm-up
    did not finish in 600 s; finetune/RESULTS.md)."""
    enable_lora: bool = True
    """Off only to measure the base model without LoRA machinery (bench/serve_adapters.py)."""
    dtype: str = "auto"
    """vLLM's `--dtype` (auto: the model's, bf16 here). Callers choose it per machine
    (finetune.precision.vllm_dtype: float32 on CPUs without native bf16, where it prefills ~2-3x faster)."""
    api_key: str = field(default_factory=new_api_key, repr=False)
    """Required on every /v1 request (VLLM_API_KEY); only Warden holds it."""

    def command(self) -> list[str]:
        cmd = [
            str(self.install.python),
            "-m",
            "vllm.entrypoints.openai.api_server",
            "--model",
            str(self.base),
            "--served-model-name",
            self.served_name,
            "--host",
            LOOPBACK,
            "--port",
            str(self.port),
            "--enable-auto-tool-choice",
            "--tool-call-parser",
            self.tool_parser,
            "--dtype",
            self.dtype,
            "--middleware",
            "warden_vllm_guard.KeyOnEveryRoute",
        ]
        if self.enable_lora:
            rank, slots = max_lora_rank(self.adapters), max(self.max_loras, len(self.adapters))
            cmd += ["--enable-lora", "--max-lora-rank", str(rank), "--max-loras", str(slots)]
        if self.adapters:
            cmd += ["--lora-modules", *(f"{a.name}={a.path}" for a in self.adapters)]
        if self.max_model_len:
            cmd += ["--max-model-len", str(self.max_model_len)]
        if self.enforce_eager:
            cmd += ["--enforce-eager"]
        return cmd

    def environment(self, base_env: Mapping[str, str]) -> dict[str, str]:
        env = dict(base_env)
        env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "True"  # the admin API loads promoted adapters at runtime
        env["VLLM_API_KEY"] = self.api_key  # environment, not argv: a command line is world-readable
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(GUARD_DIR), env.get("PYTHONPATH")) if p)
        env.setdefault("VLLM_NO_USAGE_STATS", "1")
        env.setdefault("DO_NOT_TRACK", "1")
        if self.install.device == "cpu":
            env["VLLM_CPU_KVCACHE_SPACE"] = str(self.kvcache_gib)
        return env


def build_spec(
    install: VllmInstall,
    base: Path,
    adapters: Sequence[tuple[str, Path]],
    port: int,
    *,
    tool_parser: str | None = None,
    kvcache_gib: int = 2,
    max_model_len: int | None = None,
    enable_lora: bool = True,
    dtype: str = "auto",
    api_key: str | None = None,
) -> ServeSpec:
    """Check every input and build what `start` runs; any problem is a ServeError naming it.

    `api_key`: the key vLLM will require; None generates a fresh one for this launch."""
    base = check_base_dir(base)
    names = [n for n, _ in adapters]
    if len(set(names)) != len(names):
        raise ServeError(f"adapter names must be unique: {names}")
    if base.name in names:
        raise ServeError(f"an adapter may not be named like the base model ({base.name})")
    if adapters and not enable_lora:
        raise ServeError("adapters need LoRA enabled")
    specs = tuple(check_adapter(n, p, base) for n, p in adapters)
    parser = tool_parser or tool_parser_for(base)
    if dtype not in DTYPES:
        raise ServeError(f"vLLM dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
    return ServeSpec(
        install,
        base,
        base.name,
        specs,
        port,
        parser,
        kvcache_gib,
        max_model_len=max_model_len,
        enable_lora=enable_lora,
        dtype=dtype,
        api_key=api_key or new_api_key(),
    )


@dataclass
class VllmServer:
    spec: ServeSpec
    process: subprocess.Popen[bytes]
    log_path: Path
    started: float

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.spec.port}"

    @property
    def api_key(self) -> str:
        return self.spec.api_key

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_healthy(self, timeout_s: float, progress: Progress | None = None) -> float:
        """Seconds from start until /health answered 200; ServeError if it exits or the time runs out."""
        deadline = time.monotonic() + timeout_s
        next_report = time.monotonic() + PROGRESS_EVERY_S
        while not self.healthy():
            if progress is not None and time.monotonic() >= next_report:
                progress(time.monotonic() - self.started)
                next_report += PROGRESS_EVERY_S
            if self.process.poll() is not None:
                raise ServeError(
                    f"vLLM exited with status {self.process.returncode} while starting; "
                    f"last lines of {self.log_path}:\n{self.log_tail()}"
                )
            if time.monotonic() > deadline:
                raise ServeError(
                    f"vLLM did not become healthy in {timeout_s:.0f} s; "
                    f"last lines of {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(0.5)  # polling an HTTP endpoint of another process: there is no event to wait on
        return time.monotonic() - self.started

    def stop(self, timeout_s: float = 30) -> None:
        """SIGTERM to the server's process group (the API server and its engine), SIGKILL after `timeout_s`."""
        if self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def start(spec: ServeSpec, log_path: Path, env: Mapping[str, str] | None = None) -> VllmServer:
    """Start vLLM in its own process group, output appended to `log_path`. Not yet healthy."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        log.write(f"\n==== warden serve: {' '.join(spec.command())}\n".encode())
        log.flush()
        process = subprocess.Popen(
            spec.command(),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=spec.environment(os.environ if env is None else env),
            start_new_session=True,
        )
    return VllmServer(spec, process, log_path, time.monotonic())


@contextlib.contextmanager
def launch(
    spec: ServeSpec,
    log_path: Path,
    timeout_s: float = 600,
    progress: Progress | None = None,
    env: Mapping[str, str] | None = None,
) -> Iterator[VllmServer]:
    """A healthy vLLM for the duration of the block; stopped (with its engine) afterwards.

    `progress` is called about every 15 s while it starts; ServeError (with the log's tail) if it
    exits or does not become healthy within `timeout_s`.
    """
    server = start(spec, log_path, env)
    try:
        server.wait_healthy(timeout_s, progress)
        yield server
    finally:
        server.stop()
