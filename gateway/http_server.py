"""How uvicorn serves the gateway: its event loop, its HTTP parser, its access log.

Owns: turning ``server_loop``, ``server_http`` and ``access_log`` into uvicorn's options.
``auto`` takes uvloop and httptools when they are importable (both are dependencies; a
build without them falls back to asyncio and h11, which behave the same, only slower); a
choice named explicitly and not installed refuses the start instead of quietly serving on
something else. On the 2-core bench machine uvloop + httptools cut the gateway's CPU per
call by 5-17% over two runs (bench/gateway_overhead.py): h11 parses every request in pure Python.

Must never: import uvicorn (the CLI does), or change what is served, only how fast.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib.util import find_spec
from typing import Any

from gateway.config import Settings

_FALLBACK = {"uvloop": "asyncio", "httptools": "h11"}


class ServerOptionError(ValueError):
    """A loop or parser named in the settings is not installed."""


def _installed(module: str) -> bool:
    return find_spec(module) is not None


def _pick(choice: str, fast: str, installed: Callable[[str], bool]) -> str:
    if choice == "auto":
        return fast if installed(fast) else _FALLBACK[fast]
    if choice == fast and not installed(fast):
        raise ServerOptionError(f"{fast} is not installed (set it to auto or {_FALLBACK[fast]})")
    return choice


@dataclass(frozen=True)
class ServerOptions:
    loop: str
    http: str
    access_log: bool

    def uvicorn_kwargs(self) -> dict[str, Any]:
        return {"loop": self.loop, "http": self.http, "access_log": self.access_log}


def server_options(settings: Settings, installed: Callable[[str], bool] = _installed) -> ServerOptions:
    """The loop, parser and access log for ``settings``. Raises ``ServerOptionError``."""
    return ServerOptions(
        _pick(settings.server_loop, "uvloop", installed),
        _pick(settings.server_http, "httptools", installed),
        settings.access_log,
    )
