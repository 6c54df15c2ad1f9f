"""The per-call relay end to end: a real gateway process, three real upstreams
(tests/upstreams/relay_server.py: Streamable HTTP speaking 2026-07-28, Streamable HTTP
speaking only 2025, stdio speaking only 2025) and real `mcp` SDK clients of both eras per
identity. What an upstream sends during a call (progress, log
messages, sampling / elicitation / roots requests) reaches the calling client and no other;
cancellation reaches the upstream and is audited; policy refuses a server request."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import httpx2
import mcp_types as types
import pytest
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPDeprecationWarning, MCPError

from serving.ports import free_port
from tests.gateway.harness import REPO, Gateway, rows, run_gateway, text_of, wait_until

pytestmark = pytest.mark.anyio

IDENTITIES = ["agent-a", "agent-b", "agent-c"]

POLICY = """
identities:
  agent-a: {roles: [relayer]}
  agent-b: {roles: [relayer]}
  agent-c: {roles: [outsider]}
roles:
  relayer: {grants: ["relay__*", "old__*", "pipe__*"]}
  outsider: {grants: []}
rules:
  - id: deny-sampling-secrets
    effect: deny
    sampling: ["*"]
    when: 'params.messages[0].content.text.contains("secret")'
    reason: no secrets go to the model
"""

ERAS = ["auto", "legacy"]  # the client's era: 2026-07-28, 2025 initialize handshake
SERVERS = ["relay", "old", "pipe"]  # upstreams: HTTP 2026-07-28, HTTP 2025 only, stdio 2025 only
LEGACY_SERVERS = {"old", "pipe"}


@dataclass
class Upstreams:
    urls: dict[str, str]
    events: Path

    def seen(self, line: str) -> bool:
        return self.events.exists() and line in self.events.read_text().splitlines()


def _port_open(port: int) -> bool:
    import socket

    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


@contextlib.contextmanager
def _run_upstream(events: Path, legacy: bool) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = free_port()
    env = {**os.environ, "RELAY_EVENTS": str(events), "RELAY_ERA": "legacy" if legacy else "modern"}
    proc = subprocess.Popen([sys.executable, "-m", "tests.upstreams.relay_server", str(port)], cwd=REPO, env=env)
    try:
        wait_until(lambda: _port_open(port) or proc.poll() is not None, 30, "relay upstream to listen")
        assert proc.poll() is None, "relay upstream exited at start"
        yield f"http://127.0.0.1:{port}/mcp", proc
    finally:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="module")
def upstreams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Upstreams]:
    events = tmp_path_factory.mktemp("relay") / "events.txt"
    with _run_upstream(events, legacy=False) as (modern, _), _run_upstream(events, legacy=True) as (old, _):
        yield Upstreams({"relay": modern, "old": old}, events)


@pytest.fixture(scope="module")
def gw(tmp_path_factory: pytest.TempPathFactory, upstreams: Upstreams) -> Iterator[Gateway]:
    tmp = tmp_path_factory.mktemp("gateway")
    policy_dir = tmp / "policies"
    policy_dir.mkdir()
    (policy_dir / "policy.yaml").write_text(POLICY)
    servers = "servers:\n" + "".join(f"  {name}:\n    url: {url}\n" for name, url in upstreams.urls.items())
    servers += (
        f"  pipe:\n    command: {sys.executable}\n    args: [-m, tests.upstreams.relay_server, stdio]\n"
        f"    cwd: {REPO}\n    env: {{RELAY_ERA: legacy, RELAY_EVENTS: '{upstreams.events}'}}\n"
    )
    with run_gateway(tmp, policy_dir, servers, IDENTITIES, WARDEN_APPROVAL_HOLD_S="0") as gateway:
        yield gateway


@dataclass
class Seen:
    """What one client's callbacks received."""

    identity: str
    requests: list[str] = field(default_factory=list)
    logs: list[tuple[str, str]] = field(default_factory=list)

    async def sampling(self, context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        self.requests.append(f"sampling:{getattr(params.messages[0].content, 'text', '')}")
        content = types.TextContent(type="text", text=f"hello from {self.identity}")
        return types.CreateMessageResult(role="assistant", content=content, model="test-model")

    async def elicitation(self, context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        self.requests.append(f"elicitation:{params.message}")
        return types.ElicitResult(action="accept", content={"answer": f"{self.identity} says yes"})

    async def roots(self, context: Any) -> types.ListRootsResult:
        self.requests.append("roots")
        return types.ListRootsResult(roots=[types.Root(uri=f"file:///home/{self.identity}")])

    async def log(self, params: types.LoggingMessageNotificationParams) -> None:
        self.logs.append((params.level, str(params.data)))


@contextlib.asynccontextmanager
async def client_of(gw: Gateway, seen: Seen, mode: str, **options: Any) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {gw.keys[seen.identity]}"}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        Client(
            streamable_http_client(gw.mcp_url, http_client=http),
            mode=mode,
            cache=None,
            sampling_callback=seen.sampling,
            elicitation_callback=seen.elicitation,
            list_roots_callback=seen.roots,
            logging_callback=seen.log,
            **options,
        ) as client,
    ):
        yield client


