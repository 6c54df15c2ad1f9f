"""The agent loop: a user request, a model, and the gateway's tools, bounded in steps and time.

One run: the task becomes the user message; each step asks the model (llm.py) with the tools
the gateway lists for the agent's identity (tools.py). A reply with tool calls has each call
sent through the gateway with the run's correlation id (the request id: the audit log pairs
the request with the calls it caused); every result, including a denial or a pending
approval, goes back to the model as a `tool` message. A reply without calls is the answer.
A call the model wrote but the server could not parse (invalid JSON) is reported back to the
model as such. The run stops at the answer, at `max_steps` model turns, at `max_seconds`, when
the model server fails, or when the model repeats a call (same tool, same arguments) that then fails
with the same text as before (`repeated`: a policy denial, a call still waiting for approval or a
lasting upstream error cannot change by asking again, and small models loop on them; one retry of a
failed call is allowed, for errors that pass); the transcript (JSONL, one event per line) records
every step.

Never: raises for something the model did; calls a tool outside the gateway.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, Protocol

import anyio

from agent.llm import ChatClient, LLMError, Message, Reply, Tool, ToolCallRequest
from agent.tools import GatewayError, ToolResult

Status = Literal["answered", "step_limit", "time_limit", "llm_error", "gateway_error", "repeated"]
TOOL_CALL_TAG = "<tool_call>"


class Tools(Protocol):
    async def openai_tools(self) -> list[Tool]: ...

    async def call(self, name: str, arguments: dict[str, Any], request_id: str) -> ToolResult: ...


DEFAULT_MAX_STEPS = 6
DEFAULT_MAX_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class Limits:
    max_steps: int = DEFAULT_MAX_STEPS
    """Model turns per run."""
    max_seconds: float = DEFAULT_MAX_SECONDS
    """Wall time per run, model and tool calls included."""


@dataclass(frozen=True, slots=True)
class CallRecord:
    name: str
    arguments: dict[str, Any] | None
    """None when the model's arguments were not a JSON object (the call was not made)."""
    text: str
    is_error: bool


@dataclass
class RunResult:
    request_id: str
    status: Status
    answer: str | None
    steps: int
    seconds: float
    calls: list[CallRecord] = field(default_factory=list)
    error: str | None = None
    transcript: Path | None = None


class Transcript:
    """Append-only JSONL: one line per event, each with the request id and a UTC timestamp."""

    def __init__(self, path: Path | None, request_id: str) -> None:
        self.path = path
        self.request_id = request_id
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)

    def write(self, event: str, **fields: Any) -> None:
        if self.path is None:
            return
        line = {"ts": datetime.now(UTC).isoformat(), "request_id": self.request_id, "event": event, **fields}
        with self.path.open("a") as f:
            f.write(json.dumps(line, ensure_ascii=False, default=str) + "\n")


Observer = Callable[[str, dict[str, Any]], None]
"""Called with (event, fields) for each transcript event: the CLI prints progress with it."""


