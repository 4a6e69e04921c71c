"""What makes the logged entropy dimensionless: the distribution, its action dim, σ bounds — given,
logged, or read off the log — and what kind of reward the task pays."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from dreamscope.diagnostics.thresholds import Thresholds
from dreamscope.errors import DreamscopeError
from dreamscope.logs.schema import Run

GAUSSIAN_DISTS = ("bounded_normal", "tanh_normal")
DISTS = (*GAUSSIAN_DISTS, "discrete")
#: σ bounds a distribution has when the run's meta does not say (log σ lo, hi).
DEFAULT_LOGSTD = {"bounded_normal": (math.log(0.1), 0.0), "tanh_normal": (-5.0, 2.0)}
#: DreamerV3 divides advantages by max(limit, S); the limit is 1 unless meta says otherwise.
DEFAULT_RETURN_LIMIT = 1.0


@dataclass
class EntropyScale:
    """Floor, ceiling and action-space bound that make the logged entropy dimensionless."""

    dist: str | None
    action_dim: int | None
    floor: float | None
    ceiling: float | None
    action_bound: float | None  # d·ln2: most any distribution on [-1, 1]^d has
    logstd_lo: float | None
    logstd_hi: float | None
    source: str
    assumptions: list[str] = field(default_factory=list)

    @property
    def usable(self) -> bool:
        return self.floor is not None and self.ceiling is not None and self.ceiling > self.floor

    def normalise(self, entropy: np.ndarray) -> np.ndarray:
        return (entropy - self.floor) / (self.ceiling - self.floor)

    def normalise_logstd(self, std: np.ndarray) -> np.ndarray | None:
        if self.logstd_lo is None or self.logstd_hi is None:
            return None
        with np.errstate(divide="ignore", invalid="ignore"):
            return (np.log(std) - self.logstd_lo) / (self.logstd_hi - self.logstd_lo)


def clean_meta(meta: dict) -> tuple[dict, list[str]]:
    """The meta keys the doctor reads, checked; an unusable value is dropped and the drop stated."""
    accept = {
        "action_dim": (lambda x: x == int(x) and x >= 1, "a positive integer"),
        "eta": (lambda x: x >= 0, "a number ≥ 0"),
        "std_min": (lambda x: x > 0, "a number > 0"),
        "std_max": (lambda x: x > 0, "a number > 0"),
        "logstd_min": (math.isfinite, "a finite number"),
        "logstd_max": (math.isfinite, "a finite number"),
        "return_limit": (lambda x: x > 0, "a number > 0"),
    }
    clean, notes = dict(meta), []
    for key, (ok, what) in accept.items():
        if meta.get(key) is None:
            continue
        try:
            x = float(meta[key]) if not isinstance(meta[key], bool) else math.nan
            good = math.isfinite(x) and ok(x)
        except (TypeError, ValueError):
            good = False
        if good:
            clean[key] = int(x) if key == "action_dim" else x
        else:
            del clean[key]
            notes.append(f"run meta {key} = {meta[key]!r} ignored: expected {what}")
    return clean, notes


def _meta_logstd(meta: dict, dist: str) -> tuple[float, float, bool]:
    """(lo, hi, from_meta) log-σ bounds from meta (logstd_* first, then std_*), else the dist's defaults."""
    lo, hi = DEFAULT_LOGSTD[dist]
    got_lo = got_hi = False
    if meta.get("logstd_min") is not None:
        lo, got_lo = float(meta["logstd_min"]), True
    elif meta.get("std_min") is not None:
        lo, got_lo = math.log(float(meta["std_min"])), True
    if meta.get("logstd_max") is not None:
        hi, got_hi = float(meta["logstd_max"]), True
    elif meta.get("std_max") is not None:
        hi, got_hi = math.log(float(meta["std_max"])), True
    return lo, hi, got_lo and got_hi


def _infer_dist(explanation) -> tuple[str, float, float, str]:
    """Read the distribution off the fingerprint of the run's highest (or pinned) logged entropy."""
    from dreamscope.fingerprint import KNOWN_STD_BOUNDS

    upper = [m for m in explanation.bound_matches if m.side == "upper"]
    lower = [m for m in explanation.bound_matches if m.side == "lower"]
    for matches, where in ((upper, "upper clamp"), (lower, "lower bound")):
        if not matches:
            continue
        bounds = next(b for b in KNOWN_STD_BOUNDS if b.codebase == matches[0].codebase)
        dist = "bounded_normal" if "BoundedNormal" in bounds.codebase else "tanh_normal"
        why = f"its log σ {explanation.log_std:.3f} sits on the {where} of {bounds.codebase} ({bounds.rule})"
        return dist, bounds.log_std_min, bounds.log_std_max, why
    if explanation.possible_bounded_normal:
        lo, hi = DEFAULT_LOGSTD["bounded_normal"]
        return "bounded_normal", lo, hi, "it fits official DreamerV3's σ ∈ [0.1, 1]"
    lo, hi = DEFAULT_LOGSTD["tanh_normal"]
    hi = max(hi, explanation.log_std)
    why = f"it is above what a σ ≤ 1 Gaussian has, so a pre-tanh Gaussian with log σ up to at least {hi:.3f}"
    return "tanh_normal", lo, hi, why


