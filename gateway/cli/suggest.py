"""`warden policy suggest`, and the risk lines of `warden policy explain`.

`suggest`: a starter policy from the live catalog, shown as a diff, written on request.

Only command-line glue: the catalog comes from `gateway.risk.catalog` (the upstreams file's
servers launched directly, a running gateway's `/admin/tools`, or a JSON file), the suggestion
and its review from `gateway.risk.review`. Nothing is written without ``--write``; an existing
file is kept unless ``--force``; a widening of existing identities' access needs
``--allow-widening``. Exits 1 when the merged policy fails its checks or tests.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import anyio
import httpx
import typer
from rich.console import Console
from rich.table import Table

from gateway.config import Settings
from gateway.risk import RiskClass, classify
from gateway.risk.catalog import CatalogError, from_json, from_upstreams
from gateway.risk.review import Review, propose, target_paths, write
from gateway.risk.suggest import CatalogTool
from gateway.upstream.spec import UpstreamFileError


def _fail(console: Console, message: str) -> typer.Exit:
    console.print(message, style="red", markup=False)
    return typer.Exit(1)


def _catalog(
    console: Console, settings: Settings, upstreams: Path | None, gateway: str | None, catalog: Path | None
) -> list[CatalogTool]:
    try:
        if catalog is not None:
            return from_json(json.loads(catalog.read_text(encoding="utf-8")), settings.tool_separator)
        if gateway is not None:
            key = settings.client_api_key()
            if not key:
                raise _fail(console, "no API key: set WARDEN_API_KEY (an identity with the admin role)")
            response = httpx.get(
                f"{gateway.rstrip('/')}/admin/tools", headers={"Authorization": f"Bearer {key}"}, timeout=60
            )
            if response.status_code != 200:
                raise _fail(console, f"{gateway}/admin/tools answered {response.status_code}: {response.text[:300]}")
            return from_json(response.json(), settings.tool_separator)
        path = upstreams or settings.upstreams_file
        return anyio.run(from_upstreams, path, settings.tool_separator, settings.upstream_connect_timeout_s * 3)
    except (OSError, ValueError, CatalogError, UpstreamFileError, httpx.HTTPError) as exc:
        raise _fail(console, f"could not read the catalog: {exc}") from None


def _print_tools(console: Console, review: Review) -> None:
    if review.suggestion is None:
        return
    table = Table(title="tools, classified")
    for column in ("tool", "classes", "suggested", "evidence / flags"):
        table.add_column(column, overflow="fold")
    for s in review.suggestion.tools:
        reasons = [str(e) for e in s.risk.evidence if e.risk in s.risk.classes]
        table.add_row(s.entry.public_name, s.risk.label, s.placement, "\n".join([*reasons, *s.flags]))
    console.print(table)
    for name in review.suggestion.skipped:
        console.print(f"skipped (no glob can spell the name; default deny keeps it closed): {name}", markup=False)


def _print_review(console: Console, review: Review) -> None:
    _print_tools(console, review)
    if review.diff:
        console.print(review.diff, markup=False, highlight=False)
    for change in review.changes:
        console.print(str(change), style="bold red" if change.widens else "yellow", markup=False)
    for problem in (*review.problems, *review.test_failures):
        console.print(problem, style="red", markup=False)
    if review.passes:
        console.print(f"merged policy loads; {review.tests_run} test cases pass", style="green")


def print_risk(console: Console, tool: str, catalog: Path | None, separator: str) -> None:
    """The classes, evidence and conflicts of `tool` as the catalog file defines it."""
    if catalog is None:
        console.print("risk:     not shown (pass --catalog, e.g. the JSON of GET /admin/tools)", markup=False)
        return
    try:
        tools = from_json(json.loads(catalog.read_text(encoding="utf-8")), separator)
    except (OSError, ValueError, CatalogError) as exc:
        raise _fail(console, f"--catalog {catalog}: {exc}") from None
    entry = next((e for e in tools if e.public_name == tool), None)
    if entry is None:
        console.print(f"risk:     {tool} is not in {catalog}", markup=False)
        return
    risk = classify(entry.tool)
    colour = "red" if risk.held else "yellow" if risk.level != RiskClass.READ_ONLY else "green"
    console.print(f"risk:     [bold {colour}]{risk.label}[/]")
    for evidence in risk.evidence:
        console.print(f"          {evidence}", markup=False)
    for conflict in risk.conflicts:
        console.print(f"conflict: {conflict}", style="red", markup=False)


def suggest_command(
    directory: Annotated[
        Path | None, typer.Option("--dir", "-d", help="Policy directory. Default: policy_dir from settings.")
    ] = None,
    upstreams: Annotated[
        Path | None, typer.Option(help="Upstreams file whose servers are launched and listed (default from settings).")
    ] = None,
    gateway: Annotated[
        str | None, typer.Option(help="Read the catalog from a running gateway's /admin/tools (WARDEN_API_KEY: admin).")
    ] = None,
    catalog: Annotated[
        Path | None, typer.Option(help="Read the catalog from a tools/list JSON file with public names.")
    ] = None,
    name: Annotated[str, typer.Option(help="Writes <dir>/<name>.yaml and <dir>/tests/<name>.yaml.")] = "suggested",
    role_prefix: Annotated[str, typer.Option(help="Prefix of the suggested role names (reader, operator).")] = "",
    do_write: Annotated[bool, typer.Option("--write", help="Write the files (default: only print the diff).")] = False,
    force: Annotated[bool, typer.Option(help="Overwrite files of the same name.")] = False,
    allow_widening: Annotated[
        bool, typer.Option(help="Write even where existing identities would be granted more.")
    ] = False,
) -> None:
    """Classify every upstream tool and suggest a starter policy: print the diff, write with --write."""
    settings = Settings()
    console = Console(highlight=False, soft_wrap=True)
    directory = directory or settings.policy_dir
    try:
        target_paths(directory, name)
    except ValueError as exc:
        raise _fail(console, str(exc)) from None
    tools = _catalog(console, settings, upstreams, gateway, catalog)
    if not tools:
        raise _fail(console, "the catalog has no tools: nothing to suggest")
    try:
        review = propose(directory, name, tools, role_prefix, settings.tool_separator)
    except ValueError as exc:
        raise _fail(console, str(exc)) from None
    _print_review(console, review)
    if not review.passes:
        raise _fail(console, "not written: the merged policy must load and pass its tests")
    if not do_write:
        console.print("not written: review the diff, then run again with --write")
        return
    try:
        written = write(review, force=force, allow_widening=allow_widening)
    except ValueError as exc:
        raise _fail(console, str(exc)) from None
    console.print(f"wrote {', '.join(str(p) for p in written)}; run `warden policy test`", style="green")
