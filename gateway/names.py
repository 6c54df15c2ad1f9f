"""Public tool names: how (server, upstream tool name) becomes the name an agent sees, and back.

A prefixed upstream (the default) publishes ``<server><separator><tool>``; an upstream mounted
with ``prefix: false`` publishes its tools under their own names, so clients that expect an
upstream's names work unchanged. Grants and rules match public names either way.

Owns: the naming scheme and the collision check over listed names. The live mapping, which
knows each upstream's tools, is ``UpstreamPool.public_name`` / ``UpstreamPool.resolve`` (the one
place the gateway maps names); ``split_offline`` serves tools that only have a name (policy
tests, ``warden policy explain``, a catalog JSON file): it cannot tell an unprefixed tool whose
name contains the separator from a prefixed one, and names the server ``""`` when it has none.

Collisions: a public name claimed by two upstreams (two unprefixed upstreams listing the same
tool, or an unprefixed tool named like another upstream's prefixed public name) refuses the
gateway's start, the message naming both. One appearing later (an upstream adds a tool) is
never routed by guess: the prefixed claim keeps its name (its namespace is its server's), a
name two unprefixed upstreams claim is served by neither, and the withheld tools are logged.

Never: routes a public name to more than one upstream, or lets an unprefixed upstream take a
name inside another upstream's prefix.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Claim:
    """One upstream's claim on a public name."""

    server: str
    tool: str
    prefixed: bool


def public_name(server: str, tool: str, *, prefixed: bool, separator: str) -> str:
    return f"{server}{separator}{tool}" if prefixed else tool


def split_offline(name: str, separator: str) -> tuple[str, str]:
    """(server, upstream tool) of a public name without a catalog: ("", name) when it has no separator."""
    server, sep, tool = name.partition(separator)
    return (server, tool) if sep and tool else ("", name)


def claims(tools: Mapping[str, Iterable[str]], unprefixed: frozenset[str], separator: str) -> dict[str, list[Claim]]:
    """Every public name the listed tools (server -> tool names) claim, with who claims it."""
    found: dict[str, list[Claim]] = {}
    for server, names in tools.items():
        prefixed = server not in unprefixed
        for tool in names:
            name = public_name(server, tool, prefixed=prefixed, separator=separator)
            found.setdefault(name, []).append(Claim(server, tool, prefixed))
    return found


def owner(contenders: list[Claim]) -> Claim | None:
    """Who serves a public name: the only claimant, else the prefixed one; None when ambiguous."""
    if len(contenders) == 1:
        return contenders[0]
    prefixed = [c for c in contenders if c.prefixed]
    return prefixed[0] if len(prefixed) == 1 else None


def collisions(found: Mapping[str, list[Claim]]) -> list[str]:
    """One message per public name claimed more than once, naming every claimant."""
    problems = []
    for name, contenders in sorted(found.items()):
        if len(contenders) > 1:
            who = " and ".join(f"{c.server!r} tool {c.tool!r}" for c in contenders)
            problems.append(f"public tool name {name!r} is claimed by {who}")
    return problems