def entropy_scale(run: Run, action_dim: int | None = None, dist: str | None = None, explanation=None,
                  meta: dict | None = None) -> EntropyScale:
    """Resolve the floor/ceiling: explicit overrides, then logged references, then meta, then the fingerprint.

    ``meta`` is the run's meta after :func:`clean_meta` (computed here when not given).
    """
    from dreamscope.metrics import GAUSSIAN_ENTROPY_UNIT, action_entropy_bound

    meta = clean_meta(run.meta)[0] if meta is None else meta
    d = action_dim if action_dim is not None else meta.get("action_dim")
    meta_dist = meta.get("dist")
    assumptions: list[str] = []
    if dist is None and meta_dist is not None and meta_dist not in DISTS:
        assumptions.append(f"meta dist {meta_dist!r} is not one of {', '.join(DISTS)}; treated as unknown")
        meta_dist = None
    chosen = dist or meta_dist
    bound = action_entropy_bound(d) if d is not None and chosen != "discrete" else None

    def from_dist(name: str, source: str, lo: float | None = None, hi: float | None = None) -> EntropyScale:
        if name == "discrete":
            if d is None:
                return EntropyScale(name, None, None, None, None, None, None, source, assumptions)
            assumptions.append(f"discrete: one categorical over {d} choices, entropy in [0, ln {d}]")
            return EntropyScale(name, d, 0.0, math.log(d), None, None, None, source, assumptions)
        if lo is None:
            lo, hi, from_meta = _meta_logstd(meta, name)
            if not from_meta:
                assumptions.append(f"{name}: log σ bounds not in the run's meta; assumed ({lo:.3f}, {hi:.3f})")
        if d is None:
            return EntropyScale(name, None, None, None, None, lo, hi, source, assumptions)
        return EntropyScale(name, d, d * (GAUSSIAN_ENTROPY_UNIT + lo), d * (GAUSSIAN_ENTROPY_UNIT + hi), bound,
                            lo, hi, source, assumptions)

    if dist is not None:
        return from_dist(dist, "--dist override")
    logged_max, logged_min = run.get("policy/entropy_max"), run.get("policy/entropy_min_ref")
    if logged_max is not None and logged_min is not None and len(logged_max) and len(logged_min):
        ceiling, floor = float(np.nanmedian(logged_max.values)), float(np.nanmedian(logged_min.values))
        lo = hi = None
        if d is not None and chosen in GAUSSIAN_DISTS:
            lo, hi = floor / d - GAUSSIAN_ENTROPY_UNIT, ceiling / d - GAUSSIAN_ENTROPY_UNIT
        return EntropyScale(chosen, d, floor, ceiling, bound, lo, hi,
                            "logged policy/entropy_max and policy/entropy_min_ref", assumptions)
    if chosen is not None:
        return from_dist(chosen, "run meta")
    if explanation is None:
        return EntropyScale(None, d, None, None, bound, None, None,
                            "unknown (no dist, no logged references, no action_dim to fingerprint)", assumptions)
    inferred, lo, hi, why = _infer_dist(explanation)
    assumptions.append(
        f"dist unknown: read as {inferred} with log σ ∈ ({lo:.3f}, {hi:.3f}) from the fingerprint of the peak "
        f"logged entropy {explanation.entropy_total:.4g} — {why}; pass --dist to override"
    )
    return from_dist(inferred, "fingerprint of the logged entropy", lo, hi)


#: Tasks whose reward structure decides what a "reward event" is (lower-case substrings of a task
#: name): on a goal task only reaching the goal pays (a positive score); on a dense task every
#: step pays, so any non-zero score is one. First match wins.
TASK_REWARDS: tuple[tuple[str, str], ...] = (
    ("sparse", "sparse"), ("mountaincar", "sparse"), ("airhockey", "sparse"), ("air_hockey", "sparse"),
    ("ball_in_cup", "sparse"), ("pendulum", "dense"), ("cartpole", "dense"), ("walker", "dense"),
    ("cheetah", "dense"), ("hopper", "dense"), ("reacher", "dense"), ("humanoid", "dense"), ("quadruped", "dense"),
)


