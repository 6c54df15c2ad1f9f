"""Verifying the audit log: the hash chain, the signed checkpoints and the prune anchor.

Owns: ``verify()``, which reads the whole log in seq order (keyset chunks, constant
memory) and reports every kind of damage it can see, naming the first bad event.

What is detected, and how the event is named:

- **edited** event (``altered``): its fields no longer match its hash; or, if the editor
  recomputed that one hash, the next event still links to the original.
- **deleted** events (``missing``): a gap in ``seq``; deleted from the start without a
  signed prune anchor; deleted from the end up to the newest checkpoint.
- **inserted** event (``inserted``): the event after it links to the event before it.
- **reordered** / renumbered events (``reordered``): an event's hash matches its fields
  under a neighbouring seq (seq is hashed).
- a rewrite that recomputed every later hash (``altered``): caught at the next signed
  checkpoint, which records another hash; named as the range since the last good one.
- checkpoints (``checkpoint``): bad signature, unknown key, a deleted checkpoint (the
  next one names its predecessor); the ``anchor`` likewise.

- with a key configured (``audit_signing_key`` or ``audit_public_key``): **no checkpoint
  at all** (``missing``). The writer signs one when it starts (also on an empty log: the
  genesis checkpoint at seq 0), every ``audit_checkpoint_interval_s`` seconds, every
  ``audit_checkpoint_every`` events and at shutdown, so a log without any was emptied or
  had its checkpoints deleted: this catches an emptied log, "all checkpoints deleted and
  an event edited with the chain recomputed" and "all but a few events deleted".
- against an **anchor** the auditor kept outside the database (``warden audit checkpoint
  --out FILE``, then ``verify --anchor FILE``, or ``--expect-seq N --expect-hash H``):
  the log must still hold event N with hash H (or a signed prune anchor at N) and a
  checkpoint at or after N. So truncation back past the anchor (events or checkpoints
  deleted after it, the newest checkpoint deleted with the events after the previous
  one, an emptied log) and a rewrite of event N are detected; a forged anchor file
  fails its signature check.

Not detectable: without an anchor, deleting the newest checkpoint together with every
event after the previous checkpoint leaves a shorter log that is consistent in itself
(the checkpoints before it still verify); nor can anything tell deleted or rewritten
events after the newest checkpoint (or after the auditor's anchor) from events never
written: that tail is protected by the chain alone until the next checkpoint (at most
``audit_checkpoint_interval_s`` seconds while the gateway runs, and at its shutdown).
Keep anchors often to shorten what can be lost. Without a key, signatures are not
checked, no checkpoint is required, and the report says so.

Must never: write anything, or raise on a damaged database: every failure to read or
parse becomes ``unreadable`` damage in the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from sqlalchemy import Engine, text

from gateway.audit.chain import GENESIS_HASH, HASHED_FIELDS, chain_hash, hash_ts, stored_ts
from gateway.audit.checkpoints import key_id, signature_valid

DamageKind = Literal["altered", "missing", "inserted", "reordered", "checkpoint", "anchor", "unreadable"]

MAX_DAMAGE = 50
"""Damage entries kept in a report; later ones are only counted (one edit can shift every later row)."""

_EVENT_COLUMNS = ", ".join((*HASHED_FIELDS, "prev_hash", "hash"))


@dataclass(frozen=True, slots=True)
class Damage:
    seq: int
    """The event named (0: the log as a whole)."""
    kind: DamageKind
    message: str

    def __str__(self) -> str:
        return f"event {self.seq}: {self.kind}: {self.message}"


@dataclass(slots=True)
class VerifyReport:
    signatures_checked: bool
    events: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    last_hash: str | None = None
    checkpoints: int = 0
    """Checkpoints whose hash matched the chain (signatures checked when ``signatures_checked``)."""
    anchor_seq: int | None = None
    damage: list[Damage] = field(default_factory=list)
    more_damage: int = 0
    """Damage found beyond ``MAX_DAMAGE`` entries."""
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.damage

    @property
    def first_bad(self) -> int | None:
        """The seq of the first bad event, or None when the log verifies."""
        return min((d.seq for d in self.damage), default=None)

    def add(self, seq: int, kind: DamageKind, message: str) -> None:
        if len(self.damage) < MAX_DAMAGE:
            self.damage.append(Damage(seq, kind, message))
        else:
            self.more_damage += 1


@dataclass(frozen=True, slots=True)
class Expected:
    """What an auditor recorded earlier (an anchor): event ``seq`` had ``hash``; optionally the
    signed checkpoint it came from (``kind``, ``prev_seq``, ``ts`` ISO, ``key_id``, ``signature``)."""

    seq: int
    hash: str
    signed: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class _Checkpoint:
    kind: str
    seq: int
    hash: str
    prev_seq: int


@dataclass(frozen=True, slots=True)
class _Seen:
    seq: int
    hash: str
    damaged: bool


def verify(
    engine: Engine,
    public_key: Ed25519PublicKey | None,
    upto: int | None = None,
    chunk: int = 5000,
    expect: Expected | None = None,
) -> VerifyReport:
    """Check the events (up to seq ``upto``), the checkpoints, the prune anchor and, when given,
    the auditor's anchor ``expect``. Never raises."""
    report = VerifyReport(signatures_checked=public_key is not None)
    checkpoints = _checkpoints(engine, public_key, upto, report)
    anchors = [c for c in checkpoints if c.kind == "anchor"]
    anchor = anchors[-1] if anchors else None
    if anchor is not None:
        report.anchor_seq = anchor.seq
        checkpoints = [c for c in checkpoints if c.seq >= anchor.seq]
    _check_checkpoint_links(checkpoints, report)
    _walk(engine, anchor, checkpoints, upto, chunk, report)
    if public_key is None and checkpoints:
        report.notes.append(
            f"no audit key configured: {len(checkpoints)} checkpoint signature(s) were not checked "
            "(set audit_public_key or audit_signing_key)"
        )
    signed = [c for c in checkpoints if c.kind == "checkpoint"]
    unreadable = any(d.kind == "unreadable" for d in report.damage)  # reported already; no guessing
    if not checkpoints and public_key is not None and not unreadable:  # a signed prune anchor alone is fine
        report.add(
            0,
            "missing",
            "no signed checkpoint although an audit key is configured: the gateway signs one at start, "
            "periodically and at shutdown, so they were deleted (or the log was emptied)",
        )
    elif not signed and anchor is None:
        report.notes.append(
            "no checkpoints: only edits that did not recompute hashes are detectable (set audit_signing_key)"
        )
    elif signed and report.last_seq is not None and report.last_seq > signed[-1].seq:
        report.notes.append(
            f"events {signed[-1].seq + 1}..{report.last_seq} are after the newest checkpoint: protected by the "
            "chain only (normal while the gateway runs; it signs them periodically and at shutdown)"
        )
    if expect is not None:
        _check_expected(engine, public_key, expect, anchor, signed, report)
    return report


