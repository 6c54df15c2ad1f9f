"""A wall-time budget for a whole command, and measured rates that say whether the next piece fits.

Owns: `Budget` (seconds left of a command's cap, from when the command started) and `Rate` (seconds
per token, measured on the pieces already run). The training recipe asks `budget.fits(rate.estimate(n))`
before each step and each eval-loss batch, so it never starts work the measurements say cannot finish.

Never: sleeps, interrupts running work, or guesses a rate it has not measured (`estimate` is None
until something was measured; the caller decides what an unmeasured first piece may do).
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]


@dataclass
class Budget:
    """`seconds` of wall time from `started` (0 or less: no limit)."""

    seconds: float
    started: float = field(default_factory=time.monotonic)
    clock: Clock = time.monotonic

    @classmethod
    def minutes(cls, minutes: float, started: float | None = None, clock: Clock = time.monotonic) -> Budget:
        return cls(minutes * 60, clock() if started is None else started, clock)

    @property
    def limited(self) -> bool:
        return self.seconds > 0

    def elapsed(self) -> float:
        return self.clock() - self.started

    def left(self) -> float:
        return self.seconds - self.elapsed() if self.limited else math.inf

    def fits(self, estimate_s: float | None, reserve_s: float = 0.0) -> bool:
        """Whether work estimated at `estimate_s` (None: not measured yet) ends before the cap, keeping
        `reserve_s` for what must come after it. Unmeasured work fits while any time is left."""
        if not self.limited:
            return True
        return (estimate_s or 0.0) + reserve_s <= self.left() and self.left() > 0


MARGIN = 1.25
"""Estimates are the measured mean times this: a step's cost per token varies with its sequence lengths
(a 7,281-token step of the demo's config ran at 13 ms/token where short ones ran at 6, AVX2-capped fp32)."""


@dataclass
class Rate:
    """Seconds per token over the last `window` measurements, weighted by their tokens, times `MARGIN`.

    Not the slowest of them: one step descheduled by another job (the demo's training on the AVX2-capped
    machine measured 26 ms/token once, between steps of 6-13) then ended a 9-minute run with 208 s unused;
    the mean believes a lasting slowdown within a few steps and a passing one hardly at all."""

    window: int = 5
    _seen: deque[tuple[int, float]] = field(default_factory=deque)

    def add(self, tokens: int, seconds: float) -> None:
        self._seen.append((max(1, tokens), seconds))
        while len(self._seen) > self.window:
            self._seen.popleft()

    @property
    def measured(self) -> bool:
        return bool(self._seen)

    def per_token(self) -> float | None:
        if not self._seen:
            return None
        return MARGIN * sum(s for _, s in self._seen) / sum(t for t, _ in self._seen)

    def estimate(self, tokens: int) -> float | None:
        """Seconds `tokens` will take, or None before anything was measured."""
        rate = self.per_token()
        return None if rate is None else rate * tokens
