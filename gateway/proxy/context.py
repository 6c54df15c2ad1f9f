"""One call on its way through the pipeline, and the few types at the pipeline's seams.

Owns: ``CallContext``, built once when a call arrives (identity, call, catalog entry,
decision, redaction fields, start time, request ref) and handed from stage to stage;
``Sent``/``Sender``, how a resource read, prompt get or completion is forwarded;
``JsonRpcRefusal``, a call answered with a JSON-RPC error after its ending was audited;
and the call's id and clock (``new_id``, ``elapsed_ms``).

Never: decides, records, holds or forwards anything (the other modules of
``gateway.proxy`` do, each one of those).
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from gateway.relay import CallRelay
from gateway.types import AuditEvent, Caller, ClientFeatures, Decision, Identity, Outcome, ToolCall
from gateway.upstream.catalog import CatalogEntry

Sent = tuple[Any, Outcome, dict[str, Any]]
"""What a non-tool ``send`` gives back: the answer, its outcome, and fields for the outcome event."""
Sender = Callable[[float], Awaitable[Sent]]
"""Forwards a resource read, prompt get or completion upstream, given the call timeout."""


class JsonRpcRefusal(Exception):
    """A call answered with a JSON-RPC error instead of a result, after its ending was audited."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(slots=True)
class CallContext:
    """One tools/call on its way through the pipeline; built once in ``Proxy.call``."""

    call: ToolCall
    entry: CatalogEntry | None
    """The tool's catalog entry; None for resource reads, prompt gets and completions (they have ``send``)."""
    caller: Caller
    identity: Identity
    decision: Decision
    redact_fields: frozenset[str]
    started: float
    client: ClientFeatures
    event: AuditEvent
    """The call's decision event; later events (held, outcome) are derived from it."""
    committed: bool = False
    """The decision event is in the audit log (so the ending is a separate outcome event)."""
    relay: CallRelay | None = None
    """Where this call's progress, logs and server requests go (None: the client takes none)."""
    send: Sender | None = None
    """How a non-tool call is forwarded (``gateway.resources``, ``gateway.prompts``)."""
    definition: Callable[[], str] | None = None
    """The listed definition hash of a non-tool request NOW (a prompt get's; re-checked on release)."""

    def update(self, **changes: Any) -> None:
        self.event = dataclasses.replace(self.event, **changes)


def new_id() -> str:
    return uuid.uuid4().hex


def elapsed_ms(since: float) -> float:
    """Milliseconds since ``since`` (a ``time.perf_counter()`` reading)."""
    return (time.perf_counter() - since) * 1000
