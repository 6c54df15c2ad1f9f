"""Running proposed calls against the real MCP server, where that is safe.

A call runs only when the operator named the server (`server=command args`, stdio) and the server's
own live `tools/list` marks the tool read-only (`readOnlyHint: true`, not `destructiveHint`); every
other call is reported as not executed, never run. One session per server for the whole run,
opened on first use (a blocking portal lets the synchronous pipeline use the async MCP client).
Results are cached on disk with the command, tool and arguments as key, so a rerun with the same
seed reads the same result (a clock server's answer changes; the training data must not).
Never forwards anything but the proposed arguments; never runs a tool that is not read-only.
"""

from __future__ import annotations

import contextlib
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from anyio.from_thread import BlockingPortal, start_blocking_portal

from finetune.data.teach.cache import DiskCache


@dataclass(frozen=True, slots=True)
class Outcome:
    executed: bool
    is_error: bool
    text: str
    """The result's text, or why the call was not executed."""


class Executor:
    def __init__(self, commands: dict[str, str], cache: DiskCache, portal: BlockingPortal, stack: contextlib.ExitStack):
        self.commands = commands
        self.cache = cache
        self._portal = portal
        self._stack = stack
        self._sessions: dict[str, tuple[Any, dict[str, Any]]] = {}
        self.runs = 0
        """Calls actually sent to a server (cache misses)."""

    def _session(self, server: str) -> tuple[Any, dict[str, Any]]:
        if server not in self._sessions:
            from mcp.client.client import Client
            from mcp.client.stdio import StdioServerParameters

            argv = shlex.split(self.commands[server])
            params = StdioServerParameters(command=argv[0], args=argv[1:])
            client = self._stack.enter_context(
                self._portal.wrap_async_context_manager(Client(params, mode="auto", cache=None))
            )
            listing = self._portal.call(client.list_tools)
            self._sessions[server] = (client, {t.name: t for t in listing.tools})
        return self._sessions[server]

    def run(self, server: str, tool: str, arguments: dict[str, Any]) -> Outcome:
        if server not in self.commands:
            return Outcome(False, False, f"server {server!r} is not set up for execution")
        question = {"command": self.commands[server], "tool": tool, "arguments": arguments}
        cached = self.cache.get(question)
        if cached is not None:
            return Outcome(**cached)
        client, tools = self._session(server)
        meta = tools.get(tool)
        hints = meta.annotations if meta is not None else None
        if hints is None or not hints.read_only_hint or hints.destructive_hint:
            return Outcome(False, False, f"{tool} is not read-only on {server}; not executed")
        result = self._portal.call(client.call_tool, tool, arguments)
        self.runs += 1
        text = "\n".join(getattr(c, "text", "") for c in result.content)
        outcome = Outcome(True, bool(result.is_error), text)
        self.cache.put(question, {"executed": True, "is_error": outcome.is_error, "text": text})
        return outcome


@contextlib.contextmanager
def executor(commands: dict[str, str], cache: DiskCache) -> Iterator[Executor]:
    """An Executor whose server sessions close when the block ends."""
    with start_blocking_portal() as portal, contextlib.ExitStack() as stack:
        yield Executor(commands, cache, portal, stack)