def audit(gw: Gateway, where: str, **params: object) -> list[dict[str, Any]]:
    return rows(gw, f"SELECT * FROM audit_events WHERE {where} ORDER BY seq", **params)


async def until(predicate: Any, what: str) -> Any:
    """Wait (in a thread, so this loop keeps serving) until `predicate` holds, at most 20 s."""
    return await anyio.to_thread.run_sync(lambda: wait_until(predicate, 20, what))


# ---- progress and log messages ----------------------------------------------------------------


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("mode", ERAS)
async def test_progress_reaches_the_calling_client(gw: Gateway, mode: str, server: str) -> None:
    got: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        got.append((progress, total, message))

    async with client_of(gw, Seen("agent-a"), mode) as client:
        result = await client.call_tool(f"{server}__progress", {"steps": 3}, progress_callback=on_progress)
    assert text_of(result) == "done"
    assert got == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]


@pytest.mark.parametrize("server", SERVERS)
async def test_a_call_without_a_progress_token_gets_no_progress(gw: Gateway, server: str) -> None:
    async with client_of(gw, Seen("agent-a"), "legacy") as client:
        result = await client.call_tool(f"{server}__progress", {"steps": 2})
    assert text_of(result) == "done"


@pytest.mark.parametrize("server", SERVERS)
async def test_log_messages_reach_a_2025_client_at_its_level(gw: Gateway, server: str) -> None:
    seen = Seen("agent-a")
    async with client_of(gw, seen, "legacy") as client:
        with warnings.catch_warnings():  # logging/setLevel is deprecated at 2026-07-28, still 2025's way
            warnings.simplefilter("ignore", MCPDeprecationWarning)
            await client.set_logging_level("info")  # answered by the gateway (was -32601)
        result = await client.call_tool(f"{server}__chatty", {"text": "hi"})
    assert text_of(result) == "hi"
    assert seen.logs == [("info", "info: hi"), ("warning", "warning: hi")]


@pytest.mark.parametrize("server", SERVERS)
async def test_log_messages_reach_a_2026_client_that_opted_in(gw: Gateway, server: str) -> None:
    seen, quiet = Seen("agent-a"), Seen("agent-b")
    async with client_of(gw, seen, "auto", log_level="warning") as client:
        await client.call_tool(f"{server}__chatty", {"text": "hi"})
    async with client_of(gw, quiet, "auto") as client:  # no opt-in: none
        await client.call_tool(f"{server}__chatty", {"text": "hi"})
    assert seen.logs == [("warning", "warning: hi")]
    assert quiet.logs == []


# ---- server requests --------------------------------------------------------------------------


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("mode", ERAS)
async def test_sampling_elicitation_and_roots_reach_the_calling_client(gw: Gateway, mode: str, server: str) -> None:
    if mode == "auto" and server in LEGACY_SERVERS:
        pytest.skip("a 2025 upstream's live request cannot reach a 2026-07-28 client: see the next test")
    seen = Seen("agent-a")
    async with client_of(gw, seen, mode) as client:
        sampled = await client.call_tool(f"{server}__ask_model", {"prompt": "write a haiku"})
        asked = await client.call_tool(f"{server}__ask_user", {"question": "proceed?"})
        roots = await client.call_tool(f"{server}__client_roots", {})
    assert text_of(sampled) == "model said: hello from agent-a", text_of(sampled)
    assert text_of(asked) == "user accept: agent-a says yes"
    assert text_of(roots) == "roots: file:///home/agent-a"
    assert seen.requests == ["sampling:write a haiku", "elicitation:proceed?", "roots"]
    audited = audit(gw, "identity = 'agent-a' AND server = :s AND method = 'sampling/createMessage'", s=server)
    # 2025 clients: decision, then the client's answer (ok); 2026-07-28: admitted into an input-required result
    expected = (
        [("decision", "allow", "input_required")]
        if mode == "auto"
        else [("decision", "allow", None), ("outcome", "allow", "ok")]
    )
    assert [(r["phase"], r["effect"], r["outcome"]) for r in audited[-len(expected) :]] == expected


