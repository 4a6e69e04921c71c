"""Statistics shared by the doctor, the probe, evaluate and sweep: rank tests and intervals.

Hand-written so that no command needs scipy at run time; each is tested against scipy
(tests/test_stats.py).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np


@dataclass(frozen=True)
class Trend:
    """Mann–Kendall test with Theil–Sen slope (units of y per unit of x)."""

    n: int
    s: float
    z: float
    p: float
    slope: float


def trend_test(x, y) -> Trend:
    """Mann–Kendall trend test (tie-corrected variance, continuity correction, two-sided normal p).

    Rank-based, so one outlier batch cannot fake a trend; the Theil–Sen slope (median of
    pairwise slopes) gives its size. Needs at least 3 finite points.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    keep = np.isfinite(x) & np.isfinite(y)
    x, y = x[keep], y[keep]
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    n = len(y)
    if n < 3:
        raise ValueError(f"a trend test needs at least 3 finite points, got {n}")
    i, j = np.triu_indices(n, 1)
    s = float(np.sign(y[j] - y[i]).sum())
    _, ties = np.unique(y, return_counts=True)
    var = (n * (n - 1) * (2 * n + 5) - float(np.sum(ties * (ties - 1) * (2 * ties + 5)))) / 18.0
    z = (s - math.copysign(1.0, s)) / math.sqrt(var) if var > 0 and s != 0 else 0.0
    p = math.erfc(abs(z) / math.sqrt(2.0))
    dx = x[j] - x[i]
    ok = dx != 0
    slope = float(np.median((y[j] - y[i])[ok] / dx[ok])) if ok.any() else 0.0
    return Trend(n=n, s=s, z=z, p=p, slope=slope)


def blocked(steps: np.ndarray, values: np.ndarray, blocks: int) -> tuple[np.ndarray, np.ndarray]:
    """Block means of steps and block medians of values: fewer, less autocorrelated points."""
    finite = np.isfinite(values)
    steps, values = steps[finite], values[finite]
    if len(values) <= blocks:
        return steps.astype(np.float64), values
    groups = np.array_split(np.arange(len(values)), blocks)
    return (np.array([steps[g].mean() for g in groups]), np.array([np.median(values[g]) for g in groups]))


@dataclass(frozen=True)
class Shift:
    """One-sided Mann–Whitney test that ``late`` sits above ``early`` (normal approximation, tie-corrected)."""

    n_early: int
    n_late: int
    u: float
    z: float
    p_up: float  # P-value for "late > early"
    p_down: float  # P-value for "late < early"
    mean_early: float
    mean_late: float


def shift_test(early, late) -> Shift:
    """Rank test of two samples; needs at least one finite point in each.

    Rank-based like the trend test, so it does not care that a score is bimodal (−10 or +100)
    or that a series jumped to a plateau, where a Theil–Sen slope is 0 because most pairs tie.
    """
    a = np.asarray(early, dtype=np.float64)
    b = np.asarray(late, dtype=np.float64)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    n1, n2 = len(a), len(b)
    if n1 == 0 or n2 == 0:
        raise ValueError(f"a shift test needs points in both samples, got {n1} and {n2}")
    both = np.concatenate([a, b])
    order = np.argsort(both, kind="stable")
    ranks = np.empty(len(both))
    sorted_vals = both[order]
    # average ranks over ties
    _, first, counts = np.unique(sorted_vals, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    u = float(ranks[n1:].sum() - n2 * (n2 + 1) / 2.0)  # pairs where late > early (ties count ½)
    n = n1 + n2
    mu = n1 * n2 / 2.0
    var = n1 * n2 / 12.0 * ((n + 1) - float(np.sum(counts**3 - counts)) / (n * (n - 1)) if n > 1 else 0.0)
    if var > 0:
        sd = math.sqrt(var)
        z = (u - mu) / sd
        # continuity correction towards each one-sided alternative
        p_up = 0.5 * math.erfc((u - mu - 0.5) / sd / math.sqrt(2.0))
        p_down = 0.5 * math.erfc((mu - u - 0.5) / sd / math.sqrt(2.0))
    else:  # every value equal: no evidence either way
        z, p_up, p_down = 0.0, 1.0, 1.0
    return Shift(n1, n2, u, z, min(p_up, 1.0), min(p_down, 1.0), float(a.mean()), float(b.mean()))


@functools.lru_cache(maxsize=64)
def t_quantile(p: float, df: int) -> float:
    """Quantile of Student's t: bisection on the CDF, integrated by Simpson; symmetric about p = ½."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"t_quantile needs 0 < p < 1, got {p}")
    if df < 1:
        raise ValueError(f"t_quantile needs df ≥ 1, got {df}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    z = NormalDist().inv_cdf(p)
    if df >= 1000:  # Cornish–Fisher expansion in 1/df: exact to ~1e-9 this far out
        return z + (z**3 + z) / (4 * df) + (5 * z**5 + 16 * z**3 + 3 * z) / (96 * df**2)
    const = math.exp(math.lgamma((df + 1) / 2) - math.lgamma(df / 2)) / math.sqrt(df * math.pi)

    def cdf(t: float) -> float:
        x = np.linspace(0.0, t, 2001)
        y = const * (1.0 + x * x / df) ** (-(df + 1) / 2)
        h = x[1] - x[0]
        return 0.5 + h / 3 * (y[0] + y[-1] + 4 * y[1:-1:2].sum() + 2 * y[2:-1:2].sum())

    lo, hi = z, max(z, 1.0)  # for p ≥ ½ the t quantile is at least the normal one
    while cdf(hi) < p:
        hi *= 2.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if cdf(mid) < p else (lo, mid)
    return 0.5 * (lo + hi)


def interval(x: np.ndarray, confidence: float) -> dict[str, float]:
    """Mean, standard error and the two-sided Student-t interval of per-batch values."""
    x = np.asarray(x, np.float64)
    n = len(x)
    mean = float(x.mean())
    se = float(x.std(ddof=1) / math.sqrt(n)) if n > 1 else math.inf
    half = t_quantile(0.5 + confidence / 2, n - 1) * se if n > 1 else math.inf
    return {"mean": mean, "se": se, "half_width": half, "lo": mean - half, "hi": mean + half, "n": n}


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion: unlike mean ± z·se it stays inside [0, 1]
    and is not empty at 0 or ``trials`` successes, which sparse wins produce."""
    if trials < 1:
        raise ValueError("trials must be at least 1")
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / trials
    denom = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denom
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)
