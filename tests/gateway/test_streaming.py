"""gateway/streaming.py: which requests are answered as SSE. The per-request choice end to end
(JSON-only clients, plain calls, calls that stream) is in tests/gateway/test_relay.py."""

from __future__ import annotations

import pytest

from gateway.streaming import accepts_sse


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (b"application/json, text/event-stream", True),
        (b"text/event-stream;q=0.5, application/json", True),
        (b"TEXT/EVENT-STREAM", True),
        (b"application/json", False),
        (b"application/json, text/event-streamx", False),  # a lookalike is not SSE
        (None, False),
    ],
)
def test_accepts_sse_reads_the_accept_header(accept: bytes | None, expected: bool) -> None:
    headers = [(b"accept", accept)] if accept is not None else []
    assert accepts_sse({"type": "http", "headers": headers}) is expected
