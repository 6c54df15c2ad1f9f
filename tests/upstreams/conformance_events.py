"""An in-memory event store for the conformance upstream's Streamable HTTP transport.

Owns: numbering every SSE event the server sends and replaying a stream's events after a
client's Last-Event-ID, which makes SSE streams resumable (SEP-1699; the suite's
`server-sse-polling` scenario closes a stream mid-call and expects the result after the
client reconnects). Never: persistence or eviction; it lives as long as the test process.
"""

from __future__ import annotations

from mcp.server.streamable_http import EventCallback, EventId, EventMessage, EventStore, StreamId
from mcp_types import JSONRPCMessage


class MemoryEventStore(EventStore):
    def __init__(self) -> None:
        self._events: list[tuple[StreamId, JSONRPCMessage | None]] = []

    async def store_event(self, stream_id: StreamId, message: JSONRPCMessage | None) -> EventId:
        self._events.append((stream_id, message))
        return str(len(self._events))

    async def replay_events_after(self, last_event_id: EventId, send_callback: EventCallback) -> StreamId | None:
        if not last_event_id.isdigit() or not 0 < int(last_event_id) <= len(self._events):
            return None
        after = int(last_event_id)
        stream_id = self._events[after - 1][0]
        for number, (stream, message) in enumerate(self._events[after:], start=after + 1):
            if stream == stream_id and message is not None:  # None marks a priming event: nothing to replay
                await send_callback(EventMessage(message, str(number)))
        return stream_id