@pytest.mark.parametrize("server", sorted(LEGACY_SERVERS))
async def test_a_2025_upstream_request_for_a_2026_client_is_refused_cleanly(gw: Gateway, server: str) -> None:
    seen = Seen("agent-a")
    async with client_of(gw, seen, "auto") as client:
        result = await client.call_tool(f"{server}__ask_model", {"prompt": "hi"})
    assert result.is_error and "cannot answer server requests" in text_of(result), text_of(result)
    assert seen.requests == []


@pytest.mark.parametrize("mode", ERAS)
async def test_concurrent_callers_of_another_identity_never_get_each_others_requests(gw: Gateway, mode: str) -> None:
    """Two identities sample at the same time through the 2026-07-28 upstream: each gets only its own."""
    a, b = Seen("agent-a"), Seen("agent-b")
    results: dict[str, str] = {}

    async def ask(seen: Seen, prompt: str) -> None:
        async with client_of(gw, seen, mode) as client:
            for round_ in range(3):
                results[f"{seen.identity}{round_}"] = text_of(
                    await client.call_tool("relay__ask_model", {"prompt": f"{prompt} {round_}"})
                )

    async with anyio.create_task_group() as tg:
        tg.start_soon(ask, a, "from a")
        tg.start_soon(ask, b, "from b")
    assert a.requests == [f"sampling:from a {i}" for i in range(3)]
    assert b.requests == [f"sampling:from b {i}" for i in range(3)]
    assert {k: v for k, v in results.items() if k.startswith("agent-a")} == {
        f"agent-a{i}": "model said: hello from agent-a" for i in range(3)
    }


