"""What audit failures say, and to whom.

Owns: ``AuditError`` (the one exception the audit log raises to callers: the writer when an
event could not be committed, a prune it refused) and ``detail()``, the redacted first line of
a database exception that goes to the operator log instead.

Must never: put database exception text into an ``AuditError`` (it names other rows: other
identities' calls), or log SQL parameters.
"""

from __future__ import annotations

from gateway.redact import redact_text


class AuditError(Exception):
    """An audit record could not be committed (or a prune refused). The gateway must deny the call.

    Its text is safe to show to anyone: it never carries database exception text (which
    names other rows: other identities' calls). The details go to the operator log.
    """


def detail(exc: BaseException) -> str:
    """An exception for the operator log: its type and first line, redacted, without SQL parameters."""
    first = str(exc).split("[SQL:", 1)[0].strip().splitlines()
    return redact_text(f"{type(exc).__name__}: {first[0] if first else ''}")[:500]
