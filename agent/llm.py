"""The model: an OpenAI-compatible chat completions client over httpx.

Owns: one `/chat/completions` request per model turn (tools offered, tool choice `auto`),
and turning the answer into a typed `Reply`. The server is a value (a base URL such as
vLLM's `http://127.0.0.1:8800/v1`), so tests and the demo point it at a real server.

Never: retries silently, or executes anything the model asks for (loop.py decides what
happens with a tool call; tools.py performs it through the gateway).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

Message = dict[str, Any]
"""An OpenAI chat message: {"role": ..., "content": ..., "tool_calls"?: [...], "tool_call_id"?: ...}."""
Tool = dict[str, Any]
"""An OpenAI tool: {"type": "function", "function": {"name", "description", "parameters"}}."""


class LLMError(RuntimeError):
    """The model server could not answer; the message says what to check."""


@dataclass(frozen=True, slots=True)
class ToolCallRequest:
    id: str
    name: str
    arguments: str
    """JSON text as the server returns it; it may be invalid (loop.py reports that to the model)."""


@dataclass(frozen=True, slots=True)
class Reply:
    content: str | None
    tool_calls: tuple[ToolCallRequest, ...]
    finish_reason: str
    usage: dict[str, Any] = field(default_factory=dict)

    def message(self) -> Message:
        """The assistant message to append to the conversation."""
        msg: Message = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            msg["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in self.tool_calls
            ]
        return msg


class ChatClient:
    def __init__(
        self,
        http: httpx.AsyncClient,
        base_url: str,
        model: str,
        *,
        temperature: float = 0.0,
        max_tokens: int = 256,
        api_key: str | None = None,
    ) -> None:
        self.http = http
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.base_url = base_url.rstrip("/")
        self.model = model
        self.temperature = temperature
        self.max_tokens = max_tokens

    async def models(self) -> list[str]:
        response = await self._send("GET", "/models")
        return [m["id"] for m in response.get("data", [])]

    async def complete(self, messages: list[Message], tools: list[Tool]) -> Reply:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": messages,
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
        }
        if tools:
            body["tools"] = tools
            body["tool_choice"] = "auto"
        data = await self._send("POST", "/chat/completions", body)
        try:
            choice = data["choices"][0]
            msg = choice["message"]
            calls = tuple(
                ToolCallRequest(c.get("id") or f"call_{i}", c["function"]["name"], c["function"].get("arguments") or "")
                for i, c in enumerate(msg.get("tool_calls") or [])
            )
            return Reply(msg.get("content"), calls, choice.get("finish_reason") or "", data.get("usage") or {})
        except (KeyError, IndexError, TypeError) as exc:
            raise LLMError(f"unexpected answer from {self.base_url}: {str(data)[:300]}") from exc

    async def _send(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        url = f"{self.base_url}{path}"
        try:
            response = await self.http.request(method, url, json=body, headers=self.headers)
        except httpx.TimeoutException as exc:
            raise LLMError(f"the model server at {self.base_url} did not answer in time") from exc
        except httpx.HTTPError as exc:
            raise LLMError(
                f"no model server answering at {self.base_url} ({type(exc).__name__}); start one with `warden serve`"
            ) from exc
        if response.status_code == 404 and "does not exist" in response.text:
            raise LLMError(f"the model server has no model {self.model!r}: {_detail(response)}")
        if response.status_code >= 400:
            raise LLMError(f"the model server answered {response.status_code}: {_detail(response)}")
        result: dict[str, Any] = response.json()
        return result


def _detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    error = body.get("error", body) if isinstance(body, dict) else body
    message = error.get("message") if isinstance(error, dict) else None
    return str(message or error)[:300]
