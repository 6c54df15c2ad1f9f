"""The ``adapters`` table: LoRA adapters registered for serving, with their eval scores.

Owns: the shape of a registry row and the schema that may leave the process
(``AdapterPublic``). Migration ``0004_adapters`` creates exactly this table;
``tests/gateway/test_models.py`` compares them (``migrations/env.py`` imports this module
so the table is on ``SQLModel.metadata``).

Must never: open connections or hold business rules (``finetune/registry.py`` registers,
lists and decides whether an adapter may be promoted).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, String, Text
from sqlmodel import Field, SQLModel

from gateway.models import UTCDateTime, utcnow


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
