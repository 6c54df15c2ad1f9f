"""`warden agent run "task" --model NAME`: one user request through the model and the gateway.

The model server defaults to `warden serve`'s (loopback, ``WARDEN_VLLM_PORT``), the gateway to
``http://HOST:PORT/mcp`` from settings; the agent's API key comes from ``WARDEN_API_KEY`` or
``--key-file``. vLLM's own key (``Settings.vllm_key()``) is sent only to a loopback model server,
never to another URL. Progress is printed per step; the transcript is written as JSONL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

import anyio
import httpx
import typer
from rich.console import Console

from agent.llm import ChatClient
from agent.loop import DEFAULT_MAX_SECONDS, DEFAULT_MAX_STEPS, Limits, Observer, RunResult, new_request_id, run
from agent.tools import GatewayError, connect

app = typer.Typer(help="Run the agent: a model served by vLLM, tools through the gateway.", no_args_is_help=True)
console = Console()


def print_event(event: str, fields: dict[str, Any]) -> None:
    """Progress lines for a run (the transcript has everything)."""
    if event == "start":
        console.print(f"[bold]task[/] {fields['task']}  [dim]({fields['model']}, {len(fields['tools'])} tools)[/]")
    elif event == "model" and not fields["tool_calls"]:
        console.print(f"  [dim]step {fields['step']}[/] model: {(fields['content'] or '').strip()[:300]}")
    elif event == "model":
        for call in fields["tool_calls"]:
            console.print(f"  [dim]step {fields['step']}[/] model calls [cyan]{call['name']}[/] {call['arguments']}")
    elif event == "tool":
        style = "red" if fields["is_error"] else "green"
        console.print(f"    → [{style}]{fields['text'][:300]}[/]", highlight=False)
    elif event == "invalid_tool_call":
        console.print(f"    → [yellow]{fields['problem']}[/]")
    elif event == "end":
        style = "green" if fields["status"] == "answered" else "yellow"
        console.print(
            f"  [{style}]{fields['status']}[/] after {fields['steps']} steps, {fields['seconds']:.1f} s"
            + (f": {fields['error']}" if fields.get("error") else "")
        )


async def run_task(
    task: str,
    *,
    model: str,
    llm_url: str,
    mcp_url: str,
    api_key: str,
    limits: Limits,
    transcript: Path | None,
    max_tokens: int = 256,
    system_prompt: str | None = None,
    request_id: str | None = None,
    observer: Observer | None = print_event,
    llm_key: str | None = None,
) -> RunResult:
    """One run with its own HTTP client and gateway session (the CLI and the demo use this)."""
    async with (
        httpx.AsyncClient(timeout=httpx.Timeout(limits.max_seconds, connect=10)) as http,
        connect(mcp_url, api_key) as tools,
    ):
        llm = ChatClient(http, llm_url, model, temperature=0.0, max_tokens=max_tokens, api_key=llm_key)
        return await run(
            task,
            llm,
            tools,
            limits=limits,
            transcript_path=transcript,
            system_prompt=system_prompt,
            observer=observer,
            request_id=request_id,
        )


def _on_loopback(url: str) -> bool:
    return urlsplit(url).hostname in ("127.0.0.1", "localhost", "::1")


@app.command("run")
def run_command(
    task: Annotated[str, typer.Argument(help="The user request.")],
    model: Annotated[str, typer.Option(help="Served model name: the base model or an adapter.")],
    llm_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible base URL (default: warden serve's, http://127.0.0.1:PORT/v1).")
    ] = None,
    gateway: Annotated[str | None, typer.Option(help="Gateway MCP URL (default http://HOST:PORT/mcp).")] = None,
    key_file: Annotated[Path | None, typer.Option(help="File with the agent's API key (else WARDEN_API_KEY).")] = None,
    max_steps: Annotated[int, typer.Option(min=1, help="Model turns before the run stops.")] = DEFAULT_MAX_STEPS,
    max_seconds: Annotated[float, typer.Option(min=1, help="Wall time before the run stops.")] = DEFAULT_MAX_SECONDS,
    max_tokens: Annotated[int, typer.Option(min=1, help="Tokens per model turn.")] = 256,
    system: Annotated[str | None, typer.Option(help="System prompt (default: the chat template's).")] = None,
    transcript: Annotated[
        Path | None, typer.Option(help="JSONL transcript (default .warden/transcripts/<time>-<request id>.jsonl).")
    ] = None,
) -> None:
    """Run TASK: the model sees the gateway's tools for the agent's identity; every call goes through the gateway."""
    from gateway.config import Settings

    settings = Settings()
    key = settings.client_api_key(key_file)
    if not key:
        console.print("[bold red]error:[/] no API key: set WARDEN_API_KEY or pass --key-file")
        raise typer.Exit(1)
    request_id = new_request_id()
    path = transcript or Path(".warden/transcripts") / f"{datetime.now(UTC):%Y%m%dT%H%M%S}-{request_id}.jsonl"

    try:
        result = anyio.run(
            lambda: run_task(
                task,
                model=model,
                llm_url=llm_url or f"http://127.0.0.1:{settings.vllm_port}/v1",
                llm_key=settings.vllm_key() if llm_url is None or _on_loopback(llm_url) else None,
                mcp_url=gateway or f"http://{settings.host}:{settings.port}/mcp",
                api_key=key,
                limits=Limits(max_steps, max_seconds),
                transcript=path,
                max_tokens=max_tokens,
                system_prompt=system,
                request_id=request_id,
            )
        )
    except GatewayError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise typer.Exit(1) from None
    if result.answer:
        console.print(f"\n[bold]answer[/] {result.answer}")
    console.print(f"[dim]transcript: {path} (request id {result.request_id})[/]")
    raise typer.Exit(0 if result.status == "answered" else 2)
