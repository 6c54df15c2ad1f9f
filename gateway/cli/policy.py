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
from gateway.policy import Explanation, Policy, PolicyError, Problem, check_against_catalog, explain, load_policy
from gateway.policy.schema_check import lint_policy
from gateway.policy.testing import Request, case_files, case_request, run_tests
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


def _read_prompts(console: Console, path: Path) -> dict[str, list[str]] | None:
    """Public prompt name -> argument names, from the catalog file's optional "prompts" (a prompts/list result)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        data = data.get("result", data)
        if "prompts" not in data:
            return None
        return {p["name"]: [a["name"] for a in p.get("arguments") or []] for p in data["prompts"]}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        console.print(f"{path}: its prompts are not a prompts/list result: {exc!r}", style="red", markup=False)
        raise typer.Exit(1) from None


@app.command()
def check(
    directory: DirOption = None,
    catalog: Annotated[
        Path | None,
        typer.Option(
            "--catalog",
            help='JSON tools/list result {"tools": [{"name", "inputSchema"}]} with public names (and optionally '
            '"prompts": [{"name", "arguments"}]); checks conditions against input schemas and prompt arguments, '
            "and reports globs matching no tool, prompt or server.",
        ),
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Exit 1 on warnings too, not only on errors.")] = False,
) -> None:
    """Load and validate every policy file; print OK with counts, or each problem as file:line: message."""
    settings = _settings()
    directory = directory or settings.policy_dir
    console = _console()
    policy = _load(console, directory)
    problems: list[Problem] = lint_policy(policy)
    if catalog is not None:
        tools, prompts = _read_catalog(console, catalog), _read_prompts(console, catalog)
        problems += check_against_catalog(policy, tools, settings.tool_separator, prompts)
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


def _request(console: Console, fields: dict[str, Any], arguments: dict[str, Any]) -> Request:
    """The one request the explain options name (exactly one of --tool, --resource, --prompt ...)."""
    server = fields.pop("server")
    complete = fields.pop("complete")
    given = {k: v for k, v in fields.items() if v is not None}
    if complete is not None:
        given["completion"] = {"server": server, "template": complete} if server else {"prompt": complete}
    if "resource" in given:
        if not server:
            console.print("--resource needs --server (resource grants are per server)", style="red")
            raise typer.Exit(1)
        given["resource"] = {"server": server, "uri": given["resource"]}
    params = arguments if any(k in given for k in ("sampling", "elicitation", "roots")) else {}
    try:
        return Request.model_validate({**given, "arguments": {} if params else arguments, "params": params})
    except ValueError:
        console.print(
            "name exactly one of --tool, --resource (with --server), --prompt, --complete, --sampling, "
            "--elicitation, --roots",
            style="red",
        )
        raise typer.Exit(1) from None


def _parse_args(console: Console, args: str) -> dict[str, Any]:
    try:
        arguments = json.loads(args)
    except ValueError as exc:
        console.print(f"--args is not JSON: {exc}", style="red", markup=False)
        raise typer.Exit(1) from None
    if not isinstance(arguments, dict):
        console.print("--args must be a JSON object", style="red")
        raise typer.Exit(1)
    return arguments


@app.command("explain")
def explain_command(
    identity: Annotated[str, typer.Option("--identity", "-i", help="Identity name making the call.")],
    tool: Annotated[
        str | None, typer.Option("--tool", "-t", help="Public tool name, e.g. time__get_current_time.")
    ] = None,
    args: Annotated[
        str, typer.Option("--args", "-a", help="Arguments (tool, prompt, completion) or params as a JSON object.")
    ] = "{}",
    directory: DirOption = None,
    show_all: Annotated[
        bool, typer.Option("--all", help="Also list rules whose targets do not match the request.")
    ] = False,
    catalog: Annotated[
        Path | None, typer.Option("--catalog", help="tools/list JSON (or GET /admin/tools) to show the tool's risk.")
    ] = None,
    resource: Annotated[
        str | None, typer.Option("--resource", help="A server's own resource URI (with --server).")
    ] = None,
    server: Annotated[
        str | None, typer.Option("--server", help="Server of --resource or of a --complete template.")
    ] = None,
    prompt: Annotated[str | None, typer.Option("--prompt", help="Public prompt name, e.g. fs__code_review.")] = None,
    complete: Annotated[
        str | None,
        typer.Option("--complete", help="Completion ref: a public prompt name, or with --server a URI template."),
    ] = None,
    sampling: Annotated[str | None, typer.Option("--sampling", help="Server asking the client to sample.")] = None,
    elicitation: Annotated[str | None, typer.Option("--elicitation", help="Server eliciting input.")] = None,
    roots: Annotated[str | None, typer.Option("--roots", help="Server asking for the client's roots.")] = None,
) -> None:
    """Print the decision for one request and every rule considered, with why it did or did not apply."""
    settings = _settings()
    directory = directory or settings.policy_dir
    console = _console()
    policy = _load(console, directory)
    arguments = _parse_args(console, args)
    fields = {"tool": tool, "resource": resource, "server": server, "prompt": prompt, "complete": complete}
    fields |= {"sampling": sampling, "elicitation": elicitation, "roots": roots}
    call = case_request(_request(console, fields, arguments), settings.tool_separator, call_id="explain")
    result = explain(policy, call, Identity(identity, policy.roles_of(identity)))
    _print_explanation(console, policy, call, result)
    if call.kind == "tool":
        print_risk(console, call.name, catalog, settings.tool_separator)
    redacted = sorted(policy.redact_fields(call.name, call.kind))
    if redacted:
        console.print(f"redacted: {', '.join(redacted)}", markup=False)
    _print_traces(console, result, show_all)


def _print_explanation(console: Console, policy: Policy, call: ToolCall, result: Explanation) -> None:
    d = result.decision
    colour = {"allow": "green", "deny": "red", "approve": "yellow"}[d.effect]
    console.print(f"decision: [bold {colour}]{d.effect}[/]")
    console.print(f"rule ids: {', '.join(d.rule_ids)}", markup=False)
    console.print(f"reason:   {d.reason}", markup=False)
    if d.approver_roles:
        console.print(f"approvers: {', '.join(d.approver_roles)}", markup=False)
    console.print(f"identity: {result.identity} roles [{', '.join(result.roles)}]", markup=False)
    if call.kind != "tool":
        subject = result.subject or "refused (see policies/README.md, resource URIs)"
        console.print(f"request:  {call.kind} on server {call.server}; matched as {subject}", markup=False)
    if call.kind in ("sampling", "elicitation", "roots"):
        grant = result.grant or "none (only an allow or approve rule opens it)"
    else:
        grant = result.grant or "none (default deny; rules are not consulted)"
    console.print(f"grant:    {grant}", markup=False)


def _print_traces(console: Console, result: Explanation, show_all: bool) -> None:
    table = Table(title="rules considered")
    table.add_column("rule", no_wrap=True)
    for column in ("effect", "applies", "why", "where"):
        table.add_column(column, overflow="fold")
    hidden = 0
    for trace in result.traces:
        if not show_all and not trace.applies and not trace.why.startswith(("identity", "condition")):
            hidden += 1
            continue
        applies = "[bold]yes[/]" if trace.applies else "no"
        where = f"{trace.rule.location.file.name}:{trace.rule.location.line}"
        table.add_row(trace.rule.id, trace.rule.effect, applies, trace.why, where)
    console.print(table)
    if hidden:
        others = "tools" if result.kind == "tool" else f"targets than this {result.kind}"
        console.print(f"{hidden} rule(s) for other {others} not shown (--all shows them)")


app.command("suggest")(suggest_command)