def _check_expected(
    engine: Engine,
    public_key: Ed25519PublicKey | None,
    expect: Expected,
    anchor: _Checkpoint | None,
    signed: list[_Checkpoint],
    report: VerifyReport,
) -> None:
    """The log still reaches the auditor's anchor, with the hash recorded there."""
    seq = expect.seq
    if expect.signed is not None and public_key is not None and not _anchor_signature_ok(public_key, expect):
        report.add(seq, "checkpoint", f"the anchor for seq {seq} has an invalid signature (forged or edited)")
        return
    if anchor is not None and seq <= anchor.seq:
        if seq == anchor.seq and anchor.hash != expect.hash:
            report.add(seq, "anchor", f"the prune anchor at seq {seq} records another hash than the kept anchor")
        return
    try:
        with engine.connect() as conn:
            stored = conn.execute(text("SELECT hash FROM audit_events WHERE seq = :s"), {"s": seq}).scalar()
    except Exception as exc:  # boundary: a damaged database is reported, never raised
        report.add(seq, "unreadable", f"cannot read event {seq}: {_short(exc)}")
        return
    end = report.last_seq if report.last_seq is not None else 0
    if stored is None and not (seq == 0 and expect.hash == GENESIS_HASH):
        report.add(
            seq, "missing", f"event {seq} of the kept anchor is gone (the log ends at seq {end}): the log was truncated"
        )
    elif stored is not None and stored != expect.hash:
        report.add(seq, "altered", f"event {seq} does not have the hash the kept anchor records (rewritten)")
    if public_key is not None and not any(c.seq >= seq for c in signed):
        newest = signed[-1].seq if signed else None
        report.add(
            seq, "checkpoint", f"no checkpoint at or after the kept anchor's seq {seq} (newest: {newest}): deleted"
        )


