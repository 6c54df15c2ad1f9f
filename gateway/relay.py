"""The per-call link between the calling MCP client and the upstream that serves its call.

Owns: ``CallRelay``, the one object that says where the progress, log messages and
server→client requests (sampling, elicitation, roots) of ONE tools/call go, and the rules
for what may travel on it. The front (``mcp_front``) builds one per call from the
client's request; the proxy hands it to ``Upstream.call``; upstream callbacks deliver
through it. A call without a progress token, log opt-in or server requests costs nothing
here: no round trip, no database write.

What travels, and on which wire:

- Progress: the client's ``_meta.progressToken`` is not forwarded verbatim; the upstream
  call gets the SDK's own token (its progress callback is per request, so it can never
  reach another call) and each upstream ``notifications/progress`` is re-sent to the
  client under the client's token, on the client's request stream: an SSE response on
  2025 sessions (``gateway.streaming`` picks SSE for calls that can use it; JSON-only
  clients get no progress), the 2026-07-28 response stream otherwise.
- Log messages: relayed at or above the level the client asked for (2025:
  ``logging/setLevel`` of its session; 2026-07-28: the ``io.modelcontextprotocol/logLevel``
  ``_meta`` opt-in, which is forwarded upstream). A client that did not ask gets none.
- Server→client requests: each goes through policy (``ToolCall(kind=...)``) and the audit
  log (``gateway.server_requests``) before it reaches the client; a denied one is
  refused to the upstream with a JSON-RPC error. 2025 clients get it as a request on
  their call's SSE stream; 2026-07-28 clients take it in an input-required result.

Correlation (which call an upstream message belongs to) is decided in
``gateway/upstream/correlation.py``;
its rule is documented there. This module must never deliver anything to a client other
than the one whose call it was built for, and never forwards client credentials.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import mcp_types as types

LOG_LEVELS: tuple[types.LoggingLevel, ...] = (
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
)

ServerRequestKind = Literal["sampling", "elicitation", "roots"]

SERVER_REQUEST_KINDS: dict[str, ServerRequestKind] = {
    "sampling/createMessage": "sampling",
    "elicitation/create": "elicitation",
    "roots/list": "roots",
}
"""MCP method of a server→client request -> the policy request kind it is decided as."""


def level_at_least(level: str, floor: str | None) -> bool:
    """Whether a log message at ``level`` passes a client's ``floor`` (None: the client wants none)."""
    if floor is None or floor not in LOG_LEVELS:
        return False
    return level in LOG_LEVELS and LOG_LEVELS.index(level) >= LOG_LEVELS.index(floor)


class ClientLink(Protocol):
    """The calling client's request, as the front can reach it (implemented in ``mcp_front``)."""

    @property
    def streams(self) -> bool:
        """Notifications sent now reach the client on this request (SSE response)."""

    @property
    def can_request(self) -> bool:
        """Server→client requests can be sent on this request (2025 session with an SSE response)."""

    async def notify(self, notification: types.ServerNotification) -> None: ...

    async def request(self, request: types.InputRequest) -> types.InputResponse | types.ErrorData: ...


SendToClient = Callable[[], Awaitable[types.InputResponse | types.ErrorData]]

ServerRequestGate = Callable[
    [str, types.InputRequest, SendToClient | None], Awaitable[types.InputResponse | types.ErrorData | None]
]
"""Policy + audit of one server→client request of a call's upstream (``gateway.server_requests``):
with a sender, the client's answer or the refusal; without one (input-required), None when admitted."""


