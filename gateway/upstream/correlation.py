"""Which in-flight call an upstream's server request or log message belongs to.

Owns: ``CallRouter``, one per upstream. It is the upstream Client's sampling, elicitation,
roots and logging callback, and it knows the calls sent and not yet answered
(``calling``), so it can deliver each upstream message to the ONE call's ``CallRelay``
(``gateway.relay``) it belongs to. Which call that is:

- progress: exact (the SDK gives each outbound request its own progress callback;
  ``gateway.upstream.calls`` hands it the call's relay);
- 2026-07-28 upstreams: exact for server requests (they come back embedded in the
  call's own input-required result and are dispatched in the caller's task, where the
  call's relay is in a context variable);
- 2025 upstreams (stdio or HTTP) and log messages of either era: the wire does not say
  which outbound call a server request or a log message relates to (the SDK client drops
  the POST stream it arrived on), so the rule is: deliver only when exactly ONE call of
  that upstream is in flight; with several in flight a server request is refused with a
  JSON-RPC error and a log message is dropped. Never a guess that could reach another
  identity's session.

Never: decides whether a server request may reach the client (the relay's gate does:
``gateway.server_requests``), or delivers to a call of another upstream.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

import mcp_types as types

from gateway.relay import CallRelay

logger = logging.getLogger(__name__)

_CALL_RELAY: ContextVar[CallRelay | None] = ContextVar("warden_call_relay", default=None)
"""The relay of the call running in this task (2026-07-28 input requests are dispatched here)."""

_NO_OWNER = "the gateway cannot tell which client's call this request belongs to; it is refused"
_WRONG_RESULT = "the client answered with the wrong result"
_call_keys = itertools.count()


class CallRouter:
    """Delivers one upstream's server requests and log messages to the call they belong to."""

    def __init__(self, server: str) -> None:
        self.server = server
        self._in_flight: dict[int, CallRelay | None] = {}
        """Calls sent and not yet answered: their relays (None for a call without one)."""

    @contextlib.contextmanager
    def calling(self, relay: CallRelay | None) -> Iterator[None]:
        """Count one call as in flight (with its relay, also as this task's relay) while it runs."""
        key = next(_call_keys)
        self._in_flight[key] = relay
        token = _CALL_RELAY.set(relay)
        try:
            yield
        finally:
            _CALL_RELAY.reset(token)
            self._in_flight.pop(key, None)

    def _owner(self) -> CallRelay | None:
        """The relay an upstream message belongs to (module docstring: the correlation rule)."""
        relay = _CALL_RELAY.get()
        if relay is not None:
            return relay
        if len(self._in_flight) == 1:
            return next(iter(self._in_flight.values()))
        return None

    async def _server_request(self, request: types.InputRequest) -> types.InputResponse | types.ErrorData:
        relay = self._owner()
        if relay is None:
            logger.info("upstream %s: refused %s (no single calling client)", self.server, request.method)
            return types.ErrorData(code=types.INVALID_REQUEST, message=_NO_OWNER)
        return await relay.server_request(self.server, request)

    async def on_sampling(
        self, context: Any, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult | types.CreateMessageResultWithTools | types.ErrorData:
        answer = await self._server_request(types.CreateMessageRequest(params=params))
        if isinstance(answer, types.CreateMessageResult | types.CreateMessageResultWithTools | types.ErrorData):
            return answer
        return types.ErrorData(code=types.INTERNAL_ERROR, message=_WRONG_RESULT)

    async def on_elicitation(
        self, context: Any, params: types.ElicitRequestParams
    ) -> types.ElicitResult | types.ErrorData:
        answer = await self._server_request(types.ElicitRequest(params=params))
        if isinstance(answer, types.ElicitResult | types.ErrorData):
            return answer
        return types.ErrorData(code=types.INTERNAL_ERROR, message=_WRONG_RESULT)

    async def on_roots(self, context: Any) -> types.ListRootsResult | types.ErrorData:
        answer = await self._server_request(types.ListRootsRequest())
        if isinstance(answer, types.ListRootsResult | types.ErrorData):
            return answer
        return types.ErrorData(code=types.INTERNAL_ERROR, message=_WRONG_RESULT)

    async def on_log(self, params: types.LoggingMessageNotificationParams) -> None:
        relay = self._owner()
        if relay is not None:
            await relay.log(params)