def _anchor_signature_ok(public_key: Ed25519PublicKey, expect: Expected) -> bool:
    fields = expect.signed or {}
    try:
        when = stored_ts(fields["ts"])
        return signature_valid(
            public_key,
            str(fields["kind"]),
            expect.seq,
            expect.hash,
            int(fields["prev_seq"]),
            when,
            str(fields["key_id"]),
            str(fields["signature"]),
        )
    except (KeyError, TypeError, ValueError):
        return False


def _checkpoints(
    engine: Engine, public_key: Ed25519PublicKey | None, upto: int | None, report: VerifyReport
) -> list[_Checkpoint]:
    """Every checkpoint and anchor (seq order), signatures checked; unreadable rows become damage."""
    sql = "SELECT kind, seq, hash, prev_seq, ts, key_id, signature FROM audit_checkpoints ORDER BY seq, id"
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(sql)).all()
    except Exception as exc:  # boundary: a damaged database is reported, never raised
        report.add(0, "unreadable", f"cannot read audit_checkpoints: {_short(exc)}")
        return []
    expected_key = key_id(public_key) if public_key is not None else None
    found = []
    for kind, seq, hash_, prev_seq, ts, key, signature in rows:
        name: DamageKind = "anchor" if kind == "anchor" else "checkpoint"
        try:
            seq, prev_seq, when = int(seq), int(prev_seq), stored_ts(ts)
        except (TypeError, ValueError) as exc:
            report.add(_int_or_zero(seq), name, f"unreadable {name} row: {_short(exc)}")
            continue
        if upto is not None and seq > upto:
            continue
        if public_key is not None:
            if key != expected_key:
                report.add(seq, name, f"{name} signed by unknown key {key!r} (configured key: {expected_key})")
                continue
            if not signature_valid(public_key, kind, seq, hash_, prev_seq, when, key, signature):
                report.add(seq, name, f"{name} at seq {seq} has an invalid signature (forged or edited)")
                continue
        found.append(_Checkpoint(kind, seq, str(hash_), prev_seq))
    return found


def _check_checkpoint_links(checkpoints: list[_Checkpoint], report: VerifyReport) -> None:
    """Each checkpoint names its predecessor: a deleted checkpoint leaves a dangling ``prev_seq``."""
    previous: _Checkpoint | None = None
    for checkpoint in checkpoints:
        if checkpoint.kind == "anchor":
            previous = checkpoint
            continue
        if previous is None:
            linked = checkpoint.prev_seq == 0
        elif previous.kind == "anchor":  # checkpoints before the anchor were pruned with their events
            linked = checkpoint.prev_seq <= previous.seq
        else:
            linked = checkpoint.prev_seq == previous.seq
        if not linked:
            report.add(
                checkpoint.prev_seq,
                "checkpoint",
                f"the checkpoint at seq {checkpoint.prev_seq} is missing (deleted): "
                f"the checkpoint at seq {checkpoint.seq} follows it",
            )
        previous = checkpoint


def _walk(
    engine: Engine,
    anchor: _Checkpoint | None,
    checkpoints: list[_Checkpoint],
    upto: int | None,
    chunk: int,
    report: VerifyReport,
) -> None:
    start_hash = anchor.hash if anchor is not None else GENESIS_HASH
    start_seq = anchor.seq + 1 if anchor is not None else 1
    signed = {c.seq: c for c in checkpoints if c.kind == "checkpoint"}
    last_good_checkpoint = anchor.seq if anchor is not None else 0
    before_last: _Seen | None = None
    last: _Seen | None = None
    after = 0
    while True:
        try:
            rows = _chunk(engine, after, upto, chunk)
        except Exception as exc:  # boundary: a damaged database is reported, never raised
            report.add(after + 1, "unreadable", f"cannot read audit_events after seq {after}: {_short(exc)}")
            return
        for row in rows:
            seq = int(row["seq"])
            after = seq
            report.events += 1
            report.first_seq = seq if report.first_seq is None else report.first_seq
            report.last_seq, report.last_hash = seq, str(row["hash"])
            if anchor is not None and seq <= anchor.seq:
                report.add(seq, "inserted", f"event {seq} is at or before the prune anchor (seq {anchor.seq})")
                continue
            damaged = _check_event(row, last, before_last, start_seq, start_hash, anchor is not None, report)
            checkpoint = signed.get(seq)
            if checkpoint is not None:
                if checkpoint.hash == row["hash"]:
                    report.checkpoints += 1
                    last_good_checkpoint = seq
                elif not any(last_good_checkpoint < d.seq <= seq for d in report.damage):
                    # Nothing in this stretch looked wrong by itself: its hashes were recomputed.
                    first = last_good_checkpoint + 1
                    report.add(
                        first,
                        "altered",
                        f"events {first}..{seq} were rewritten with recomputed hashes: the checkpoint "
                        f"signed at seq {seq} records a different hash",
                    )
            before_last, last = last, _Seen(seq, str(row["hash"]), damaged)
        if len(rows) < chunk:
            break
    end = last.seq if last is not None else start_seq - 1
    beyond = [c.seq for c in checkpoints if c.kind == "checkpoint" and c.seq > end]
    if beyond:
        report.add(
            end + 1, "missing", f"events {end + 1}..{max(beyond)} are missing: a checkpoint was signed at {max(beyond)}"
        )


