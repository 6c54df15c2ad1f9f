"""SQLModel tables of the gateway database and their public schemas.

Owns: the shape of every stored row (``identities``, ``audit_events``, ``audit_checkpoints``,
``approvals``, ``adapters``, ``console_sessions``, ``tool_pins``, ``ratelimit_hits``) and the schemas that may leave the
process (``ApiKeyPublic``, ``ApprovalPublic``, ``AdapterPublic``, ``ToolPinPublic``). The Alembic
migrations under ``migrations/versions`` must create exactly these tables; a test
compares them.

Must never: open connections, write rows or hold business rules (``identities.py``,
``audit/``, ``approvals/`` and ``adapters/`` do). A schema that leaves the process never carries
a key hash.

Timestamps are stored in UTC and always read back timezone-aware (``UTCDateTime``),
also on SQLite, which has no timezone-aware column type.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Literal, get_args

from sqlalchemy import BigInteger, DateTime, Dialect, Float, Index, Integer, String, Text, text
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

ApprovalState = Literal["pending", "approved", "denied", "expired", "consumed"]
"""An approval's life: pending until decided (approved/denied) or expired; an exact approval, once run, is consumed.
The one spelling of these states: the routes, the CLI and the audit filter take them from here."""
APPROVAL_STATES: tuple[ApprovalState, ...] = get_args(ApprovalState)


class UTCDateTime(TypeDecorator[datetime]):
    """A datetime column that stores UTC and reads back aware UTC datetimes on every backend."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)


# A SQLite INTEGER PRIMARY KEY is the rowid; BIGINT elsewhere so the log never runs out of numbers.
_SEQ_TYPE: Any = BigInteger().with_variant(Integer(), "sqlite")


class ApiKeyPublic(SQLModel):
    """An API key as it may be shown: never the hash, never the secret."""

    id: int | None = None
    name: str
    key_prefix: str
    created_at: datetime
    revoked_at: datetime | None = None


