"""CEL glue: compiling and evaluating a rule's `when` condition.

Owns `Condition`. Conditions are compiled once at load time with the
`common-expression-language` package (no home-made expression parsing) and may only
reference the activation variables below. Evaluation never decides anything: it
returns a bool or raises `ConditionError`, and the engine fails closed on the error.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import cel

VARIABLES = frozenset({"args", "identity", "tool", "server", "upstream_tool"})
"""What a tool rule's condition may read: tool arguments, {"name", "roles"}, public tool name, server, upstream tool."""

_SERVER_REQUEST = frozenset({"params", "identity", "server", "method"})
KIND_VARIABLES: dict[str, frozenset[str]] = {
    "tool": VARIABLES,
    "resource": frozenset({"uri", "identity", "server"}),
    "prompt": frozenset({"args", "identity", "prompt", "server", "upstream_prompt"}),
    "sampling": _SERVER_REQUEST,
    "elicitation": _SERVER_REQUEST,
    "roots": _SERVER_REQUEST,
}
"""What a condition may read, by the kind of request its rule targets (policies/README.md).
resource: ``uri`` is the normalised upstream URI; sampling/elicitation/roots: ``params`` are the request's."""
ALL_VARIABLES = frozenset().union(*KIND_VARIABLES.values())


class ConditionError(Exception):
    """A condition could not be evaluated (missing field, type error, non-bool result)."""


class MissingField(ConditionError):
    """The condition read a map key the activation does not have (e.g. an absent argument)."""


@dataclass(frozen=True, slots=True, eq=False)
class Condition:
    source: str
    program: Any  # cel.Program; untyped in the package stubs we rely on
    variables: tuple[str, ...]
    """The activation variables the program reads; only these are converted for CEL (each costs µs)."""

    @classmethod
    def compile(cls, source: str, allowed: frozenset[str] = VARIABLES) -> Condition:
        """Compile `source`; raises ValueError with a readable message on syntax or unknown variables."""
        if not source.strip():
            raise ValueError("condition is empty")
        try:
            program = _program(source)
        except ValueError as exc:
            message = str(exc)
            message = message.split("': ", 1)[1] if message.startswith("Failed to parse") else message
            raise ValueError(f"CEL syntax error: {message}") from None
        unknown = sorted(set(program.variables()) - allowed)
        if unknown:
            names = ", ".join(sorted(allowed))
            raise ValueError(f"condition uses unknown variable(s) {', '.join(unknown)}; allowed: {names}")
        return cls(source, program, tuple(sorted(program.variables())))

    def evaluate(self, activation: Mapping[str, Any]) -> bool:
        try:
            value = self.program.execute({name: activation[name] for name in self.variables})
        except KeyError as exc:
            raise MissingField(f"no field {exc.args[0]!r}") from None
        except Exception as exc:  # the CEL runtime raises TypeError, RuntimeError, ZeroDivisionError ...
            raise ConditionError(_first_lines(str(exc), 1) or type(exc).__name__) from None
        if not isinstance(value, bool):
            raise ConditionError(f"condition returned {type(value).__name__}, not bool")
        return value


def activation(
    arguments: Mapping[str, Any], *, identity_name: str, roles: list[str], tool: str, server: str, upstream_tool: str
) -> dict[str, Any]:
    """The variables a condition sees for one call."""
    return {
        "args": dict(arguments),
        "identity": {"name": identity_name, "roles": roles},
        "tool": tool,
        "server": server,
        "upstream_tool": upstream_tool,
    }


def kind_activation(
    kind: str,
    arguments: Mapping[str, Any],
    *,
    identity_name: str,
    roles: list[str],
    server: str,
    name: str,
    target: str,
) -> dict[str, Any]:
    """The variables a condition sees for a request that is not a tool call.

    `name` is the public name (prompt) and `target` the matched upstream thing: the normalised
    URI (resource), the upstream prompt name (prompt) or the method (server requests).
    """
    identity = {"name": identity_name, "roles": roles}
    if kind == "resource":
        return {"uri": target, "identity": identity, "server": server}
    if kind == "prompt":
        prompt = {"prompt": name, "upstream_prompt": target}
        return {"args": dict(arguments), "identity": identity, "server": server, **prompt}
    return {"params": dict(arguments), "identity": identity, "server": server, "method": target}


@lru_cache(maxsize=4096)
def _program(source: str) -> Any:
    """`cel.compile`, once per source text (validation and compilation both ask; programs are immutable)."""
    return cel.compile(source)


def _first_lines(text: str, n: int = 3) -> str:
    return " | ".join(line for line in text.strip().splitlines()[:n])
