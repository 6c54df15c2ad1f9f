"""`warden policy check|test|explain`: the operator's tools for the files in policies/.

Only command-line glue: loading, deciding and checking live in `gateway.policy`.
Every command exits 1 when it finds a problem, so CI can run them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from gateway.cli.suggest import print_risk, suggest_command
from gateway.config import Settings
from gateway.names import split_offline
from gateway.policy import Policy, PolicyError, Problem, check_against_catalog, explain, load_policy
from gateway.policy.testing import case_files, run_tests
from gateway.types import Identity, ToolCall

app = typer.Typer(help="Check, test and explain the policy files in policies/.", no_args_is_help=True)

DirOption = Annotated[
    Path | None,
    typer.Option("--dir", "-d", help="Policy directory. Default: policy_dir from settings (WARDEN_POLICY_DIR)."),
]


def _settings() -> Settings:
    return Settings()


def _console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _print_problems(console: Console, problems: list[Problem]) -> None:
    for problem in problems:
        style = "yellow" if problem.severity == "warning" else "red"
        console.print(str(problem), style=style, markup=False)


def _load(console: Console, directory: Path) -> Policy:
    try:
        return load_policy(directory)
    except PolicyError as exc:
        _print_problems(console, exc.problems)
        console.print(f"{len(exc.problems)} problem(s) in {directory}", style="bold red", markup=False)
        raise typer.Exit(1) from None


def _read_catalog(console: Console, path: Path) -> dict[str, Any]:
    """Public tool name -> inputSchema, from a tools/list result (or a JSON-RPC response holding one)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        data = data.get("result", data)
        return {tool["name"]: tool.get("inputSchema", {}) for tool in data["tools"]}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        console.print(f"{path}: not a tools/list result: {exc!r}", style="red", markup=False)
        raise typer.Exit(1) from None


@app.command()
def check(
    directory: DirOption = None,
    catalog: Annotated[
        Path | None,
        typer.Option(
            "--catalog",
            help='JSON tools/list result {"tools": [{"name", "inputSchema"}]} with public names; '
            "checks conditions against input schemas and reports globs matching no tool.",
        ),
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 on warnings too, not only on errors.")] = False,
) -> None:
    """Load and validate every policy file; print OK with counts, or each problem as file:line: message."""
    settings = _settings()
    directory = directory or settings.policy_dir
    console = _console()
    policy = _load(console, directory)
    problems: list[Problem] = []
    if catalog is not None:
        problems = check_against_catalog(policy, _read_catalog(console, catalog), settings.tool_separator)
        _print_problems(console, problems)
    errors = [p for p in problems if p.severity == "error"]
    if errors or (strict and problems):
        console.print(f"{len(errors)} error(s), {len(problems) - len(errors)} warning(s)", style="bold red")
        raise typer.Exit(1)
    console.print(
        f"OK: {len(policy.files)} files, {len(policy.identities)} identities, {len(policy.roles)} roles, "
        f"{len(policy.rules)} rules, {len(policy.rate_limits)} rate limits, {len(policy.redactions)} redactions"
        + (f", {len(problems)} warning(s)" if problems else ""),
        style="green",
        markup=False,
    )


@app.command()
def test(directory: DirOption = None) -> None:
    """Run the cases in <dir>/tests/*.yaml and show a table of results; exit 1 on any failure."""
    settings = _settings()
    directory = directory or settings.policy_dir
    console = _console()
    policy = _load(console, directory)
    try:
        results = run_tests(policy, directory, settings.tool_separator)
    except PolicyError as exc:
        _print_problems(console, exc.problems)
        raise typer.Exit(1) from None
    if not results:
        console.print(f"no test cases in {directory / 'tests'} (every policy ships with tests)", style="red")
        raise typer.Exit(1)
    table = Table(title=f"policy tests: {', '.join(str(f) for f in case_files(directory))}")
    for column in ("", "case", "expected", "got", "where"):
        table.add_column(column, overflow="fold")
    for r in results:
        expected = r.expected.effect + (f" {r.expected.rule}" if r.expected.rule else "")
        got = f"{r.got.effect} {','.join(r.got.rule_ids)}"
        mark = "[green]PASS[/]" if r.passed else "[red]FAIL[/]"
        table.add_row(mark, r.name, expected, got, f"{r.location.file.name}:{r.location.line}")
    console.print(table)
    failed = [r for r in results if not r.passed]
    for r in failed:
        console.print(f"{r.location}: {r.name}: {'; '.join(r.failures)}", style="red", markup=False)
    if failed:
        console.print(f"{len(failed)} of {len(results)} cases failed", style="bold red")
        raise typer.Exit(1)
    console.print(f"{len(results)} cases passed", style="green")


@app.command("explain")
def explain_command(
    identity: Annotated[str, typer.Option("--identity", "-i", help="Identity name making the call.")],
    tool: Annotated[str, typer.Option("--tool", "-t", help="Public tool name, e.g. time__get_current_time.")],
    args: Annotated[str, typer.Option("--args", "-a", help="Tool arguments as a JSON object.")] = "{}",
    directory: DirOption = None,
    show_all: Annotated[
        bool, typer.Option("--all", help="Also list rules whose tool globs do not match the tool.")
    ] = False,
    catalog: Annotated[
        Path | None, typer.Option("--catalog", help="tools/list JSON (or GET /admin/tools) to show the tool's risk.")
    ] = None,
) -> None:
    """Print the decision for one call and every rule considered, with why it did or did not apply."""
    settings = _settings()
    directory = directory or settings.policy_dir
    console = _console()
    policy = _load(console, directory)
    try:
        arguments = json.loads(args)
    except ValueError as exc:
        console.print(f"--args is not JSON: {exc}", style="red", markup=False)
        raise typer.Exit(1) from None
    if not isinstance(arguments, dict):
        console.print("--args must be a JSON object", style="red")
        raise typer.Exit(1)
    server, upstream = split_offline(tool, settings.tool_separator)
    who = Identity(identity, policy.roles_of(identity))
    result = explain(policy, ToolCall(tool, server, upstream, arguments, call_id="explain"), who)
    d = result.decision
    colour = {"allow": "green", "deny": "red", "approve": "yellow"}[d.effect]
    console.print(f"decision: [bold {colour}]{d.effect}[/]")
    console.print(f"rule ids: {', '.join(d.rule_ids)}", markup=False)
    console.print(f"reason:   {d.reason}", markup=False)
    if d.approver_roles:
        console.print(f"approvers: {', '.join(d.approver_roles)}", markup=False)
    console.print(f"identity: {result.identity} roles [{', '.join(result.roles)}]", markup=False)
    console.print(f"grant:    {result.grant or 'none (default deny; rules are not consulted)'}", markup=False)
    print_risk(console, tool, catalog, settings.tool_separator)
    redacted = sorted(policy.redact_fields(tool))
    if redacted:
        console.print(f"redacted: {', '.join(redacted)}", markup=False)
    table = Table(title="rules considered")
    table.add_column("rule", no_wrap=True)
    for column in ("effect", "applies", "why", "where"):
        table.add_column(column, overflow="fold")
    hidden = 0
    for trace in result.traces:
        if not show_all and not trace.rule.tools.matches(tool):
            hidden += 1
            continue
        applies = "[bold]yes[/]" if trace.applies else "no"
        where = f"{trace.rule.location.file.name}:{trace.rule.location.line}"
        table.add_row(trace.rule.id, trace.rule.effect, applies, trace.why, where)
    console.print(table)
    if hidden:
        console.print(f"{hidden} rule(s) for other tools not shown (--all shows them)")


app.command("suggest")(suggest_command)
