"""The adapter registry: which LoRA adapters exist, on which base, how they scored.

Owns: registering an adapter (its directory checked against its base model, its scores read
from the finetune eval report), listing them, the promotion rule (`promotion_problem`, pure)
and recording a promotion. Rows live in the gateway database (``adapters`` table,
``gateway/models.py``).

The promotion rule: an adapter is promoted only onto the base model it was trained on, and
only when its eval score is at least its base model's score on the same eval. An adapter
registered without scores cannot be promoted.

Eval report: `warden finetune eval`'s ``eval.json``, base and adapter side by side; its schema and
reader are `gateway/adapters/report.py`.

Methods are synchronous and short; async callers run them in a thread.
Must never: load an adapter into a server (the admin API does, after `promotion_problem`).
"""

from __future__ import annotations

import builtins
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from gateway.adapters.report import SIDES, ReportError, read_report
from gateway.models import Adapter, AdapterPublic, utcnow
from serving.errors import ServeError
from serving.models import check_adapter, check_base_dir

DEFAULT_METRIC = "tool_call_accuracy"
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class RegistryError(ValueError):
    """A registration or lookup that cannot be done; the message says why."""


@dataclass(frozen=True, slots=True)
class EvalScores:
    metric: str
    adapter: float
    base: float
    report: dict[str, Any]
    """The summaries the scores came from, per-example rows left out."""


def read_eval(path: Path, metric: str = DEFAULT_METRIC) -> EvalScores:
    """The adapter's and the base model's `metric` from an eval report (`warden finetune eval`'s eval.json).

    `metric` is a held-out metric (`tool_call_accuracy`, `irrelevance_accuracy`) or `bfcl:CATEGORY`.
    """
    try:
        report = read_report(path)
    except ReportError as exc:
        raise RegistryError(str(exc)) from None
    scores = {side: report.score(side, metric) for side in SIDES}
    missing = [side for side, value in scores.items() if value is None]
    if missing:
        where = f"bfcl.{{side}}.{metric[5:]}.accuracy" if metric.startswith("bfcl:") else f"heldout.{{side}}.{metric}"
        raise RegistryError(
            f"eval report {path}: no {metric} for {' and '.join(missing)} (looked at {where}); "
            "evaluate base and adapter side by side (`warden finetune eval`)"
        )
    return EvalScores(metric, float(scores["adapter"] or 0), float(scores["base"] or 0), report.summary())


def promotion_problem(adapter: Adapter | AdapterPublic, served_base: str | None) -> str | None:
    """Why `adapter` may not be promoted onto a server whose base model is `served_base`; None if it may."""
    if served_base is not None and Path(served_base).resolve() != Path(adapter.base_model).resolve():
        return (
            f"adapter {adapter.name!r} was trained for base model {adapter.base_model}, "
            f"but the server runs {served_base}"
        )
    if adapter.score is None or adapter.base_score is None:
        return f"adapter {adapter.name!r} has no eval scores; register it with its eval report (--eval FILE)"
    if adapter.score < adapter.base_score:
        return (
            f"adapter {adapter.name!r} scores {adapter.score:.3f} {adapter.metric}, below its base model's "
            f"{adapter.base_score:.3f}; it is not promoted"
        )
    return None


class AdapterRegistry:
    """Adapters in the ``adapters`` table."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def register(
        self, name: str, base: Path, path: Path, scores: EvalScores | None, replace: bool = False
    ) -> AdapterPublic:
        """Record an adapter after checking its directory fits `base`. A taken name needs `replace`."""
        if not NAME_PATTERN.fullmatch(name):
            raise RegistryError(f"invalid adapter name {name!r}: 1-64 characters of A-Z a-z 0-9 _ . -")
        try:
            base_dir = check_base_dir(base)
            spec = check_adapter(name, path, base_dir)
        except ServeError as exc:
            raise RegistryError(str(exc)) from exc
        row = Adapter(
            name=name,
            base_model=str(base_dir),
            path=str(spec.path),
            metric=scores.metric if scores else DEFAULT_METRIC,
            score=scores.adapter if scores else None,
            base_score=scores.base if scores else None,
            eval_report=json.dumps(scores.report if scores else {}, sort_keys=True),
        )
        with Session(self._engine, expire_on_commit=False) as session:
            old = session.exec(select(Adapter).where(Adapter.name == name)).first()
            if old is not None:
                if not replace:
                    raise RegistryError(f"adapter {name!r} is already registered; pass --replace to overwrite it")
                session.delete(old)
                session.flush()
            session.add(row)
            try:
                session.commit()
            except IntegrityError as exc:
                raise RegistryError(f"adapter {name!r} is already registered") from exc
        return row.public()

    def get(self, name: str) -> Adapter | None:
        with Session(self._engine) as session:
            return session.exec(select(Adapter).where(Adapter.name == name)).first()

    def list(self) -> builtins.list[AdapterPublic]:
        with Session(self._engine) as session:
            return [a.public() for a in session.exec(select(Adapter).order_by(col(Adapter.created_at)))]

    def promoted(self, base: Path) -> builtins.list[AdapterPublic]:
        """Adapters promoted onto `base`: `warden serve` loads them again after a restart."""
        base_dir = str(base.expanduser().resolve())
        return [a for a in self.list() if a.promoted_at is not None and a.base_model == base_dir]

    def mark_promoted(self, name: str, by: str) -> AdapterPublic:
        statement = update(Adapter).where(col(Adapter.name) == name).values(promoted_at=utcnow(), promoted_by=by)
        with self._engine.begin() as conn:
            if conn.execute(statement).rowcount != 1:
                raise RegistryError(f"no adapter named {name!r}")
        row = self.get(name)
        assert row is not None
        return row.public()
