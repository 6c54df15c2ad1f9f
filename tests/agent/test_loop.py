"""agent/: the loop on real parts — a real vLLM with a trained adapter, the real gateway, PyPI
`mcp-server-time` upstream. The model's calls go through the gateway with the agent's key; the
audit log pairs them with the run's request id."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from agent.cli import run_task
from agent.llm import ChatClient
from agent.loop import Limits, RunResult, run
from agent.tools import GatewayError, connect
from gateway.db import create_db_engine
from serving.process import VllmServer
from tests.agent.conftest import AGENT
from tests.gateway.harness import Gateway, free_port
from tests.serving.vllm_harness import ADAPTER_NAME

pytestmark = pytest.mark.anyio


async def _run(gw: Gateway, llm: VllmServer | str, task: str, transcript: Path, **kw: Any) -> RunResult:
    """One run against `llm`: the session's vLLM (its URL and API key) or a bare URL."""
    limits = kw.pop("limits", Limits(max_steps=4, max_seconds=240))
    return await run_task(
        task,
        model=kw.pop("model", ADAPTER_NAME),
        llm_url=f"{llm.url}/v1" if isinstance(llm, VllmServer) else llm,
        llm_key=llm.api_key if isinstance(llm, VllmServer) else None,
        mcp_url=gw.mcp_url,
        api_key=gw.keys[AGENT],
        limits=limits,
        transcript=transcript,
        observer=None,
        **kw,
    )


def _audit(gw: Gateway, request_id: str) -> list[dict[str, Any]]:
    engine = create_db_engine(gw.database_url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT identity, server, tool, effect, rule_ids, outcome, arguments FROM audit_events "
                "WHERE request_ref = :r AND outcome IS NOT NULL ORDER BY seq"
            ),
            {"r": request_id},
        )
        result = [dict(r._mapping) for r in rows]
    engine.dispose()
    return result


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.slow
async def test_agent_completes_a_task_through_the_gateway(gateway: Gateway, vllm: VllmServer, tmp_path: Path) -> None:
    transcript = tmp_path / "run.jsonl"
    result = await _run(gateway, vllm, "What time is it in Asia/Tokyo?", transcript)

    assert result.status == "answered", result
    first = result.calls[0]
    assert (first.name, first.arguments, first.is_error) == (
        "time__get_current_time",
        {"timezone": "Asia/Tokyo"},
        False,
    )
    assert '"timezone": "Asia/Tokyo"' in first.text  # the real upstream's answer
    assert result.answer
    # the audit log pairs the user request with the call it caused
    (row,) = _audit(gateway, result.request_id)
    assert (row["identity"], row["server"], row["tool"], row["effect"], row["outcome"]) == (
        AGENT,
        "time",
        "get_current_time",
        "allow",
        "ok",
    )
    events = _events(transcript)
    assert events[0]["event"] == "start" and events[-1]["event"] == "end"
    assert {e["request_id"] for e in events} == {result.request_id}
    assert events[0]["tools"] == ["time__get_current_time", "time__convert_time"]


@pytest.mark.slow
async def test_a_denied_call_reaches_the_model_as_a_tool_message_and_is_audited(
    gateway: Gateway, vllm: VllmServer, tmp_path: Path
) -> None:
    transcript = tmp_path / "run.jsonl"
    result = await _run(gateway, vllm, "What time is it in Antarctica/Troll?", transcript)

    call = result.calls[0]
    assert (call.name, call.arguments, call.is_error) == (
        "time__get_current_time",
        {"timezone": "Antarctica/Troll"},
        True,
    )
    assert call.text == "denied by policy (rule deny-antarctica): no Antarctic time zones"
    events = _events(transcript)
    tool_event = next(e for e in events if e["event"] == "tool")
    model_turns = [e for e in events if e["event"] == "model"]
    # the model was asked again after the denial: it read the tool message
    assert tool_event["is_error"] and len(model_turns) >= 2 and model_turns[1]["step"] == 2
    (row,) = _audit(gateway, result.request_id)
    assert (row["tool"], row["effect"], row["outcome"]) == ("get_current_time", "deny", "denied")
    assert json.loads(row["rule_ids"]) == ["deny-antarctica"]


@pytest.mark.slow
async def test_a_tool_call_with_invalid_json_is_reported_to_the_model(
    gateway: Gateway, vllm: VllmServer, tmp_path: Path
) -> None:
    # 12 tokens cut the model's call short: `<tool_call>\n{"name": "time__get_...` is not JSON, so the
    # server's parser returns it as text. The loop tells the model instead of crashing or calling anything.
    transcript = tmp_path / "run.jsonl"
    result = await _run(
        gateway,
        vllm,
        "What time is it in Asia/Tokyo?",
        transcript,
        max_tokens=12,
        limits=Limits(max_steps=2, max_seconds=120),
    )
    assert result.status == "step_limit" and result.calls == []
    problems = [e for e in _events(transcript) if e["event"] == "invalid_tool_call"]
    assert len(problems) == 2 and "could not be parsed (invalid JSON" in problems[0]["problem"]
    assert _audit(gateway, result.request_id) == []


