"""The window engine's base: one step window's data, the tests its checks share, and the check registry.

A *check* is a function of a :class:`Window` that adds one or more :class:`Evidence` records to
``window.results``. It declares what it produces, the canonical signals it reads and the checks
it depends on (``@check``); :func:`compute` runs every registered check once, dependencies first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np

from dreamscope.diagnostics.doctor.evidence import Evidence, fmt
from dreamscope.diagnostics.doctor.scale import DEFAULT_RETURN_LIMIT, EntropyScale
from dreamscope.diagnostics.thresholds import Thresholds
from dreamscope.logs.schema import Run
from dreamscope.stats import Trend, blocked, shift_test, trend_test


class Window:
    """One step window [start, stop) of a run, with the data access and tests its checks share.

    Cumulative checks look from the run's start (``run_start``) to ``stop``. ``results`` collects
    each check's :class:`Evidence` under the check's name.
    """

    def __init__(self, run: Run, meta: dict, scale: EntropyScale, th: Thresholds, start: int, stop: int,
                 run_start: int):
        self.run, self.meta, self.scale, self.th = run, meta, scale, th
        self.start, self.stop, self.run_start = start, stop, run_start
        self.return_limit = meta.get("return_limit", DEFAULT_RETURN_LIMIT)
        self.results: dict[str, Evidence] = {}

    # ---- data access
    def points(self, name: str, start: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        series = self.run.get(name)
        if series is None:
            return np.empty(0, np.int64), np.empty(0)
        part = series.window(self.start if start is None else start, self.stop)
        keep = np.isfinite(part.values)
        return part.steps[keep], part.values[keep]

    def level(self, name: str) -> float | None:
        _, v = self.points(name)
        return float(np.median(v)) if len(v) >= self.th.min_points else None

    def missing(self, check: str, signal: str, why: str | None = None) -> Evidence:
        """Undecided evidence; ``why`` defaults to what ``why_missing(signal)`` says of the signal."""
        return Evidence(check, signal, None, {}, (self.start, self.stop), why or self.why_missing(signal))

    def why_missing(self, *names: str) -> str:
        absent = [n for n in names if self.run.get(n) is None or len(self.run.get(n)) == 0]
        if absent:
            return f"not logged: {', '.join(absent)}"
        return (f"fewer than {self.th.min_points} finite points of {', '.join(names)} "
                f"in steps {self.start}–{self.stop}")

    def norm_entropy(self, start: int | None = None) -> tuple[np.ndarray, np.ndarray] | None:
        if not self.scale.usable:
            return None
        steps, values = self.points("policy/entropy", start)
        return steps, self.scale.normalise(values)

    def entropy_or_missing(self, *checks: str) -> tuple[np.ndarray, np.ndarray] | None:
        """Normalised entropy of the window, or None after marking ``checks`` undecidable with the reason."""
        got = self.norm_entropy()
        if got is not None and len(got[1]) >= self.th.min_points:
            return got
        if got is not None:
            why = self.why_missing("policy/entropy")
        elif self.run.get("policy/entropy") is None:
            why = "not logged: policy/entropy"
        else:
            why = f"entropy floor/ceiling unknown ({self.scale.source}); pass --dist and --action-dim"
        for check in checks:
            self.results[check] = self.missing(check, "policy/entropy", why)
        return None

    # ---- trends
    def trend(self, steps: np.ndarray, values: np.ndarray, spread: float,
              start: int | None = None) -> tuple[Trend, float]:
        """(trend, Theil–Sen change over [start, stop) in units of ``spread``); needs ``min_points`` points."""
        x, y = blocked(steps, values, self.th.trend_blocks)
        # Too few finite values (e.g. log of a non-positive std) is no evidence of a trend.
        t = trend_test(x, y) if len(y) >= 3 else Trend(n=len(y), s=0.0, z=0.0, p=1.0, slope=0.0)
        change = t.slope * (self.stop - (self.start if start is None else start))
        return t, change / spread if spread > 0 else (0.0 if change == 0 else math.copysign(math.inf, change))

    def direction(self, t: Trend, rel_change: float, min_change: float, alpha: float | None = None) -> int:
        if t.p < (self.th.trend_alpha if alpha is None else alpha) and abs(rel_change) >= min_change:
            return 1 if t.slope > 0 else -1
        return 0

    def spread(self, name: str) -> float:
        values = self.run.get(name).values
        values = values[np.isfinite(values)]
        lo, hi = np.percentile(values, self.th.spread_percentiles) if len(values) else (0.0, 0.0)
        if hi == lo and len(values):
            # More than 90 % of the values are one number (a success score): the full range is the spread.
            lo, hi = float(values.min()), float(values.max())
        return float(hi - lo)

    def signal_trend(self, name: str, start: int | None = None, tests: int = 1) -> tuple[int | None, dict]:
        """Direction of ``name``'s trend; ``tests`` > 1 Bonferroni-corrects when any of several may count."""
        steps, values = self.points(name, start)
        if len(values) < self.th.min_points:
            return None, {}
        t, rel = self.trend(steps, values, self.spread(name), start)
        direction = self.direction(t, rel, self.th.trend_min_change, self.th.trend_alpha / tests)
        return direction, {"mk_z": t.z, "p": t.p, "theil_sen_slope_per_step": t.slope, "change_per_spread": rel,
                           "points": len(values), "tested_blocks": t.n}

    # ---- the checks
    def early_and_now(self, name: str) -> tuple[tuple[int, int], tuple[int, int], np.ndarray, np.ndarray]:
        """(early range, now range, early values, now values) of ``name``; see ``Thresholds.early_frac``.

        The early stretch starts at the signal's own first point (training signals begin after
        the prefill, episode scores before it), so that it holds that signal's earliest values.
        """
        series = self.run.get(name)
        first = self.run_start
        if series is not None:
            finite = series.steps[np.isfinite(series.values)]
            if len(finite) and finite[0] < self.stop:
                first = max(first, int(finite[0]))
        early_end = max(first + int(round(self.th.early_frac * (self.stop - first))), first + 1)
        now_start = max(self.start, early_end)
        if series is None:
            return (first, early_end), (now_start, self.stop), np.empty(0), np.empty(0)
        a = series.window(first, early_end).values
        b = series.window(now_start, self.stop).values
        return (first, early_end), (now_start, self.stop), a[np.isfinite(a)], b[np.isfinite(b)]

    def shift_evidence(self, check: str, name: str, up: bool, transform=None, unit: float | None = None,
                        min_change: float | None = None, signal: str | None = None) -> Evidence:
        """Has ``name`` moved ``up`` (or down) from the run's early stretch to now, significantly and by enough?"""
        th = self.th
        early_rng, now_rng, early, now = self.early_and_now(name)
        window = (self.run_start, self.stop)
        if len(early) < th.min_points or len(now) < th.min_points:
            series = self.run.get(name)
            if series is None or len(series) == 0:
                return self.missing(check, name, f"not logged: {name}")
            return Evidence(check, signal or name, None, {"points_early": len(early), "points_now": len(now)}, window,
                            f"{len(early)} point(s) of {name} in the run's early stretch (steps {early_rng[0]}–"
                            f"{early_rng[1]}) and {len(now)} now (steps {now_rng[0]}–{now_rng[1]}): each needs "
                            f"{th.min_points} to compare")
        if transform is not None:
            early, now = transform(early), transform(now)
        if unit is None:
            # The spread of the two stretches being compared (P5–P95 of both together, their full
            # range if that is 0): a run that sat at one score for most of its length would make
            # the run-wide P5–P95 tiny and any change look huge.
            pooled = np.concatenate([early, now])
            lo, hi = np.percentile(pooled, th.spread_percentiles)
            unit = float(hi - lo) if hi > lo else float(pooled.max() - pooled.min())
            min_change = th.trend_min_change if min_change is None else min_change
            unit_word = "of the two stretches' spread (P5–P95)"
        else:
            unit_word = "of the floor–ceiling range"
        sh = shift_test(early, now)
        diff = sh.mean_late - sh.mean_early
        rel = diff / unit if unit > 0 else (0.0 if diff == 0 else math.copysign(math.inf, diff))
        p = sh.p_up if up else sh.p_down
        holds = p < th.trend_alpha and (rel if up else -rel) >= min_change
        word, not_word = ("rose", "did not rise") if up else ("fell", "did not fall")
        nums = {"mean_early": sh.mean_early, "mean_now": sh.mean_late, "change": rel, "p": p,
                "points_early": sh.n_early, "points_now": sh.n_late, "early_start": early_rng[0],
                "early_stop": early_rng[1]}
        return Evidence(
            check, signal or name, holds, nums, window,
            f"{name} {word if holds else not_word} "
            f"since the run's early stretch: mean {fmt(sh.mean_early)} in steps {early_rng[0]}–{early_rng[1]} "
            f"→ {fmt(sh.mean_late)} in steps {now_rng[0]}–{now_rng[1]} (Mann–Whitney p = {fmt(p)}, "
            f"change {fmt(rel)} {unit_word})")


