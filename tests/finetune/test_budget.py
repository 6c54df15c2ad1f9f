"""The budget's arithmetic on a controlled clock (the real-run behaviour is in test_train.py)."""

import math

import pytest

from finetune.budget import MARGIN, Budget, Rate


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_work_fits_only_when_its_estimate_and_the_reserve_end_before_the_cap() -> None:
    clock = Clock()
    budget = Budget.minutes(1, clock=clock)
    clock.now += 40
    assert budget.left() == 20
    assert budget.fits(15, reserve_s=5) and not budget.fits(15, reserve_s=6)
    assert budget.fits(None) and not budget.fits(None, reserve_s=21)  # unmeasured: only time left counts
    clock.now += 20
    assert not budget.fits(None) and not budget.fits(0.0)


def test_a_command_started_earlier_has_less_left() -> None:
    clock = Clock()
    assert Budget.minutes(1, started=clock.now - 50, clock=clock).left() == 10


def test_no_limit_fits_everything() -> None:
    budget = Budget(0)
    assert budget.fits(1e9, reserve_s=1e9) and budget.left() == math.inf


def test_rate_is_unknown_until_measured_then_the_recent_mean_with_a_margin() -> None:
    rate = Rate(window=3)
    assert rate.estimate(1000) is None
    rate.add(1000, 2.0)  # 2 ms/token
    assert rate.estimate(500) == pytest.approx(1.0 * MARGIN)
    rate.add(3000, 6.0)  # weighted by tokens: still 2 ms/token
    rate.add(1000, 12.0)  # one step descheduled by another job: 12 ms/token
    assert rate.estimate(1000) == pytest.approx(4.0 * MARGIN)  # 20 s over 5,000 tokens, not the 12 ms outlier
    rate.add(1000, 12.0)
    rate.add(1000, 12.0)  # a lasting slowdown fills the window and is believed
    assert rate.estimate(1000) == pytest.approx(12.0 * MARGIN)
