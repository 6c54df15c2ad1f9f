import pytest

from finetune.eval.interval import Proportion, of, wilson


def test_wilson_matches_published_values() -> None:
    # Newcombe (1998), Table I: 0/10 -> 0-0.2775; 5/10 -> 0.2366-0.7634; 10/10 -> 0.7225-1
    assert wilson(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    assert wilson(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)


def test_wilson_narrows_with_n_and_stays_in_bounds() -> None:
    widths = [hi - lo for lo, hi in (wilson(n // 2, n) for n in (10, 50, 200, 1000))]
    assert widths == sorted(widths, reverse=True)
    assert widths[1] == pytest.approx(0.265, abs=0.005)  # "+-13 points at n=50"
    for k in range(0, 21):
        lo, hi = wilson(k, 20)
        assert 0.0 <= lo <= k / 20 <= hi <= 1.0


def test_empty_sample_says_nothing_and_bad_counts_are_refused() -> None:
    assert wilson(0, 0) == (0.0, 1.0)
    assert Proportion(0, 0).accuracy is None and str(Proportion(0, 0)) == "n=0"
    with pytest.raises(ValueError):
        wilson(3, 2)
    with pytest.raises(ValueError):
        wilson(-1, 2)


def test_proportion_reports_k_n_accuracy_and_interval() -> None:
    p = of([True, True, False, True])
    d = p.as_dict()
    assert (d["k"], d["n"], d["accuracy"]) == (3, 4, 0.75)
    lo, hi = p.interval
    assert (d["ci95_low"], d["ci95_high"]) == (lo, hi) and lo < 0.75 < hi
    assert str(Proportion(18, 47)).startswith("38.3% (18/47; 95% CI ")