class Failures:
    """The failed calls of one run, by tool name and canonical arguments, with their error text."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}

    def repeated(self, name: str, arguments: dict[str, Any] | None, result: ToolResult) -> str | None:
        """Why the run should stop, when this call failed before with the same text; else None (and noted)."""
        if not result.is_error or arguments is None:
            return None
        key = f"{name} {json.dumps(arguments, sort_keys=True, ensure_ascii=False)}"
        if self.texts.get(key) == result.text:
            return f"the model called {key} again and it failed the same way: {result.text}"
        self.texts[key] = result.text
        return None


def new_request_id() -> str:
    return f"req_{uuid.uuid4().hex}"


async def run(
    task: str,
    llm: ChatClient,
    tools: Tools,
    *,
    limits: Limits = Limits(),
    transcript_path: Path | None = None,
    system_prompt: str | None = None,
    observer: Observer | None = None,
    request_id: str | None = None,
) -> RunResult:
    request_id = request_id or new_request_id()
    transcript = Transcript(transcript_path, request_id)
    started = time.monotonic()

    def emit(event: str, **fields: Any) -> None:
        transcript.write(event, **fields)
        if observer is not None:
            observer(event, fields)

    def finish(status: Status, steps: int, answer: str | None = None, error: str | None = None) -> RunResult:
        seconds = time.monotonic() - started
        emit("end", status=status, steps=steps, seconds=round(seconds, 3), answer=answer, error=error)
        return RunResult(request_id, status, answer, steps, seconds, calls, error, transcript_path)

    calls: list[CallRecord] = []
    failures = Failures()
    try:
        offered = await tools.openai_tools()
    except GatewayError as exc:
        return finish("gateway_error", 0, error=str(exc))
    messages: list[Message] = [{"role": "system", "content": system_prompt}] if system_prompt else []
    messages.append({"role": "user", "content": task})
    emit(
        "start",
        task=task,
        model=llm.model,
        tools=[t["function"]["name"] for t in offered],
        max_steps=limits.max_steps,
        max_seconds=limits.max_seconds,
    )

    for step in range(1, limits.max_steps + 1):
        remaining = limits.max_seconds - (time.monotonic() - started)
        if remaining <= 0:
            return finish("time_limit", step - 1, error=f"stopped after {limits.max_seconds:.0f} s")
        reply = await _ask(llm, messages, offered, remaining, limits.max_seconds)
        if isinstance(reply, tuple):
            return finish(reply[0], step, error=reply[1])
        messages.append(reply.message())
        emit(
            "model",
            step=step,
            content=reply.content,
            finish_reason=reply.finish_reason,
            usage=reply.usage,
            tool_calls=[{"id": c.id, "name": c.name, "arguments": c.arguments} for c in reply.tool_calls],
        )

        if not reply.tool_calls:
            if reply.content and TOOL_CALL_TAG in reply.content:
                problem = _unparsed_call_problem(reply.content)
                emit("invalid_tool_call", step=step, problem=problem)
                messages.append({"role": "user", "content": problem})
                continue
            return finish("answered", step, answer=(reply.content or "").strip())

        for request in reply.tool_calls:
            remaining = limits.max_seconds - (time.monotonic() - started)
            result, arguments = await _perform(request, tools, request_id, remaining)
            calls.append(CallRecord(request.name, arguments, result.text, result.is_error))
            emit(
                "tool",
                step=step,
                id=request.id,
                name=request.name,
                arguments=arguments,
                is_error=result.is_error,
                text=result.text,
            )
            content = f"error: {result.text}" if result.is_error else result.text
            messages.append({"role": "tool", "tool_call_id": request.id, "name": request.name, "content": content})
            if (repeated := failures.repeated(request.name, arguments, result)) is not None:
                return finish("repeated", step, error=repeated)

    return finish("step_limit", limits.max_steps, error=f"no answer within {limits.max_steps} model turns")


async def _ask(
    llm: ChatClient, messages: list[Message], offered: list[Tool], remaining_s: float, max_seconds: float
) -> Reply | tuple[Status, str]:
    """The model's next reply, or (status, error) when the server fails or the run's time runs out."""
    try:
        with anyio.fail_after(remaining_s):
            return await llm.complete(messages, offered)
    except TimeoutError:
        return "time_limit", f"the model did not answer within {max_seconds:.0f} s"
    except LLMError as exc:
        return "llm_error", str(exc)


async def _perform(
    request: ToolCallRequest, tools: Tools, request_id: str, remaining_s: float
) -> tuple[ToolResult, dict[str, Any] | None]:
    try:
        arguments = json.loads(request.arguments) if request.arguments.strip() else {}
    except json.JSONDecodeError as exc:
        return ToolResult(
            f"the arguments of your call to {request.name} are not valid JSON ({exc.msg} at "
            f"position {exc.pos}); call it again with a JSON object",
            True,
        ), None
    if not isinstance(arguments, dict):
        return ToolResult(
            f"the arguments of your call to {request.name} must be a JSON object, not {type(arguments).__name__}", True
        ), None
    if remaining_s <= 0:
        return ToolResult(f"{request.name} was not called: the run's time limit is reached", True), arguments
    with anyio.move_on_after(remaining_s) as scope:
        return await tools.call(request.name, arguments, request_id), arguments
    assert scope.cancelled_caught
    return ToolResult(f"{request.name} did not finish within the run's time limit", True), arguments


def _unparsed_call_problem(content: str) -> str:
    start = content.find(TOOL_CALL_TAG) + len(TOOL_CALL_TAG)
    body = content[start:].split("</tool_call>", 1)[0].strip()
    try:
        json.loads(body)
        detail = 'it is valid JSON but not {"name": ..., "arguments": {...}}'
    except json.JSONDecodeError as exc:
        detail = f"invalid JSON: {exc.msg} at position {exc.pos}"
    return (
        f"Your tool call could not be parsed ({detail}). Write each call as "
        '<tool_call>\n{"name": "TOOL", "arguments": {...}}\n</tool_call> with valid JSON.'
    )