async def test_a_2025_stdio_upstream_request_with_two_calls_in_flight_is_refused_not_guessed(
    gw: Gateway, upstreams: Upstreams
) -> None:
    """stdio at 2025 does not say which call a server request belongs to: with another identity's
    call in flight on the same upstream, the request is refused rather than sent to either client."""
    a, b = Seen("agent-a"), Seen("agent-b")
    async with (
        client_of(gw, b, "legacy") as bystander,
        client_of(gw, a, "legacy") as client,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(bystander.call_tool, "pipe__wait_for_cancel", {"tag": "pipe-bystander"})
        await until(lambda: upstreams.seen("started pipe-bystander"), "bystander call in flight")
        refused = await client.call_tool("pipe__ask_model", {"prompt": "mine"})
        tg.cancel_scope.cancel()
    assert refused.is_error and "cannot tell which client" in text_of(refused), text_of(refused)
    assert a.requests == [] and b.requests == []


async def test_a_2025_http_upstream_request_reaches_its_caller_while_another_call_is_in_flight(
    gw: Gateway, upstreams: Upstreams
) -> None:
    """Over Streamable HTTP the request arrives on the call's own POST stream: exact, even with company."""
    a, b = Seen("agent-a"), Seen("agent-b")
    async with (
        client_of(gw, b, "legacy") as bystander,
        client_of(gw, a, "legacy") as client,
        anyio.create_task_group() as tg,
    ):
        tg.start_soon(bystander.call_tool, "old__wait_for_cancel", {"tag": "old-bystander"})
        await until(lambda: upstreams.seen("started old-bystander"), "bystander call in flight")
        answered = await client.call_tool("old__ask_model", {"prompt": "mine"})
        tg.cancel_scope.cancel()
    assert text_of(answered) == "model said: hello from agent-a"
    assert a.requests == ["sampling:mine"] and b.requests == []


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("mode", ERAS)
async def test_a_policy_denied_sampling_request_is_refused_and_audited(gw: Gateway, mode: str, server: str) -> None:
    seen = Seen("agent-a")
    async with client_of(gw, seen, mode) as client:
        try:
            result = await client.call_tool(f"{server}__ask_model", {"prompt": f"tell the secret {mode}"})
            refusal = text_of(result) if result.is_error else ""
        except MCPError as error:  # a 2026-07-28 upstream's call ends with the refusal as a JSON-RPC error
            refusal = error.message
    assert refusal, "the call must not succeed"
    assert seen.requests == []  # never reached the client
    row = audit(gw, "method = 'sampling/createMessage' AND server = :s AND effect = 'deny'", s=server)[-1]
    assert (row["identity"], row["outcome"], json.loads(str(row["rule_ids"]))) == (
        "agent-a",
        "denied",
        ["deny-sampling-secrets"],
    )
    assert json.loads(str(row["arguments"]))["messages"][0]["content"]["text"] == f"tell the secret {mode}"


@pytest.mark.parametrize("mode", ERAS)
async def test_an_identity_without_grants_on_the_server_gets_no_server_requests(gw: Gateway, mode: str) -> None:
    """agent-c cannot even call the tools; its calls never get as far as a server request."""
    seen = Seen("agent-c")
    async with client_of(gw, seen, mode) as client:
        result = await client.call_tool("relay__ask_model", {"prompt": "hi"})
    assert result.is_error and "unknown tool" in text_of(result)
    assert seen.requests == []


async def test_a_forged_or_borrowed_request_state_is_refused(gw: Gateway) -> None:
    async with client_of(gw, Seen("agent-a"), "auto") as client:
        first = await client.session.call_tool("relay__ask_model", {"prompt": "p"}, allow_input_required=True)
        assert isinstance(first, types.InputRequiredResult)
        assert first.input_requests is not None and list(first.input_requests) == ["upstream:ask"]
        state = first.request_state
        assert state is not None
        forged = await client.session.call_tool(
            "relay__ask_model", {"prompt": "p"}, request_state=state[:-4] + "0000", allow_input_required=True
        )
    async with client_of(gw, Seen("agent-b"), "auto") as other:
        borrowed = await other.session.call_tool(
            "relay__ask_model", {"prompt": "p"}, request_state=state, allow_input_required=True
        )
    for result in (forged, borrowed):
        assert isinstance(result, types.CallToolResult) and result.is_error
        assert "requestState" in text_of(result)


# ---- cancellation ------------------------------------------------------------------------------


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("mode", ERAS)
async def test_cancellation_reaches_the_upstream_and_is_audited(
    gw: Gateway, upstreams: Upstreams, mode: str, server: str
) -> None:
    tag = f"{mode}-{server}"
    async with client_of(gw, Seen("agent-a"), mode) as client:
        async with anyio.create_task_group() as tg:
            tg.start_soon(client.call_tool, f"{server}__wait_for_cancel", {"tag": tag})
            await until(lambda: upstreams.seen(f"started {tag}"), "the call to reach the upstream")
            tg.cancel_scope.cancel()
        await until(lambda: upstreams.seen(f"cancelled {tag}"), "the upstream to see the cancellation")

    def outcome() -> Any:
        found = audit(gw, "tool = 'wait_for_cancel' AND phase = 'outcome' AND args_hash = :h", h=_args_hash(tag))
        return found and found[-1]

    row = await until(outcome, "the cancelled outcome event")
    assert (row["outcome"], row["identity"]) == ("cancelled", "agent-a")
    assert not upstreams.seen(f"finished {tag}")


def _args_hash(tag: str) -> str:
    from gateway.types import args_hash

    return args_hash({"tag": tag})


# ---- tasks -------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ERAS)
async def test_a_task_only_tool_is_refused_with_a_jsonrpc_error(gw: Gateway, mode: str) -> None:
    """2025 upstreams can declare execution.taskSupport: required (2026-07-28 has no tasks)."""
    async with client_of(gw, Seen("agent-a"), mode) as client:
        with pytest.raises(MCPError) as refused:
            await client.call_tool("old__needs_task", {})
    assert "task-augmented execution" in refused.value.message
    row = audit(gw, "tool = 'needs_task' AND identity = 'agent-a'")[-1]  # decided and audited like any call
    assert (row["phase"], row["effect"], row["outcome"]) == ("outcome", "allow", "denied")


# ---- the sealed requestState (unit) --------------------------------------------------------------


def test_a_sealed_state_opens_only_for_its_identity_and_tool_before_it_expires() -> None:
    from gateway.relay import StaleState, open_state, seal_state

    secret = b"k" * 32
    state = seal_state(secret, "agent-a", "relay__ask_model", "upstream-state", now=1000.0)
    assert open_state(secret, "agent-a", "relay__ask_model", state, now=1001.0) == "upstream-state"
    for identity, tool, key, now in [
        ("agent-b", "relay__ask_model", secret, 1001.0),  # another identity
        ("agent-a", "relay__ask_user", secret, 1001.0),  # another tool
        ("agent-a", "relay__ask_model", b"x" * 32, 1001.0),  # another gateway (or a restart)
        ("agent-a", "relay__ask_model", secret, 1000.0 + 601),  # expired
    ]:
        with pytest.raises(StaleState):
            open_state(key, identity, tool, state, now=now)
    with pytest.raises(StaleState):
        open_state(secret, "agent-a", "relay__ask_model", "warden-relay.not-base64!.00", now=1001.0)


# ---- JSON or SSE, per request (gateway/streaming.py) ---------------------------------------------


def _raw_2025_session(gw: Gateway, accept: str, capabilities: dict[str, Any]) -> tuple[httpx.Client, dict[str, str]]:
    http = httpx.Client(timeout=30)
    base = {"Authorization": f"Bearer {gw.keys['agent-a']}", "Accept": accept, "Content-Type": "application/json"}
    params = {
        "protocolVersion": "2025-11-25",
        "capabilities": capabilities,
        "clientInfo": {"name": "raw", "version": "1"},
    }
    opened = http.post(
        gw.mcp_url, headers=base, json={"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": params}
    )
    assert opened.status_code == 200, opened.text
    headers = {**base, "Mcp-Session-Id": opened.headers["mcp-session-id"], "MCP-Protocol-Version": "2025-11-25"}
    http.post(gw.mcp_url, headers=headers, json={"jsonrpc": "2.0", "method": "notifications/initialized"})
    return http, headers


def _call(gw: Gateway, http: httpx.Client, headers: dict[str, str], meta: dict[str, Any] | None) -> httpx.Response:
    params: dict[str, Any] = {"name": "relay__progress", "arguments": {"steps": 2}}
    if meta:
        params["_meta"] = meta
    body = {"jsonrpc": "2.0", "id": 7, "method": "tools/call", "params": params}
    return http.post(gw.mcp_url, headers=headers, json=body)


@pytest.mark.parametrize(
    ("accept", "capabilities", "meta", "sse"),
    [
        ("application/json", {}, {"progressToken": "p1"}, False),  # a JSON-only client keeps JSON, call still works
        ("application/json, text/event-stream", {}, None, False),  # a plain call: one JSON response
        ("application/json, text/event-stream", {}, {"progressToken": "p1"}, True),  # progress streams
        ("application/json, text/event-stream", {"sampling": {}}, None, True),  # it may be asked to sample
    ],
)
def test_a_2025_call_is_answered_as_sse_only_when_it_can_use_it(
    gw: Gateway, accept: str, capabilities: dict[str, Any], meta: dict[str, Any] | None, sse: bool
) -> None:
    http, headers = _raw_2025_session(gw, accept, capabilities)
    try:
        answer = _call(gw, http, headers, meta)
    finally:
        http.close()
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/event-stream" if sse else "application/json")
    frames = (
        [json.loads(line[5:]) for line in answer.text.splitlines() if line.startswith("data:")]
        if sse
        else [answer.json()]
    )
    assert frames[-1]["result"]["content"][0]["text"] == "done"
    progress = [f["params"]["progress"] for f in frames if f.get("method") == "notifications/progress"]
    assert progress == ([1, 2] if sse and meta else [])


# ---- through a stdio bridge (mcp-proxy 0.13, PyPI) -----------------------------------------------


@pytest.fixture
def bridge() -> Path:
    path = Path(os.environ.get("WARDEN_TEST_BRIDGE", REPO / ".venv-bridge/bin/mcp-proxy"))
    assert path.exists(), f"{path} missing: `make setup` installs mcp-proxy into .venv-bridge"
    return path


async def test_progress_reaches_a_stdio_client_through_mcp_proxy(gw: Gateway, bridge: Path) -> None:
    """The README's bridge forwards the client's progress token; the gateway's progress comes back.

    (Cancellation cannot cross this bridge: mcp-proxy 0.13 on mcp 1.30 neither forwards
    `notifications/cancelled` nor closes its POST, so the gateway never learns of it.)"""
    from mcp.client.stdio import StdioServerParameters

    params = StdioServerParameters(
        command=str(bridge),
        args=["--transport", "streamablehttp", gw.mcp_url],
        env={"API_ACCESS_TOKEN": gw.keys["agent-a"]},
    )
    got: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        got.append(progress)

    async with Client(params, mode="legacy", cache=None) as client:
        result = await client.call_tool("relay__progress", {"steps": 3}, progress_callback=on_progress)
    assert text_of(result) == "done"
    assert got == [1, 2, 3]
