"""The shared statistics (dreamscope.stats) against hand computations and scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dreamscope.stats import interval, shift_test, t_quantile, trend_test, wilson_interval


def test_trend_test_matches_hand_computation():
    # pairs: 9 concordant, 1 discordant -> S = 8; Var = 5·4·15/18 = 50/3; z = (8 − 1)/sqrt(50/3)
    t = trend_test([0, 1, 2, 3, 4], [1, 2, 3, 5, 4])
    assert t.s == 8
    assert t.z == pytest.approx(7 / math.sqrt(50 / 3))
    assert t.p == pytest.approx(0.08641, abs=1e-4)
    # pairwise slopes sorted: -1, .5, .667, .75, 1, 1, 1, 1.333, 1.5, 2 -> median 1
    assert t.slope == pytest.approx(1.0)


def test_trend_test_tie_correction_and_order():
    # y = [1, 1, 2, 2]: S = 4; Var = (4·3·13 − 2·(2·1·9))/18 = 120/18
    t = trend_test([3, 2, 1, 0], [2, 2, 1, 1])  # given in reverse time order: sorted by x first
    assert t.s == 4
    assert t.z == pytest.approx(3 / math.sqrt(120 / 18))
    assert trend_test([0, 1, 2], [5, 5, 5]).p == 1.0
    with pytest.raises(ValueError):
        trend_test([0, 1], [1, 2])


def test_shift_test_matches_scipy_mann_whitney():
    stats = pytest.importorskip("scipy.stats")
    rng = np.random.default_rng(0)
    for early, late in ((rng.normal(0, 1, 12), rng.normal(0.8, 1, 30)),
                        (np.repeat([-10.0, 0.0, 100.0], [6, 3, 2]), np.repeat([-10.0, 100.0], [2, 20])),  # ties
                        (rng.normal(0, 1, 5), rng.normal(0, 1, 5))):
        sh = shift_test(early, late)
        ref = stats.mannwhitneyu(late, early, alternative="greater", method="asymptotic", use_continuity=True)
        assert sh.u == pytest.approx(ref.statistic)
        assert sh.p_up == pytest.approx(ref.pvalue, rel=1e-9)
        ref_down = stats.mannwhitneyu(late, early, alternative="less", method="asymptotic", use_continuity=True)
        assert sh.p_down == pytest.approx(ref_down.pvalue, rel=1e-9)
    with pytest.raises(ValueError):
        shift_test([], [1.0])


def test_t_quantile_matches_scipy_on_both_sides_of_the_median():
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 2, 7, 30, 200, 5000):
        for p in (0.005, 0.025, 0.1, 0.3, 0.5, 0.7, 0.9, 0.975, 0.995):
            assert t_quantile(p, df) == pytest.approx(stats.t.ppf(p, df), rel=1e-4, abs=1e-9), (p, df)
    with pytest.raises(ValueError):
        t_quantile(0.0, 3)
    with pytest.raises(ValueError):
        t_quantile(0.5, 0)


def test_interval_matches_scipy_t_interval():
    stats = pytest.importorskip("scipy.stats")
    x = np.random.default_rng(1).normal(2.0, 3.0, 9)
    got = interval(x, 0.9)
    lo, hi = stats.t.interval(0.9, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    assert (got["lo"], got["hi"]) == (pytest.approx(lo, rel=1e-5), pytest.approx(hi, rel=1e-5))
    assert interval(np.array([1.0]), 0.95)["half_width"] == math.inf


def test_wilson_interval_against_hand_computed_values():
    # p = 0.8, n = 10, z = 1.95996: centre (0.8 + z²/20) / (1 + z²/10), half z·sqrt(0.016 + z²/400) / (1 + z²/10)
    lo, hi = wilson_interval(8, 10)
    assert (lo, hi) == (pytest.approx(0.4902, abs=1e-4), pytest.approx(0.9433, abs=1e-4))
    assert wilson_interval(0, 10) == pytest.approx((0.0, 3.8415 / 13.8415), abs=1e-4)  # z²/n / (1 + z²/n)
    assert wilson_interval(10, 10) == pytest.approx((10 / 13.8415, 1.0), abs=1e-4)
    lo, hi = wilson_interval(30, 100, confidence=0.99)
    assert lo < 0.3 < hi and hi - lo > 2 * 1.96 * math.sqrt(0.3 * 0.7 / 100)  # 99 % is wider than the 95 % Wald
