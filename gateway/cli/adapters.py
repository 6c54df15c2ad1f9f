"""`warden adapters list|register|promote`: the adapter registry from the command line.

`list` and `register` work on the database (``Settings.database_url``, schema upgraded first),
like `warden identity`. `promote` goes through the running gateway's admin API with an API key
of an identity holding the `admin` role (``WARDEN_API_KEY`` or ``--key-file``): the gateway
checks the promotion rule and loads the adapter into vLLM, whose own endpoint is never exposed.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import httpx
import typer
from rich.console import Console
from rich.table import Table

from gateway.adapters.registry import DEFAULT_METRIC, AdapterRegistry, RegistryError, read_eval
from gateway.config import Settings
from gateway.db import create_db_engine, migrate
from serving.models import DEFAULT_BASE

app = typer.Typer(
    help="Register LoRA adapters with their eval scores, list them, promote one into vLLM.", no_args_is_help=True
)


@contextmanager
def _registry() -> Iterator[AdapterRegistry]:
    engine = create_db_engine(Settings().database_url)
    try:
        migrate(engine)
        yield AdapterRegistry(engine)
    finally:
        engine.dispose()


def _fail(message: str) -> typer.Exit:
    Console(stderr=True).print(f"[bold red]error:[/] {message}", highlight=False)
    return typer.Exit(code=1)


def _score(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


@app.command("list")
def list_adapters() -> None:
    """Registered adapters with their scores and promotion."""
    with _registry() as registry:
        rows = registry.list()
    if not rows:
        Console().print("No adapters registered (`warden adapters register NAME --path DIR --eval FILE`).")
        return
    table = Table("name", "base model", "metric", "adapter", "base", "promoted", "path")
    for a in rows:
        promoted = f"{a.promoted_at:%Y-%m-%d %H:%M} by {a.promoted_by}" if a.promoted_at else ""
        table.add_row(
            a.name, Path(a.base_model).name, a.metric, _score(a.score), _score(a.base_score), promoted, a.path
        )
    Console().print(table)


@app.command("register")
def register(
    name: Annotated[str, typer.Argument(help="Model name clients will ask vLLM for.")],
    path: Annotated[Path, typer.Option("--path", help="Adapter directory (adapter_config.json + weights).")],
    eval_file: Annotated[
        Path | None, typer.Option("--eval", help="Eval report JSON with the base's and the adapter's scores.")
    ] = None,
    base: Annotated[Path, typer.Option(help="Base model directory the adapter was trained on.")] = DEFAULT_BASE,
    metric: Annotated[str, typer.Option(help="Score in the eval report that promotion compares.")] = DEFAULT_METRIC,
    replace: Annotated[bool, typer.Option(help="Overwrite an adapter of the same name.")] = False,
) -> None:
    """Record an adapter after checking it fits its base model; scores come from --eval."""
    try:
        scores = read_eval(eval_file, metric) if eval_file is not None else None
        with _registry() as registry:
            row = registry.register(name, base, path, scores, replace=replace)
    except RegistryError as exc:
        raise _fail(str(exc)) from None
    verdict = "" if scores else " [yellow](no eval scores: it cannot be promoted)[/]"
    Console().print(
        f"registered [bold]{row.name}[/] ({row.metric} {_score(row.score)}, base {_score(row.base_score)}){verdict}"
    )


@app.command("promote")
def promote(
    name: Annotated[str, typer.Argument(help="Registered adapter to load into the running vLLM.")],
    gateway: Annotated[
        str | None, typer.Option(help="Gateway base URL (default http://HOST:PORT from settings).")
    ] = None,
    key_file: Annotated[
        Path | None, typer.Option(help="File holding an admin identity's API key (else WARDEN_API_KEY).")
    ] = None,
) -> None:
    """Load NAME into the running vLLM through the gateway's admin API (refused below its base's score)."""
    settings = Settings()
    key = settings.client_api_key(key_file)
    if not key:
        raise _fail("no API key: set WARDEN_API_KEY or pass --key-file (an identity with the admin role)")
    url = (gateway or f"http://{settings.host}:{settings.port}").rstrip("/")
    try:
        response = httpx.post(
            f"{url}/admin/adapters/{name}/promote",
            headers={"Authorization": f"Bearer {key}"},
            timeout=settings.vllm_admin_timeout_s + 10,
        )
    except httpx.HTTPError as exc:
        raise _fail(f"no gateway answering at {url} ({type(exc).__name__})") from None
    if response.status_code != 200:
        detail = response.json().get("detail") if "json" in response.headers.get("content-type", "") else None
        raise _fail(f"promotion refused ({response.status_code}): {detail or response.text[:300]}")
    body = response.json()
    action = "loaded into" if body["loaded"] else "already served by"
    Console().print(f"promoted [bold]{name}[/]: {action} vLLM at {body['server']}")
