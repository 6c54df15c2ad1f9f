"""A measured proportion with its 95% Wilson score interval.

Owns the interval math (Wilson 1927; it stays inside [0, 1] and is sensible at k = 0 or k = n,
unlike the normal approximation) and the `Proportion` every eval here reports.
Never: decides what counts as correct (the scorers do).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054
"""The two-sided 95% normal quantile."""


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for k successes out of n (n = 0: the whole of [0, 1])."""
    if not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if n == 0:
        return 0.0, 1.0
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True, slots=True)
class Proportion:
    k: int
    n: int

    @property
    def accuracy(self) -> float | None:
        return self.k / self.n if self.n else None

    @property
    def interval(self) -> tuple[float, float]:
        return wilson(self.k, self.n)

    def as_dict(self) -> dict[str, float | int | None]:
        lo, hi = self.interval
        return {"k": self.k, "n": self.n, "accuracy": self.accuracy, "ci95_low": lo, "ci95_high": hi}

    def __str__(self) -> str:
        if not self.n:
            return "n=0"
        lo, hi = self.interval
        return f"{100 * self.k / self.n:.1f}% ({self.k}/{self.n}; 95% CI {100 * lo:.1f}-{100 * hi:.1f})"


def of(flags: list[bool]) -> Proportion:
    return Proportion(sum(flags), len(flags))
