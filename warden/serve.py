"""`warden serve`: vLLM's OpenAI-compatible server for a base model and its adapters, in the foreground.

Checks the inputs (serving.models), adds the adapters promoted onto this base in the registry,
starts vLLM on loopback with its log in a file, waits until it is healthy, and stops it (its
whole process group) on Ctrl-C or SIGTERM. vLLM requires an API key on /v1 (serving.keys):
WARDEN_VLLM_API_KEY, else one generated for this launch and written to WARDEN_VLLM_API_KEY_FILE
(mode 0600, removed on exit), where the gateway's admin API and `warden agent run` read it.
A server that exits by itself ends the command with the tail of its log.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from serving.models import DEFAULT_BASE

if TYPE_CHECKING:
    from gateway.models import AdapterPublic

console = Console()


def serve(
    base: Annotated[Path, typer.Option(help="Base model directory (`warden model fetch` prepares the default).")] = (
        DEFAULT_BASE
    ),
    adapter: Annotated[
        list[str] | None, typer.Option("--adapter", "-a", help="NAME=DIR of a LoRA adapter to serve (repeatable).")
    ] = None,
    promoted: Annotated[
        bool, typer.Option(help="Also serve the adapters promoted onto this base in the registry.")
    ] = True,
    port: Annotated[int | None, typer.Option(help="Loopback port (default WARDEN_VLLM_PORT, 8800).")] = None,
    tool_parser: Annotated[
        str | None, typer.Option(help="vLLM tool-call parser (default: the one matching the chat template).")
    ] = None,
    max_model_len: Annotated[int | None, typer.Option(help="Context length to serve (default: the model's).")] = None,
    dtype: Annotated[
        str | None,
        typer.Option(
            help="vLLM --dtype: auto | bfloat16 | float16 | float32 (default WARDEN_VLLM_DTYPE, auto: bfloat16 "
            "where bf16 is native, float32 on CPUs without it)."
        ),
    ] = None,
    log: Annotated[Path, typer.Option(help="vLLM's log file (appended).")] = Path(".warden/serve/vllm.log"),
) -> None:
    """Serve BASE and its LoRA adapters with vLLM on 127.0.0.1, tool calling on, until Ctrl-C."""
    from finetune.precision import PrecisionError, vllm_dtype
    from gateway.config import Settings
    from serving.errors import ServeError
    from serving.install import find_python, probe
    from serving.keys import new_api_key, write_key_file
    from serving.models import parse_adapter_arg
    from serving.process import build_spec, launch

    settings = Settings()
    try:
        pairs = [parse_adapter_arg(a) for a in adapter or []]
        if promoted:
            pairs += [
                (a.name, Path(a.path))
                for a in _promoted(settings.database_url, base)
                if a.name not in {n for n, _ in pairs}
            ]
        install = probe(find_python(settings.vllm_python))
        chosen = vllm_dtype(dtype or settings.vllm_dtype, install.device)
        given = settings.vllm_api_key.get_secret_value() if settings.vllm_api_key else None
        spec = build_spec(
            install,
            base,
            pairs,
            port or settings.vllm_port,
            tool_parser=tool_parser,
            kvcache_gib=settings.vllm_kvcache_gib,
            max_model_len=max_model_len,
            dtype=chosen.value,
            api_key=given or new_api_key(),
        )
    except (ServeError, PrecisionError) as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from None

    def stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop_on_sigterm)
    console.print(
        f"vLLM {install.version} ({install.device}) from {install.python}; tool parser {spec.tool_parser}; log {log}"
    )
    console.print(f"dtype {chosen.value}: {chosen.reason}")
    models = ", ".join([spec.served_name, *(a.name for a in spec.adapters)])
    console.print(f"starting vLLM for {spec.served_name} with {len(spec.adapters)} adapter(s)…")

    def waiting(seconds: float) -> None:
        console.print(f"  still starting vLLM ({seconds:.0f} s; log {log})", style="dim")

    key_file = None if given else settings.vllm_api_key_file
    if key_file is not None:
        write_key_file(key_file, spec.api_key)
        console.print(f"vLLM's API key for this launch: {key_file} (mode 0600)")
    try:
        with launch(spec, log, settings.vllm_start_timeout_s, progress=waiting) as server:
            seconds = time.monotonic() - server.started
            console.print(
                f"[green]vLLM ready[/] in {seconds:.0f} s at {server.url}/v1 — models: {models}. Ctrl-C stops it."
            )
            code = server.process.wait()
            console.print(f"[bold red]vLLM exited[/] with status {code}; last lines of {log}:\n{server.log_tail()}")
            raise typer.Exit(1)
    except ServeError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from None
    except KeyboardInterrupt:
        console.print("vLLM stopped.")
    finally:
        if key_file is not None:
            key_file.unlink(missing_ok=True)


def _promoted(database_url: str, base: Path) -> list[AdapterPublic]:
    from gateway.adapters.registry import AdapterRegistry
    from gateway.db import create_db_engine, migrate

    engine = create_db_engine(database_url)
    try:
        migrate(engine)
        return AdapterRegistry(engine).promoted(base)
    finally:
        engine.dispose()