def _check_event(
    row: dict[str, Any],
    last: _Seen | None,
    before_last: _Seen | None,
    start_seq: int,
    start_hash: str,
    anchored: bool,
    report: VerifyReport,
) -> bool:
    """Check one event against its own hash and its neighbours; True when this event is damaged."""
    seq = int(row["seq"])
    try:
        content_ok = row["hash"] == chain_hash(row["prev_hash"], row)
    except Exception as exc:  # boundary: an unparsable row is damage, not a crash
        report.add(seq, "unreadable", f"cannot hash event {seq}: {_short(exc)}")
        return True
    expected_seq = last.seq + 1 if last is not None else start_seq
    linked = row["prev_hash"] == (last.hash if last is not None else start_hash)
    if seq > expected_seq:
        if last is not None:
            where = "deleted"
        elif anchored:
            where = "deleted after the prune anchor"
        else:
            where = "deleted from the start, and no signed prune anchor records a prune"
        report.add(expected_seq, "missing", f"events {expected_seq}..{seq - 1} are missing ({where})")
    elif not linked and last is None and content_ok:
        report.add(seq, "altered", f"event {seq} does not link to the start of the chain")
    elif not linked and last is not None and not last.damaged:
        if before_last is not None and row["prev_hash"] == before_last.hash:
            report.add(
                last.seq,
                "inserted",
                f"event {last.seq} was inserted: event {seq} links to event {before_last.seq}",
            )
        elif content_ok:
            report.add(
                last.seq,
                "altered",
                f"event {last.seq} was rewritten with a recomputed hash: event {seq} links to its original",
            )
    if content_ok:
        return False
    written_as = _written_as(row)
    if written_as is not None:
        report.add(seq, "reordered", f"event at seq {seq} was written as seq {written_as} (reordered or renumbered)")
    else:
        report.add(seq, "altered", f"event {seq} does not match its hash (edited)")
    return True


def _written_as(row: dict[str, Any]) -> int | None:
    """The nearby seq under which this row's fields do match its hash, if any."""
    seq = int(row["seq"])
    for other in (seq - 1, seq + 1, seq - 2, seq + 2):
        if other > 0 and row["hash"] == chain_hash(row["prev_hash"], {**row, "seq": other}):
            return other
    return None


def _chunk(engine: Engine, after: int, upto: int | None, size: int) -> list[dict[str, Any]]:
    """The next ``size`` events after seq ``after``, raw (no type processing), ``ts`` as hashed."""
    bound = "" if upto is None else " AND seq <= :upto"
    sql = text(f"SELECT {_EVENT_COLUMNS} FROM audit_events WHERE seq > :after{bound} ORDER BY seq LIMIT :size")
    with engine.connect() as conn:
        rows = conn.execute(sql, {"after": after, "upto": upto, "size": size}).mappings().all()
    events = []
    for raw in rows:
        row = dict(raw)
        try:
            row["ts"] = hash_ts(stored_ts(row["ts"]))
        except (TypeError, ValueError):
            row["ts"] = repr(row["ts"])  # cannot match the hash: reported as an edit of this event
        events.append(row)
    return events


def _int_or_zero(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


def _short(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"[:300]