def task_rewards(meta: dict) -> str | None:
    """"sparse" | "dense" from meta ``rewards`` or the ``task`` name, else None (unknown)."""
    if meta.get("rewards") in ("sparse", "dense"):
        return meta["rewards"]
    task = str(meta.get("task") or "").lower().replace("-", "_")
    return next((kind for key, kind in TASK_REWARDS if key in task), None) if task else None


def window_medians(run: Run, name: str, edges: np.ndarray) -> list[float]:
    series = run.get(name)
    out = []
    for a, b in zip(edges[:-1], edges[1:]):
        v = series.window(int(a), int(b)).values
        v = v[np.isfinite(v)]
        out.append(float(np.median(v)) if len(v) else float("nan"))
    return out


def fingerprint(run: Run, d: int | None, dist: str | None, edges: np.ndarray, th: Thresholds):
    """Explanation of the highest window-median logged entropy, when it is needed and can be read.

    Needed to infer an unknown distribution, or to explain a value above d·ln2.
    """
    from dreamscope.metrics import action_entropy_bound

    if d is None or run.get("policy/entropy") is None:
        return None
    medians = [m for m in window_medians(run, "policy/entropy", edges) if math.isfinite(m)]
    if not medians or (dist in DISTS and max(medians) <= action_entropy_bound(d) * (1.0 + th.impossible_margin)):
        return None
    from dreamscope.fingerprint import explain_entropy

    try:
        return explain_entropy(max(medians), d, continuous=dist in GAUSSIAN_DISTS)
    except DreamscopeError:
        return None


@dataclass(frozen=True)
class _PinnedReading:
    """An action dim read off an entropy that sits, constant, on a known σ bound."""

    action_dim: int
    value: float
    points: int
    window: tuple[int, int]
    log_std: float
    side: str
    codebases: tuple[str, ...]


def _pinned_windows(run: Run, edges: np.ndarray, th: Thresholds) -> list[tuple[float, int, tuple[int, int]]]:
    """(median, points, window) of each window whose logged entropy is constant: σ held at a bound."""
    from dreamscope.fingerprint import BOUND_TOL

    series = run.get("policy/entropy")
    out = []
    for a, b in zip(edges[:-1], edges[1:]):
        v = series.window(int(a), int(b)).values
        v = v[np.isfinite(v)]
        if len(v) < th.min_points:
            continue
        med = float(np.median(v))
        # BOUND_TOL is per dim; at d = 1 it is the strictest reading of "constant".
        if np.mean(np.abs(v - med) <= BOUND_TOL) >= th.pinned_points_frac:
            out.append((med, len(v), (int(a), int(b))))
    return out


def infer_action_dim(run: Run, edges: np.ndarray, th: Thresholds) -> tuple[_PinnedReading | None, str | None]:
    """Read d off an entropy pinned at a value that is d × (½ln(2πe) + a known log-σ bound) for one d only.

    A Gaussian policy whose σ sits on its bound logs the same entropy at every step, and that
    value is d·(½ln(2πe) + log σ_bound) to the fingerprint's tolerance. The reading is taken
    only when exactly one d ≤ ``infer_max_dim`` fits (any known bound, either side); otherwise
    (no pinned stretch, no fit, several fits) d stays unknown and the reason is returned.
    """
    from dreamscope.metrics import GAUSSIAN_ENTROPY_UNIT
    from dreamscope.fingerprint import BOUND_TOL, KNOWN_STD_BOUNDS

    if run.get("policy/entropy") is None or len(run.get("policy/entropy")) == 0:
        return None, None
    pinned = _pinned_windows(run, edges, th)
    if not pinned:
        return None, "the logged entropy is never constant over a window, so no σ bound can be read off it"
    fits: dict[int, _PinnedReading] = {}
    for value, points, window in pinned:
        for d in range(1, th.infer_max_dim + 1):
            log_std = value / d - GAUSSIAN_ENTROPY_UNIT
            for side in ("upper", "lower"):
                hits = tuple(b.codebase for b in KNOWN_STD_BOUNDS
                             if abs(log_std - (b.log_std_max if side == "upper" else b.log_std_min)) < BOUND_TOL)
                if hits and d not in fits:
                    fits[d] = _PinnedReading(d, value, points, window, log_std, side, hits)
    if len(fits) == 1:
        return next(iter(fits.values())), None
    values = ", ".join(f"{v:.4g}" for v, _, _ in pinned[:3])
    if not fits:
        return None, (f"the entropy is pinned at {values}, but no d ≤ {th.infer_max_dim} puts that on a known σ bound")
    return None, (f"the entropy is pinned at {values}, which fits a known σ bound for d = "
                  f"{', '.join(map(str, sorted(fits)))}: ambiguous")


