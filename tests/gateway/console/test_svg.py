"""gateway/console/svg.py: percentiles, and labels escaped in the markup."""

from __future__ import annotations

from gateway.console.svg import horizontal_bars, percentile, stacked_bars


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 0.5) == 50.0 and percentile(values, 0.99) == 99.0 and percentile(values, 1.0) == 100.0
    assert percentile([], 0.5) is None and percentile([7.0], 0.9) == 7.0


def test_labels_are_escaped() -> None:
    hostile = '<script>alert("x")</script>'
    drawn = str(horizontal_bars([(hostile, 3.0)], "top denied")) + str(stacked_bars([hostile], {"deny": [1]}, "t"))
    assert "<script>" not in drawn and "&lt;script&gt;" in drawn


def test_bars_scale_to_the_largest_value() -> None:
    drawn = str(stacked_bars(["a", "b"], {"allow": [2, 4], "deny": [2, 0]}, "t", width=436, height=254))
    assert 'height="200.0"' in drawn  # a (4) and b (4) fill the 200 px plot; the peak is 4