@dataclass(eq=False)
class CallRelay:
    """Where the progress, logs and server requests of ONE call go.

    ``gate`` is set by the proxy once the call is decided (it knows the identity and the
    policy); until then, and if it is never set, server requests are refused.
    """

    link: ClientLink
    progress_token: types.ProgressToken | None = None
    log_level: types.LoggingLevel | None = None
    modern: bool = False
    """The client speaks 2026-07-28: server requests travel in an input-required result."""
    input_responses: dict[str, types.InputResponse] = field(default_factory=dict)
    """The client's answers to upstream input requests of an earlier round (keys without the prefix)."""
    returned_state: str | None = None
    """The sealed ``requestState`` the client sent back (``STATE_PREFIX``); the proxy opens it."""
    upstream_state: str | None = None
    """The upstream's ``requestState`` of an earlier round, once the proxy verified its seal."""
    gate: ServerRequestGate | None = None
    relayed: int = 0
    """Server requests of this call admitted and sent to the client."""

    @property
    def wants_progress(self) -> bool:
        return self.progress_token is not None and self.link.streams

    async def progress(self, progress: float, total: float | None, message: str | None) -> None:
        """An upstream progress notification of this call, re-sent under the client's token."""
        if self.progress_token is None or not self.link.streams:
            return
        params = types.ProgressNotificationParams(
            progress_token=self.progress_token, progress=progress, total=total, message=message
        )
        await self.link.notify(types.ProgressNotification(params=params))

    async def log(self, params: types.LoggingMessageNotificationParams) -> None:
        """An upstream log message of this call, if the client asked for that level."""
        if not self.link.streams or not level_at_least(params.level, self.log_level):
            return
        clean = types.LoggingMessageNotificationParams(level=params.level, logger=params.logger, data=params.data)
        await self.link.notify(types.LoggingMessageNotification(params=clean))

    async def server_request(self, server: str, request: types.InputRequest) -> types.InputResponse | types.ErrorData:
        """An upstream's request to the client (2025 wire): policy, audit, then the client answers."""
        if self.gate is None:
            return types.ErrorData(code=types.INVALID_REQUEST, message=_NOT_FORWARDED)
        answer = await self.gate(server, request, self._send(request))
        return answer if answer is not None else types.ErrorData(code=types.INTERNAL_ERROR, message=_NOT_FORWARDED)

    def _send(self, request: types.InputRequest) -> SendToClient:
        async def send() -> types.InputResponse | types.ErrorData:
            if not self.link.can_request:
                return types.ErrorData(code=types.INVALID_REQUEST, message=_NO_BACK_CHANNEL)
            self.relayed += 1
            return await self.link.request(request)

        return send

    async def admit(self, server: str, request: types.InputRequest) -> types.ErrorData | None:
        """Policy + audit only (2026-07-28 clients: the request then rides an input-required result)."""
        if self.gate is None:
            return types.ErrorData(code=types.INVALID_REQUEST, message=_NOT_FORWARDED)
        answer = await self.gate(server, request, None)
        return answer if isinstance(answer, types.ErrorData) else None


_NOT_FORWARDED = "server requests are refused for this call"
_NO_BACK_CHANNEL = (
    "the calling client cannot answer server requests on this call "
    "(it did not accept an SSE response, or its protocol carries them only in input-required results)"
)


def params_json(request: types.InputRequest) -> dict[str, Any]:
    """A server request's params as plain JSON (what policy and the audit log see)."""
    params = request.params
    if params is None:
        return {}
    dumped: dict[str, Any] = params.model_dump(by_alias=True, mode="json", exclude_none=True)
    dumped.pop("_meta", None)
    return dumped


# ---- 2026-07-28 clients: upstream input requests in the gateway's input-required result ----

UPSTREAM_INPUT_PREFIX = "upstream:"
"""Prefix of an upstream's input-request keys in the gateway's input-required result (approvals use ``approval``)."""

STATE_PREFIX = "warden-relay."
_STATE_TTL_S = 600.0


def to_client_requests(requests: dict[str, types.InputRequest] | None) -> dict[str, types.InputRequest] | None:
    """An upstream's input requests under the client-facing keys."""
    if not requests:
        return None
    return {f"{UPSTREAM_INPUT_PREFIX}{key}": request for key, request in requests.items()}


def from_client_responses(responses: Mapping[str, Any] | None) -> dict[str, types.InputResponse]:
    """The client's answers meant for the upstream, under the upstream's keys (approval answers stay out)."""
    found: dict[str, types.InputResponse] = {}
    for key, value in (responses or {}).items():
        if key.startswith(UPSTREAM_INPUT_PREFIX) and len(key) > len(UPSTREAM_INPUT_PREFIX):
            found[key[len(UPSTREAM_INPUT_PREFIX) :]] = value
    return found


def seal_state(secret: bytes, identity: str, public_name: str, upstream_state: str | None, *, now: float) -> str:
    """The client-facing requestState of an upstream round: bound to the identity and tool, expiring."""
    payload = json.dumps([identity, public_name, upstream_state, now + _STATE_TTL_S], separators=(",", ":"))
    body = base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")
    return f"{STATE_PREFIX}{body}.{_mac(secret, body)}"


class StaleState(ValueError):
    """A requestState that this gateway did not issue for this identity and tool, or that expired."""


def open_state(secret: bytes, identity: str, public_name: str, state: str, *, now: float) -> str | None:
    """The upstream's requestState inside a sealed one; raises StaleState when it is not valid here."""
    body, _, mac = state.removeprefix(STATE_PREFIX).partition(".")
    if not hmac.compare_digest(mac, _mac(secret, body)):
        raise StaleState("bad seal")
    try:
        owner, tool, upstream_state, expires = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, TypeError) as exc:
        raise StaleState("bad body") from exc
    if owner != identity or tool != public_name or not isinstance(expires, int | float) or expires < now:
        raise StaleState("not this caller's, or expired")
    return upstream_state if isinstance(upstream_state, str) else None


def _mac(secret: bytes, body: str) -> str:
    return hmac.new(secret, body.encode(), hashlib.sha256).hexdigest()