@pytest.mark.slow
async def test_steps_and_time_are_bounded(gateway: Gateway, vllm: VllmServer, tmp_path: Path) -> None:
    one_step = await _run(
        gateway, vllm, "What time is it in Europe/Paris?", tmp_path / "a.jsonl", limits=Limits(1, 120)
    )
    assert one_step.status == "step_limit" and one_step.steps == 1 and len(one_step.calls) == 1
    no_time = await _run(
        gateway, vllm, "What time is it in Europe/Paris?", tmp_path / "b.jsonl", limits=Limits(4, 0.01)
    )
    assert no_time.status == "time_limit" and no_time.calls == []


async def test_an_unreachable_model_server_is_reported_not_raised(gateway: Gateway, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    result = await _run(gateway, url, "What time is it?", tmp_path / "run.jsonl")
    assert result.status == "llm_error"
    assert result.error is not None and "no model server answering" in result.error and "warden serve" in result.error


async def test_an_unknown_model_name_is_reported(gateway: Gateway, vllm: VllmServer, tmp_path: Path) -> None:
    result = await _run(gateway, vllm, "What time is it?", tmp_path / "run.jsonl", model="no-such-adapter")
    assert result.status == "llm_error"
    assert result.error is not None and "no model 'no-such-adapter'" in result.error


async def test_the_gateway_refuses_a_bad_key(gateway: Gateway) -> None:
    with pytest.raises(GatewayError, match="refused the API key"):
        async with connect(gateway.mcp_url, "wdn_aaaaaaaa_" + "b" * 43) as tools:
            await tools.openai_tools()


async def test_no_gateway_is_a_clear_error() -> None:
    with pytest.raises(GatewayError, match="no gateway answering"):
        async with connect(f"http://127.0.0.1:{free_port()}/mcp", "k") as tools:
            await tools.openai_tools()


async def test_the_agent_is_offered_exactly_its_identitys_tools(gateway: Gateway) -> None:
    async with connect(gateway.mcp_url, gateway.keys["bystander"]) as tools:
        assert await tools.openai_tools() == []
    async with connect(gateway.mcp_url, gateway.keys[AGENT]) as tools:
        offered = await tools.openai_tools()
    assert [t["function"]["name"] for t in offered] == ["time__get_current_time", "time__convert_time"]
    assert offered[0]["function"]["parameters"]["required"] == ["timezone"]


def _looping_model(calls: list[tuple[str, dict[str, Any]]]) -> httpx.MockTransport:
    """An OpenAI-compatible chat endpoint whose model answers every turn with the next of `calls`, the
    last one forever: the loop a small model falls into after a denial (the model's text is the edge)."""
    turns = iter(calls)
    last: list[tuple[str, dict[str, Any]]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        name, args = next(turns, None) or last[-1]
        last.append((name, args))
        call = {
            "id": f"call_{len(last)}",
            "type": "function",
            "function": {"name": name, "arguments": json.dumps(args)},
        }
        message = {"role": "assistant", "content": None, "tool_calls": [call]}
        return httpx.Response(200, json={"choices": [{"message": message, "finish_reason": "tool_calls"}]})

    return httpx.MockTransport(handle)


async def _loop_run(gw: Gateway, calls: list[tuple[str, dict[str, Any]]], transcript: Path) -> RunResult:
    async with httpx.AsyncClient(transport=_looping_model(calls)) as http, connect(gw.mcp_url, gw.keys[AGENT]) as tools:
        llm = ChatClient(http, "http://model.test/v1", "looping")
        return await run("What time is it?", llm, tools, limits=Limits(max_steps=6), transcript_path=transcript)


async def test_a_call_denied_twice_the_same_way_ends_the_run(gateway: Gateway, tmp_path: Path) -> None:
    troll = ("time__get_current_time", {"timezone": "Antarctica/Troll"})
    result = await _loop_run(gateway, [troll], tmp_path / "run.jsonl")

    assert (result.status, result.steps, len(result.calls)) == ("repeated", 2, 2)
    assert result.error is not None and "denied by policy (rule deny-antarctica)" in result.error
    assert 'time__get_current_time {"timezone": "Antarctica/Troll"}' in result.error
    rows = _audit(gateway, result.request_id)
    assert [(r["effect"], r["outcome"]) for r in rows] == [("deny", "denied")] * 2  # never a third time
    assert _events(tmp_path / "run.jsonl")[-1]["status"] == "repeated"


async def test_other_arguments_or_a_success_between_do_not_end_the_run(gateway: Gateway, tmp_path: Path) -> None:
    troll = ("time__get_current_time", {"timezone": "Antarctica/Troll"})
    casey = ("time__get_current_time", {"timezone": "Antarctica/Casey"})
    oslo = ("time__get_current_time", {"timezone": "Europe/Oslo"})
    # a denial, a different denied call, a success repeated: none is the same failure twice
    result = await _loop_run(gateway, [troll, casey, oslo, oslo, oslo, oslo], tmp_path / "run.jsonl")

    assert (result.status, result.steps) == ("step_limit", 6)
    assert [c.is_error for c in result.calls] == [True, True, False, False, False, False]
