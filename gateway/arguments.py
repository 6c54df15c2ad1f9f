"""Checking a call's arguments against its tool's ``inputSchema``.

Owns: the compiled JSON Schema validators, one per catalog entry (public name and
definition hash). Compiling a validator costs far more than using one, so each is built
once; when the catalog changes (``UpstreamPool.catalog_version``), validators of
definitions no longer listed are dropped, so the cache never holds more than the live
catalog however often upstreams are re-listed.

Must never: decide policy or talk to upstreams. A tool whose schema is itself invalid is
not validated (logged once per definition); the upstream stays the judge of its input.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from jsonschema import validators
from jsonschema.exceptions import SchemaError
from jsonschema.protocols import Validator

from gateway.upstream.catalog import CatalogEntry
from gateway.upstream.pool import UpstreamPool

logger = logging.getLogger(__name__)

_Key = tuple[str, str]
"""(public name, definition hash): one catalog entry."""


class ArgumentValidators:
    """Validators of the pool's live catalog entries."""

    def __init__(self, pool: UpstreamPool) -> None:
        self.pool = pool
        self._validators: dict[_Key, Validator | None] = {}
        self._version: tuple[int, ...] = pool.catalog_version

    def __len__(self) -> int:
        return len(self._validators)

    def problem(self, entry: CatalogEntry, arguments: Mapping[str, Any]) -> str | None:
        """Why ``arguments`` do not fit the entry's inputSchema (up to three errors), or None."""
        validator = self._validator(entry)
        if validator is None:
            return None
        errors = sorted(validator.iter_errors(dict(arguments)), key=lambda e: list(e.path))
        if not errors:
            return None
        parts = [f"{'/'.join(map(str, e.path)) or '(arguments)'}: {e.message}" for e in errors[:3]]
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        return "; ".join(parts) + more

    def _validator(self, entry: CatalogEntry) -> Validator | None:
        self._drop_stale()
        key = (entry.public_name, entry.definition_hash)
        if key in self._validators:
            return self._validators[key]
        validator = self._validators[key] = _compile(entry)
        return validator

    def _drop_stale(self) -> None:
        version = self.pool.catalog_version
        if version == self._version:
            return
        self._version = version
        live = {(e.public_name, e.definition_hash) for e in self.pool.catalog()}
        for key in [k for k in self._validators if k not in live]:
            del self._validators[key]


def _compile(entry: CatalogEntry) -> Validator | None:
    schema = entry.tool.input_schema
    if not schema:
        return None
    cls = validators.validator_for(schema)
    try:
        cls.check_schema(schema)
    except SchemaError:
        logger.warning("tool %s has an invalid inputSchema; arguments are not validated", entry.public_name)
        return None
    validator: Validator = cls(schema)
    return validator
