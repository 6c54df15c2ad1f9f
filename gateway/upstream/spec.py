"""The upstreams file: which MCP servers the gateway connects to, and how.

Owns: ``UpstreamSpec`` (one server: a stdio command or a Streamable HTTP URL, the names of
the gateway environment variables that feed its environment or headers, and whether its
tools are published prefixed) and ``load_upstreams``, which parses and validates the file
and names the file and the problem in every ``UpstreamFileError``.

Never: reads an environment variable's value (the file names them; ``target`` reads them
when it connects) or connects to anything.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")


class UpstreamFileError(ValueError):
    """The upstreams file is missing or invalid; the message names the file and the problem."""


class UpstreamSpec(BaseModel):
    """One upstream MCP server as declared in the upstreams file."""

    model_config = ConfigDict(extra="forbid")

    name: str
    command: str | None = Field(None, description="Executable of a stdio server.")
    args: list[str] = Field(default_factory=list, description="Arguments of the stdio command.")
    env: dict[str, str] = Field(default_factory=dict, description="Literal environment for the stdio process.")
    env_from: dict[str, str] = Field(
        default_factory=dict, description="Environment for the stdio process: variable -> gateway env var to copy."
    )
    cwd: str | None = Field(None, description="Working directory of the stdio process.")
    url: str | None = Field(None, description="Streamable HTTP endpoint of an HTTP server.")
    headers_from_env: dict[str, str] = Field(
        default_factory=dict, description="HTTP headers to send: header name -> gateway env var holding the value."
    )
    prefix: bool = Field(
        True,
        description="Publish tools as <server><separator><tool>; false: under the upstream's own names "
        "(a name another upstream also claims refuses the start; gateway/names.py).",
    )

    @field_validator("name")
    @classmethod
    def _check_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError(f"upstream name {value!r} must match {_NAME.pattern} (lowercase, digits, '-')")
        return value

    @model_validator(mode="after")
    def _one_transport(self) -> UpstreamSpec:
        if (self.command is None) == (self.url is None):
            raise ValueError(f"upstream {self.name!r} needs exactly one of 'command' (stdio) or 'url' (HTTP)")
        if self.url is not None and (self.args or self.env or self.env_from or self.cwd):
            raise ValueError(f"upstream {self.name!r}: args/env/env_from/cwd only apply to stdio upstreams")
        if self.command is not None and self.headers_from_env:
            raise ValueError(f"upstream {self.name!r}: headers_from_env only applies to HTTP upstreams")
        return self

    @property
    def transport(self) -> Literal["stdio", "http"]:
        return "stdio" if self.command is not None else "http"


class _UpstreamsFile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    servers: dict[str, dict[str, Any]]


def load_upstreams(path: Path) -> list[UpstreamSpec]:
    """Parse the upstreams file. Raises UpstreamFileError with the file name and the problem."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UpstreamFileError(f"{path}: cannot read upstreams file: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise UpstreamFileError(f"{path}: invalid YAML: {exc}") from exc
    try:
        parsed = _UpstreamsFile.model_validate(raw or {"servers": {}})
        return [UpstreamSpec.model_validate({"name": name, **(body or {})}) for name, body in parsed.servers.items()]
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'servers'}: {e['msg']}" for e in exc.errors())
        raise UpstreamFileError(f"{path}: {problems}") from exc