@dataclass(frozen=True)
class Check:
    name: str
    produces: tuple[str, ...]  # the Evidence records it adds (check names the rules use)
    reads: tuple[str, ...]  # canonical signals
    depends: tuple[str, ...]  # checks whose results it reads
    run: Callable[[Window], None]


#: Every check, by the function's name, in registration order.
CHECKS: dict[str, Check] = {}


def check(produces: tuple[str, ...], reads: tuple[str, ...], depends: tuple[str, ...] = ()):
    """Register a check function (see the module docstring)."""
    def register(fn: Callable[[Window], None]) -> Callable[[Window], None]:
        CHECKS[fn.__name__] = Check(fn.__name__, produces, reads, depends, fn)
        return fn
    return register


def check_order() -> list[Check]:
    """Registered checks with every dependency before its dependents; a cycle or unknown name raises."""
    producer = {name: c for c in CHECKS.values() for name in c.produces}
    done: dict[str, Check] = {}

    def visit(c: Check, path: tuple[str, ...]) -> None:
        if c.name in done:
            return
        if c.name in path:
            raise ValueError(f"check dependency cycle: {' -> '.join(path + (c.name,))}")
        for dep in c.depends:
            if dep not in producer:
                raise ValueError(f"check {c.name} depends on {dep!r}, which no check produces")
            visit(producer[dep], path + (c.name,))
        done[c.name] = c

    for c in CHECKS.values():
        visit(c, ())
    return list(done.values())


def compute(window: Window) -> dict[str, Evidence]:
    """Run every check on ``window``; the results by check name."""
    for c in check_order():
        c.run(window)
    return window.results