class ApiKey(SQLModel, table=True):
    """One API key of an identity. Several keys over time; at most one active (partial unique index)."""

    __tablename__ = "identities"
    __table_args__ = (
        Index(
            "uq_identities_active_name",
            "name",
            unique=True,
            sqlite_where=text("revoked_at IS NULL"),
            postgresql_where=text("revoked_at IS NULL"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_type=String(64), index=True)
    key_prefix: str = Field(sa_type=String(16), unique=True, index=True)
    key_hash: str = Field(sa_type=String(64))
    """sha256 hex of the whole key; the key itself is never stored."""
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    revoked_at: datetime | None = Field(default=None, sa_type=UTCDateTime)

    def public(self) -> ApiKeyPublic:
        return ApiKeyPublic(
            id=self.id,
            name=self.name,
            key_prefix=self.key_prefix,
            created_at=self.created_at,
            revoked_at=self.revoked_at,
        )


class AuditRecord(SQLModel, table=True):
    """One stored audit event: flat, versioned, redacted, chained by sha256 to its predecessor."""

    __tablename__ = "audit_events"
    # (column, seq): a filter on the column reads its matches already in seq order (keyset pages);
    # (identity, ts): who did what in a time range, without walking all of that identity's events.
    __table_args__ = (
        *(
            Index(f"ix_audit_events_{name}_seq", name, "seq")
            for name in ("identity", "server", "tool", "effect", "outcome")
        ),
        Index("ix_audit_events_identity_ts", "identity", "ts"),
    )

    seq: int | None = Field(default=None, primary_key=True, sa_type=_SEQ_TYPE)
    """Numbered by the audit writer (previous + 1), so the primary key keeps the chain linear."""
    call_id: str = Field(sa_type=String(128), index=True)
    phase: str = Field(sa_type=String(16))
    method: str = Field(sa_type=String(64))
    ts: datetime = Field(sa_type=UTCDateTime, index=True)
    identity: str = Field(sa_type=String(64))
    server: str = Field(default="", sa_type=String(128))
    tool: str = Field(default="", sa_type=String(256))
    arguments: str = Field(default="{}", sa_type=Text)
    """Canonical JSON of the REDACTED arguments."""
    args_hash: str = Field(default="", sa_type=String(64))
    effect: str | None = Field(default=None, sa_type=String(16))
    rule_ids: str = Field(default="[]", sa_type=Text)
    """JSON list of the policy rule ids behind the decision."""
    reason: str = Field(default="", sa_type=Text)
    outcome: str | None = Field(default=None, sa_type=String(32))
    error: str = Field(default="", sa_type=Text)
    approval_id: str | None = Field(default=None, sa_type=String(32), index=True)
    latency_policy_ms: float | None = Field(default=None, sa_type=Float)
    latency_upstream_ms: float | None = Field(default=None, sa_type=Float)
    latency_total_ms: float | None = Field(default=None, sa_type=Float)
    request_ref: str | None = Field(default=None, sa_type=String(256))
    version: int = Field(default=1, sa_type=Integer)
    risk: str = Field(default="", sa_type=String(128))
    """Comma-joined risk classes of the called tool (``gateway.risk``); hashed from record version 2."""
    content_bytes: int | None = Field(default=None, sa_type=Integer)
    """Size of the returned contents (resource read, prompt get, completion); hashed from record version 3."""
    content_sha256: str = Field(default="", sa_type=String(64))
    """sha256 of the returned contents; the contents themselves are never stored."""
    prev_hash: str = Field(sa_type=String(64))
    hash: str = Field(sa_type=String(64))
    """sha256(prev_hash + canonical JSON of every other field, seq included); see ``audit.chain_hash``."""


class AuditCheckpoint(SQLModel, table=True):
    """A signed statement "the audit chain at ``seq`` ended in ``hash``" (see ``gateway/audit/checkpoints.py``).

    ``kind`` is ``checkpoint`` (written by the audit writer every N events) or ``anchor``
    (written by a prune: the last deleted event, where the remaining chain starts).
    """

    __tablename__ = "audit_checkpoints"
    __table_args__ = (Index("uq_audit_checkpoints_kind_seq", "kind", "seq", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(sa_type=String(16))
    seq: int = Field(sa_type=_SEQ_TYPE, index=True)
    hash: str = Field(sa_type=String(64))
    prev_seq: int = Field(sa_type=_SEQ_TYPE)
    """``seq`` of the checkpoint before this one (0 for none), so a deleted checkpoint is noticed."""
    ts: datetime = Field(sa_type=UTCDateTime)
    key_id: str = Field(sa_type=String(16))
    signature: str = Field(sa_type=String(128))
    """Base64 Ed25519 signature of ``checkpoints.message(...)``."""


class Approval(SQLModel, table=True):
    """A call held for a human decision."""

    __tablename__ = "approvals"

    id: str = Field(primary_key=True, sa_type=String(32))
    call_id: str = Field(sa_type=String(128), index=True)
    identity: str = Field(sa_type=String(64))
    server: str = Field(sa_type=String(128))
    tool: str = Field(sa_type=String(256))
    tool_name: str = Field(sa_type=String(512))
    """The public (namespaced) tool name the agent called."""
    arguments: str = Field(sa_type=Text)
    """Canonical JSON of the redacted arguments, for display only."""
    args_hash: str = Field(sa_type=String(64))
    """Hash of the real arguments: an approval covers exactly these."""
    rule_ids: str = Field(default="[]", sa_type=Text)
    reason: str = Field(default="", sa_type=Text)
    approver_roles: str = Field(default="[]", sa_type=Text)
    state: ApprovalState = Field(default="pending", sa_type=String(16), index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    decided_by: str | None = Field(default=None, sa_type=String(64))
    decided_reason: str | None = Field(default=None, sa_type=Text)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    scope: str = Field(default="exact", sa_type=String(16), sa_column_kwargs={"server_default": "exact"})
    """exact: one run of this very call; tool: this identity, this tool, any arguments the rule matches."""
    scope_ttl_s: float | None = Field(default=None, sa_type=Float)
    """Seconds a granted approval stays usable after the decision (None: until ``expires_at``)."""
    valid_until: datetime | None = Field(default=None, sa_type=UTCDateTime)
    """Set when approved: the granted approval covers calls until then."""
    consumed_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    """When the one run an exact approval allows was taken (state ``consumed``)."""
    tool_hash: str | None = Field(default=None, sa_type=String(64))
    """``definition_hash`` of the tool (or prompt) as the agent called it: the approval runs that definition only."""
    kind: str = Field(default="tool", sa_type=String(16), sa_column_kwargs={"server_default": "tool"})
    """``ToolCall.kind`` of the held request (tool, resource, prompt ...): an approval covers that kind only."""

    def public(self) -> ApprovalPublic:
        return ApprovalPublic(
            **self.model_dump(exclude={"arguments", "rule_ids", "approver_roles"}),
            arguments=json.loads(self.arguments),
            rule_ids=json.loads(self.rule_ids),
            approver_roles=json.loads(self.approver_roles),
        )


class ApprovalPublic(SQLModel):
    """An approval as approvers see it: arguments already redacted, lists decoded."""

    id: str
    call_id: str
    identity: str
    server: str
    tool: str
    tool_name: str
    kind: str = "tool"
    """What is held: a tool call, a resource read (tool_name = public URI), a prompt get ..."""
    arguments: dict[str, Any]
    args_hash: str
    rule_ids: list[str]
    reason: str
    approver_roles: list[str]
    state: ApprovalState
    scope: str
    scope_ttl_s: float | None = None
    created_at: datetime
    expires_at: datetime
    decided_by: str | None = None
    decided_reason: str | None = None
    decided_at: datetime | None = None
    valid_until: datetime | None = None
    consumed_at: datetime | None = None
    tool_hash: str | None = None


class AdapterPublic(SQLModel):
    """A registered adapter as the CLI and the admin API show it."""

    name: str
    base_model: str
    path: str
    metric: str
    score: float | None = None
    base_score: float | None = None
    created_at: datetime
    promoted_at: datetime | None = None
    promoted_by: str | None = None


class Adapter(SQLModel, table=True):
    """One LoRA adapter: where it is, which base model it was trained on, how it scored."""

    __tablename__ = "adapters"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_type=String(64), unique=True, index=True)
    """The model name clients ask vLLM for (``--model NAME``)."""
    base_model: str = Field(sa_type=String(1024))
    """Absolute path of the base model directory the adapter was trained on."""
    path: str = Field(sa_type=String(1024))
    """Absolute path of the adapter directory (``adapter_config.json`` + weights)."""
    metric: str = Field(default="tool_call_accuracy", sa_type=String(64))
    score: float | None = Field(default=None, sa_type=Float)
    """The adapter's eval score (``metric``), from the finetune eval report."""
    base_score: float | None = Field(default=None, sa_type=Float)
    """The base model's score on the same eval; promotion needs ``score >= base_score``."""
    eval_report: str = Field(default="{}", sa_type=Text)
    """JSON of the eval summary the scores came from (per-example rows left out)."""
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    promoted_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    promoted_by: str | None = Field(default=None, sa_type=String(64))

    def public(self) -> AdapterPublic:
        return AdapterPublic.model_validate(self.model_dump(exclude={"id", "eval_report"}))


class ConsoleSession(SQLModel, table=True):
    """A person's signed-in web console session (``gateway/console/sessions.py``).

    Only ``sha256(token)`` is stored; the token lives in the browser's HttpOnly cookie.
    ``key_id`` is the API key the person signed in with: revoking it ends the session.
    """

    __tablename__ = "console_sessions"

    id: int | None = Field(default=None, primary_key=True)
    token_hash: str = Field(sa_type=String(64), unique=True, index=True)
    identity: str = Field(sa_type=String(64), index=True)
    key_id: int = Field(sa_type=Integer)
    csrf_token: str = Field(sa_type=String(64))
    """The synchronizer token every state-changing form and request must echo."""
    created_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    last_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    expires_at: datetime = Field(sa_type=UTCDateTime)
    """Absolute end of the session, however active it is."""


ToolPinState = Literal["pending", "accepted", "rejected", "superseded"]


class ToolPinPublic(SQLModel):
    """A pinned tool definition as operators review it."""

    id: int
    server: str
    tool: str
    hash: str
    definition: dict[str, Any]
    state: str
    kind: str
    first_seen_at: datetime
    decided_at: datetime | None = None
    decided_by: str | None = None


class ToolPin(SQLModel, table=True):
    """One definition of one upstream tool, as first seen, and whether agents may see it.

    At most one definition per tool is ``accepted`` (a partial unique index enforces it);
    agents see a tool only while its listed definition is the accepted one.
    """

    __tablename__ = "tool_pins"
    __table_args__ = (
        Index("uq_tool_pins_definition", "server", "tool", "hash", unique=True),
        Index(
            "uq_tool_pins_accepted",
            "server",
            "tool",
            unique=True,
            sqlite_where=text("state = 'accepted'"),
            postgresql_where=text("state = 'accepted'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    server: str = Field(sa_type=String(128))
    tool: str = Field(sa_type=String(256))
    hash: str = Field(sa_type=String(64))
    """``definition_hash``: sha256 of name, description, input/output schema and annotations."""
    definition: str = Field(sa_type=Text)
    """Canonical JSON of the definition the hash covers, for review."""
    state: str = Field(default="pending", sa_type=String(16), index=True)
    kind: str = Field(sa_type=String(16))
    """How it was first seen: ``first`` (trusted at the server's first sight), ``new`` tool, ``changed`` definition."""
    first_seen_at: datetime = Field(default_factory=utcnow, sa_type=UTCDateTime)
    decided_at: datetime | None = Field(default=None, sa_type=UTCDateTime)
    decided_by: str | None = Field(default=None, sa_type=String(64))

    def public(self) -> ToolPinPublic:
        assert self.id is not None
        return ToolPinPublic(**self.model_dump(exclude={"definition"}), definition=json.loads(self.definition))


class RateLimitHit(SQLModel, table=True):
    """One call counted against one rate limit, shared by every replica (``gateway/shared/ratelimits.py``).

    ``at`` and ``expires_at`` are seconds since the epoch on the DATABASE's clock (one clock for
    all replicas); a row counts while ``at`` is inside its limit's current window.
    """

    __tablename__ = "ratelimit_hits"
    __table_args__ = (Index("ix_ratelimit_hits_window", "limit_id", "identity", "tool", "at"),)

    id: int | None = Field(default=None, primary_key=True, sa_type=_SEQ_TYPE)
    limit_id: str = Field(sa_type=String(128))
    identity: str = Field(sa_type=String(64))
    tool: str = Field(sa_type=String(256))
    at: float = Field(sa_type=Float)
    expires_at: float = Field(sa_type=Float, index=True)
