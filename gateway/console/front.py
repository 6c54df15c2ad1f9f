"""The console's front door, an ASGI middleware: browsers opening an approval link reach the console.

``{public_base_url}/approvals/{id}`` is the link elicitations, webhooks and the CLI give people.
A browser (``GET`` whose ``Accept`` prefers ``text/html``, with no ``Authorization`` header) is
redirected to ``/console/approvals/{id}``, which signs the person in and comes back to it. API
clients (a bearer key, or JSON) reach the JSON route at the same URL, unchanged.

Must never: authenticate anyone or change state; it only redirects.
"""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Receive, Scope, Send

_APPROVAL_LINK = re.compile(r"/approvals/(apr_[A-Za-z0-9_-]{1,64})")


def _wants_html(headers: dict[bytes, bytes]) -> bool:
    accept = headers.get(b"accept", b"").decode("latin-1").lower()
    return "text/html" in accept and b"authorization" not in headers


class ConsoleFront:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            match = _APPROVAL_LINK.fullmatch(scope["path"])
            if match is not None and _wants_html(dict(scope["headers"])):
                location = f"/console/approvals/{match.group(1)}".encode()
                headers = [(b"location", location), (b"cache-control", b"no-store"), (b"content-length", b"0")]
                await send({"type": "http.response.start", "status": 303, "headers": headers})
                await send({"type": "http.response.body", "body": b""})
                return
        await self.app(scope, receive, send)
