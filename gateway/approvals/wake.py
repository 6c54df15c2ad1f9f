"""Waking held calls when their approval is decided, in this process and across processes.

Owns `Wakeups`: one `anyio.Event` per approval some call in this process is holding for.
``wake(id)`` sets it (and arms a fresh one for whoever keeps waiting); ``wake_all`` sets every
one (after a reconnect, when notifications may have been missed, waiters re-read their rows).

On PostgreSQL, `listen_forever` keeps one connection in ``LISTEN warden_approvals``: every
decision is followed by ``pg_notify('warden_approvals', <approval id>)`` in the SAME
transaction as its ``UPDATE`` (``ApprovalStore.decide``), so a decision made by any replica,
worker or the CLI wakes the held call here as soon as it commits, with no polling. While the
listener is not connected (``listening`` is False, e.g. at start or after the database went
away), holders fall back to re-reading their row every ``approval_poll_s``. SQLite has no
notifications: decisions made in this process wake at once; the CLI's are seen by that poll.

Must never: read or write approval rows (the desk and the store do) or decide anything; the
payload of a notification is only ever an approval id used to look up a local event.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import anyio

logger = logging.getLogger(__name__)

CHANNEL = "warden_approvals"
"""The PostgreSQL notification channel decisions are announced on (payload: the approval id)."""


@dataclass(eq=False)
class _Waiter:
    event: anyio.Event = field(default_factory=anyio.Event)
    count: int = 0


class Wakeups:
    def __init__(self) -> None:
        self._waiters: dict[str, _Waiter] = {}
        self.listening = False
        """True while a database listener delivers every decision (no polling needed)."""
        self._changed = anyio.Event()

    def enter(self, approval_id: str) -> None:
        """A call starts holding for ``approval_id``."""
        self._waiters.setdefault(approval_id, _Waiter()).count += 1

    def leave(self, approval_id: str) -> None:
        """A call stops holding for ``approval_id``; the last one out drops its event."""
        waiter = self._waiters.get(approval_id)
        if waiter is None:
            return
        waiter.count -= 1
        if waiter.count <= 0:
            del self._waiters[approval_id]

    def event(self, approval_id: str) -> anyio.Event:
        """The event the next ``wake(approval_id)`` sets; take it BEFORE reading the row (no lost wake-up)."""
        return self._waiters.setdefault(approval_id, _Waiter()).event

    def wake(self, approval_id: str) -> None:
        """Wake every call holding for ``approval_id`` (an unknown id, e.g. another replica's, is ignored)."""
        waiter = self._waiters.get(approval_id)
        if waiter is not None:
            waiter.event.set()
            waiter.event = anyio.Event()

    def wake_all(self) -> None:
        for approval_id in list(self._waiters):
            self.wake(approval_id)

    async def until_listening(self) -> None:
        """Return once the database listener is connected (wrap in a timeout)."""
        while not self.listening:
            await self._changed.wait()

    def _set_listening(self, value: bool) -> None:
        self.listening = value
        self._changed.set()
        self._changed = anyio.Event()

    @property
    def held(self) -> int:
        """How many approvals calls in this process are holding for."""
        return len(self._waiters)

    async def listen_forever(self, dsn: str, retry_s: float) -> None:
        """Keep ``LISTEN warden_approvals`` on PostgreSQL ``dsn`` and wake on each notification, until cancelled."""
        import psycopg

        failing = False
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
                    await conn.execute(f"LISTEN {CHANNEL}")
                    self._set_listening(True)
                    if failing:
                        logger.info("approval listener connected again")
                    failing = False
                    self.wake_all()  # decisions made while nobody listened: waiters re-read their rows
                    async for note in conn.notifies():
                        self.wake(note.payload)
            except (psycopg.Error, OSError):  # boundary: holders poll until the listener is back
                if not failing:
                    logger.exception("approval listener lost its database connection; retrying every %ss", retry_s)
                failing = True
            finally:
                self._set_listening(False)
            self.wake_all()  # holders switch to polling now, not at their next timeout
            await anyio.sleep(retry_s)
