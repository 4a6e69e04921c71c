"""Verdict rules: is a run's stuck entropy a symptom, a cause, expected, a collapse — or undecidable?

The doctor splits the run into step windows and, in each, runs a set of *checks* on
dimensionless evidence (normalised entropy, fractions at the std bounds, saturation, the
drift of log σ under each loss term, advantage vs return scale, reward-head hits, trend
tests). Each check holds, fails, or cannot be decided (``None``: its signals are missing);
a verdict *rule* fires on its required checks and its confidence grows with the supporting
ones. A missing signal never flips a rule silently: it leaves its check undecided, which
costs confidence and is listed with the reason. Thresholds live in
:mod:`dreamscope.diagnostics.thresholds`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, replace
from typing import Callable

import numpy as np

from dreamscope.diagnostics.thresholds import DEFAULT, Thresholds
from dreamscope.errors import DreamscopeError
from dreamscope.logs.schema import Run

GAUSSIAN_DISTS = ("bounded_normal", "tanh_normal")
DISTS = (*GAUSSIAN_DISTS, "discrete")
#: σ bounds a distribution has when the run's meta does not say (log σ lo, hi).
DEFAULT_LOGSTD = {"bounded_normal": (math.log(0.1), 0.0), "tanh_normal": (-5.0, 2.0)}
#: DreamerV3 divides advantages by max(limit, S); the limit is 1 unless meta says otherwise.
DEFAULT_RETURN_LIMIT = 1.0

#: Signals the doctor reads, and what each one decides.
WANTED: dict[str, str] = {
    "policy/entropy": "entropy level, trend and dips",
    "policy/entropy_max": "the distribution's own entropy ceiling",
    "policy/entropy_min_ref": "the distribution's own entropy floor",
    "policy/entropy_action": "the actions' true entropy, next to an impossible logged value",
    "policy/std_mean": "whether σ is rising",
    "policy/std_at_upper_frac": "whether σ is pinned at its ceiling",
    "policy/std_at_lower_frac": "whether σ is pinned at its floor",
    "policy/saturation_frac": "whether actions are bang-bang",
    "actor/logstd_push_ent": "the bonus's drift on log σ",
    "actor/logstd_push_pg": "the policy gradient's drift on log σ",
    "actor/ent_to_pg_drift_ratio": "drift of the whole actor gradient (bonus vs PG)",
    "actor/ent_to_pg_ratio": "per-step gradient ratio (secondary)",
    "actor/grad_cos": "per-step gradient cosine (secondary)",
    "adv/abs_mean": "raw advantage scale",
    "adv_norm/abs_mean": "advantage scale next to the return scale",
    "return/scale": "whether the return normaliser is under its limit",
    "reward/head_hit_rate": "whether the reward head predicts sparse events",
    "reward/replay_nonzero_frac": "whether replay holds reward events at all",
    "value/explained_var": "whether the critic tracks λ-returns trivially",
    "model/obs_explained_var": "whether the world model's latent carries the observation",
    "episode/score": "whether returns rise, and whether a reward ever came",
    "actor/grad_norm": "whether any gradient reaches the actor",
}


@dataclass(frozen=True)
class Fix:
    action: str
    expected_effect: str


@dataclass(frozen=True)
class VerdictInfo:
    code: str
    answer: str  # cause | symptom | expected | healthy | undecided
    headline: str  # the one-line answer to "symptom or cause?"
    fixes: tuple[Fix, ...]  # ranked, best first
    intervention: str  # how to confirm the verdict by intervention
    entropy_held_by: str = "unknown"  # see dreamscope.diagnostics.answers
    learning_blocked_by: str = "unknown"


_PROBE_ETA0 = (
    "dreamscope probe RUN_DIR with η = 0: if the bonus is the cause, log σ leaves its ceiling "
    "(std_at_upper_frac and saturation fall) and imagined return rises within a few hundred actor "
    "updates; if neither moves, the missing learning signal is the cause"
)

VERDICTS: dict[str, VerdictInfo] = {
    v.code: v
    for v in (
        VerdictInfo(
            "BONUS_DOMINATES", "cause",
            "Cause: the entropy bonus, not the policy gradient, is what moves σ — it holds σ at its ceiling, "
            "where tanh saturates and the policy gradient through the mean vanishes.",
            (
                Fix("Take the bonus on the *action* entropy (dreamscope: actor.entropy_space=action), or control "
                    "that entropy with a target-entropy controller",
                    "σ leaves the clamp and saturation falls to ~0; the action entropy rises to its real ceiling "
                    "d·ln 2 instead of the pre-tanh one growing without bound (air hockey, the seed's set-up: σ "
                    "7.4 → 0.8, saturated components 84% → 0%)"),
                Fix("Lower the log σ ceiling (e.g. log σ ≤ 0, σ ≤ 1) or use a bounded-normal head",
                    "tanh can no longer saturate, so the policy gradient through the mean survives even while "
                    "σ is high"),
                Fix("Cutting η helps only by far more than 10× (or to 0): LaProp and Adam steps do not scale with "
                    "the gradient, so while the policy gradient is ~0 (zero-initialised heads, no reward seen yet) "
                    "any η > 0 walks log σ up at the full learning rate",
                    "air hockey, the seed's set-up: σ passed 6 within 250 updates at η = 3e-4 as at 3e-3, while "
                    "the advantages were exactly 0; η = 0 leaves σ where the policy gradient puts it"),
            ),
            _PROBE_ETA0,
            entropy_held_by="bonus", learning_blocked_by="entropy"
        ),
        VerdictInfo(
            "PINNED_LEARNING", "expected",
            "Held, not blocking: the entropy bonus holds σ at (or towards) its ceiling, yet the score rises — the "
            "policy learns under the bonus.",
            (
                Fix("Nothing blocks learning; to let σ fall as the policy commits, take the bonus on the action "
                    "entropy (dreamscope: actor.entropy_space=action) or use a target-entropy controller",
                    "σ leaves the clamp as the score rises, and the actions stop being mostly noise"),
                Fix("Or lower η by far more than 10× (or to 0)",
                    "σ follows the policy gradient instead of the bonus"),
            ),
            "dreamscope probe RUN_DIR with η = 0: σ leaves its ceiling (the bonus held it), and imagined return "
            "keeps rising as trained too (learning was not blocked)",
            entropy_held_by="bonus", learning_blocked_by="nothing"
        ),
        VerdictInfo(
            "NO_SIGNAL", "symptom",
            "Symptom: the advantages carry almost no learning signal, so nothing moves the policy — the entropy sits "
            "where the bonus and the initialisation left it.",
            (
                Fix("Zero-initialise the reward and critic output layers and smooth the sparse rewards (DreamSmooth)",
                    "reward/head_hit_rate rises on replay events, imagined returns spread, S climbs past its limit"),
                Fix("Check the return normaliser: advantage = (R^λ − v)/max(1, S), S = EMA of P95 − P5 of R^λ",
                    "with S under 1 the advantages stay raw and small; a correct S makes them comparable to η"),
                Fix("Do not tune η first: lowering it alone leaves the entropy where it is",
                    "saves a run; the entropy follows once the advantages carry signal"),
            ),
            "dreamscope probe RUN_DIR with η = 0 and, separately, with the advantages scaled ×10: with no signal, "
            "η = 0 barely moves σ or imagined return, while a reward head that hits the replay's sparse events does",
            entropy_held_by="unknown", learning_blocked_by="no_signal"
        ),
        VerdictInfo(
            "EXPLORING", "expected",
            "Expected: the entropy is high while the learning signal is still rising — this is exploration; "
            "keep training.",
            (
                Fix("Keep training and diagnose again later", "entropy starts falling once the score rises"),
                Fix("If it lasts past the point the score should have risen, lower η",
                    "the entropy follows the signal sooner"),
            ),
            "Diagnose a later stretch of the same run: the signal keeps rising and the entropy starts to fall",
            entropy_held_by="nothing_wrong", learning_blocked_by="nothing"
        ),
        VerdictInfo(
            "COLLAPSE", "cause",
            "Cause: the entropy collapsed to its floor before returns rose — the policy stopped exploring.",
            (
                Fix("Raise η, or use a target-entropy controller with a floor on the action entropy",
                    "entropy leaves the floor and the policy keeps sampling other actions"),
                Fix("Raise the std floor (std_min / log σ min)", "σ cannot reach a deterministic policy"),
                Fix("Lower the actor learning rate",
                    "the policy commits more slowly, keeping entropy while returns are uninformative"),
            ),
            "dreamscope probe RUN_DIR with η × 10: entropy should rise off the floor without imagined return dropping "
            "if this is a collapse rather than convergence",
            entropy_held_by="floor", learning_blocked_by="entropy"
        ),
        VerdictInfo(
            "TRANSIENT_DIPS", "symptom",
            "Symptom: the entropy dips when rare reward events are learned and recovers when they are forgotten.",
            (
                Fix("Smooth the sparse rewards (DreamSmooth) and zero-initialise the reward head",
                    "the reward head keeps predicting the rare events, so what the policy learns from them sticks: "
                    "the entropy falls and stays down"),
                Fix("Replay reward events more often (keep them in replay, oversample them)",
                    "the world model forgets the events more slowly"),
            ),
            "Probe a checkpoint inside a dip and one after it recovers: the reward head's hit rate on the replay's "
            "reward events should be higher inside the dip",
            entropy_held_by="policy_gradient", learning_blocked_by="no_signal"
        ),
        VerdictInfo(
            "HEALTHY", "healthy",
            "Healthy: the entropy falls (or stays low) as returns rise.",
            (Fix("Nothing to fix", "keep training"),),
            "None needed",
            entropy_held_by="nothing_wrong", learning_blocked_by="nothing"
        ),
        VerdictInfo(
            "IMPOSSIBLE_ENTROPY", "undecided",
            "Undecided: the logged entropy cannot be an action entropy (see findings), and the signals that would "
            "decide symptom vs cause are missing.",
            (
                Fix("Log σ, its at-bound fractions, saturation and the log-σ pushes "
                    "(canonical policy/* and actor/logstd_push_*)",
                    "the next diagnosis can decide between the bonus and the missing signal"),
                Fix("Log the action entropy (policy/entropy_action) and control that, not the pre-tanh value",
                    "the entropy you read means what you think it means"),
            ),
            _PROBE_ETA0,
            entropy_held_by="unknown", learning_blocked_by="unknown"
        ),
        VerdictInfo(
            "UNDECIDED", "undecided",
            "Undecided: no verdict's required evidence holds in these logs (see what could not be decided).",
            (Fix("Log the missing signals listed below", "the next diagnosis can decide"),),
            _PROBE_ETA0,
            entropy_held_by="unknown", learning_blocked_by="unknown"
        ),
    )
}


# --------------------------------------------------------------------------------------
# Trend test
# --------------------------------------------------------------------------------------


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


def _blocked(steps: np.ndarray, values: np.ndarray, blocks: int) -> tuple[np.ndarray, np.ndarray]:
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


# --------------------------------------------------------------------------------------
# The distribution's entropy scale
# --------------------------------------------------------------------------------------


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


def _clean_meta(meta: dict) -> tuple[dict, list[str]]:
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

    ``meta`` is the run's meta after :func:`_clean_meta` (computed here when not given).
    """
    from dreamscope.dists import GAUSSIAN_ENTROPY_UNIT, action_entropy_bound

    meta = _clean_meta(run.meta)[0] if meta is None else meta
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


# --------------------------------------------------------------------------------------
# Evidence and checks
# --------------------------------------------------------------------------------------


@dataclass
class Evidence:
    """One check: which signal, its numbers, the step window it used, and what it implies.

    ``holds`` is None when the check could not be decided; ``implies`` then says why.
    """

    check: str
    signal: str
    holds: bool | None
    numbers: dict[str, float]
    window: tuple[int, int]
    implies: str
    decisive: bool = True  # False: holds, but within the noise of its own estimate

    def __post_init__(self) -> None:
        # numpy comparisons give np.bool_, which `is True` would not recognise.
        self.holds = None if self.holds is None else bool(self.holds)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["window"] = list(self.window)
        out["numbers"] = {k: _jsonable(v) for k, v in self.numbers.items()}
        return out


def _jsonable(v):
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    return v


@dataclass
class Finding:
    """Something true about the run that travels with whatever verdict is reached."""

    code: str
    message: str
    numbers: dict[str, float]
    window: tuple[int, int]
    detail: dict = field(default_factory=dict)  # "explanation": longer text; anything else: machine-readable

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "window": list(self.window),
                "numbers": {k: _jsonable(v) for k, v in self.numbers.items()}, "detail": self.detail}


def _fmt(x: float) -> str:
    return f"{x:.3g}"


class _Checks:
    """Computes the checks of one step window [start, stop) (cumulative ones from the run's start)."""

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

    def _missing(self, check: str, signal: str, why: str) -> Evidence:
        return Evidence(check, signal, None, {}, (self.start, self.stop), why)

    def _why_missing(self, *names: str) -> str:
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
            why = self._why_missing("policy/entropy")
        elif self.run.get("policy/entropy") is None:
            why = "not logged: policy/entropy"
        else:
            why = f"entropy floor/ceiling unknown ({self.scale.source}); pass --dist and --action-dim"
        for check in checks:
            self.results[check] = self._missing(check, "policy/entropy", why)
        return None

    # ---- trends
    def trend(self, steps: np.ndarray, values: np.ndarray, spread: float,
              start: int | None = None) -> tuple[Trend, float]:
        """(trend, Theil–Sen change over [start, stop) in units of ``spread``); needs ``min_points`` points."""
        x, y = _blocked(steps, values, self.th.trend_blocks)
        # Too few finite values (e.g. log of a non-positive std) is no evidence of a trend.
        t = trend_test(x, y) if len(y) >= 3 else Trend(n=len(y), s=0.0, z=0.0, p=1.0, slope=0.0)
        change = t.slope * (self.stop - (self.start if start is None else start))
        return t, change / spread if spread > 0 else (0.0 if change == 0 else math.copysign(math.inf, change))

    def _direction(self, t: Trend, rel_change: float, min_change: float, alpha: float | None = None) -> int:
        if t.p < (self.th.trend_alpha if alpha is None else alpha) and abs(rel_change) >= min_change:
            return 1 if t.slope > 0 else -1
        return 0

    def _spread(self, name: str) -> float:
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
        t, rel = self.trend(steps, values, self._spread(name), start)
        direction = self._direction(t, rel, self.th.trend_min_change, self.th.trend_alpha / tests)
        return direction, {"mk_z": t.z, "p": t.p, "theil_sen_slope_per_step": t.slope, "change_per_spread": rel,
                           "points": len(values), "tested_blocks": t.n}

    # ---- the checks
    def entropy_level(self) -> None:
        got = self.entropy_or_missing("entropy_high", "entropy_low")
        if got is None:
            return
        _, norm = got
        med = float(np.median(norm))
        raw = self.level("policy/entropy")
        nums = {"entropy_median": raw, "normalised": med, "floor": self.scale.floor, "ceiling": self.scale.ceiling}
        high, low = med >= self.th.entropy_high_norm, med <= self.th.entropy_low_norm
        self.results["entropy_high"] = Evidence(
            "entropy_high", "policy/entropy", high, nums, (self.start, self.stop),
            f"normalised entropy {_fmt(med)} {'≥' if high else '<'} {self.th.entropy_high_norm}: "
            + ("the policy is near the widest its std bounds allow" if high else "not near the ceiling"))
        self.results["entropy_low"] = Evidence(
            "entropy_low", "policy/entropy", low, nums, (self.start, self.stop),
            f"normalised entropy {_fmt(med)} {'≤' if low else '>'} {self.th.entropy_low_norm}: "
            + ("the policy is at its floor, near deterministic" if low else "not at the floor"))

    def entropy_trend(self) -> None:
        if not self.scale.usable and self.run.get("policy/entropy") is not None:
            # Floor and ceiling unknown: a direction needs no scale, so judge it in nats against
            # the run's own spread of the entropy, like any other signal; say so.
            steps, raw = self.points("policy/entropy")
            if len(raw) >= self.th.min_points:
                t, rel = self.trend(steps, raw, self._spread("policy/entropy"))
                direction = self._direction(t, rel, self.th.trend_min_change)
                nums = {"mk_z": t.z, "p": t.p, "change_per_spread": rel, "tested_blocks": t.n}
                for name, sign, word in (("entropy_rising", 1, "rising"), ("entropy_falling", -1, "falling")):
                    holds = direction == sign
                    self.results[name] = Evidence(
                        name, "policy/entropy (nats; floor/ceiling unknown)", holds, nums, (self.start, self.stop),
                        f"Mann–Kendall p = {_fmt(t.p)}, change {_fmt(rel)} of the run's entropy spread: entropy "
                        + (word if holds else f"not significantly {word}"))
                return
        got = self.entropy_or_missing("entropy_rising", "entropy_falling")
        if got is None:
            return
        steps, norm = got
        t, change = self.trend(steps, norm, 1.0)
        direction = self._direction(t, change, self.th.trend_min_change_entropy)
        nums = {"mk_z": t.z, "p": t.p, "change_normalised": change, "tested_blocks": t.n}
        for name, sign, word in (("entropy_rising", 1, "rising"), ("entropy_falling", -1, "falling")):
            holds = direction == sign
            self.results[name] = Evidence(
                name, "policy/entropy", holds, nums, (self.start, self.stop),
                f"Mann–Kendall p = {_fmt(t.p)}, change {_fmt(change)} of the floor–ceiling range: entropy "
                + (word if holds else f"not significantly {word}"))

    # ---- the run as a whole: now against its early stretch
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

    def _shift_evidence(self, check: str, name: str, up: bool, transform=None, unit: float | None = None,
                        min_change: float | None = None, signal: str | None = None) -> Evidence:
        """Has ``name`` moved ``up`` (or down) from the run's early stretch to now, significantly and by enough?"""
        th = self.th
        early_rng, now_rng, early, now = self.early_and_now(name)
        window = (self.run_start, self.stop)
        if len(early) < th.min_points or len(now) < th.min_points:
            series = self.run.get(name)
            if series is None or len(series) == 0:
                return self._missing(check, name, f"not logged: {name}")
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
            f"since the run's early stretch: mean {_fmt(sh.mean_early)} in steps {early_rng[0]}–{early_rng[1]} "
            f"→ {_fmt(sh.mean_late)} in steps {now_rng[0]}–{now_rng[1]} (Mann–Whitney p = {_fmt(p)}, "
            f"change {_fmt(rel)} {unit_word})")

    def so_far(self) -> None:
        self.results["score_rose_so_far"] = self._shift_evidence("score_rose_so_far", "episode/score", up=True)
        if self.scale.usable:
            self.results["entropy_fell_so_far"] = self._shift_evidence(
                "entropy_fell_so_far", "policy/entropy", up=False, transform=self.scale.normalise, unit=1.0,
                min_change=self.th.trend_min_change_entropy)
        else:
            self.results["entropy_fell_so_far"] = self._shift_evidence(
                "entropy_fell_so_far", "policy/entropy", up=False,
                signal="policy/entropy (nats; floor/ceiling unknown)")

    def sigma_pinned(self) -> None:
        for check, frac_name, side in (("sigma_at_ceiling", "policy/std_at_upper_frac", "upper"),
                                       ("sigma_at_floor", "policy/std_at_lower_frac", "lower")):
            frac = self.level(frac_name)
            if frac is not None:
                holds = frac >= self.th.pinned_frac
                self.results[check] = Evidence(
                    check, frac_name, holds, {"frac_at_bound": frac}, (self.start, self.stop),
                    f"{frac:.0%} of std components at the {side} bound "
                    f"({'≥' if holds else '<'} {self.th.pinned_frac:.0%}): "
                    f"σ {'is' if holds else 'is not'} pinned there")
                continue
            self.results[check] = self._sigma_pinned_fallback(check, side, frac_name)

    def _sigma_pinned_fallback(self, check: str, side: str, frac_name: str) -> Evidence:
        """Normalised mean log σ (from std_mean, else from a Gaussian entropy) near the bound."""
        std = self.level("policy/std_mean")
        norm, signal = None, None
        if std is not None:
            got = self.scale.normalise_logstd(np.array([std]))
            if got is not None:
                norm, signal = float(got[0]), "policy/std_mean"
        if norm is None and self.scale.dist in GAUSSIAN_DISTS:
            got = self.norm_entropy()
            if got is not None and len(got[1]) >= self.th.min_points:
                norm, signal = float(np.median(got[1])), "policy/entropy (Gaussian: mean log σ)"
        if norm is None:
            return self._missing(check, frac_name,
                                 f"{self._why_missing(frac_name)}; no std_mean with known bounds either")
        edge = self.th.pinned_logstd_norm
        holds = norm >= edge if side == "upper" else norm <= 1.0 - edge
        return Evidence(
            check, signal, holds, {"logstd_normalised": norm}, (self.start, self.stop),
            f"mean log σ at {norm if abs(norm) >= 0.005 else 0.0:.2f} of its range ({frac_name} not logged): "
            f"σ {'is' if holds else 'is not'} at the {side} bound on average")

    def sigma_rising(self) -> None:
        steps, std = self.points("policy/std_mean")
        norm = self.scale.normalise_logstd(std) if len(std) else None
        if norm is not None and len(norm) >= self.th.min_points:
            t, change = self.trend(steps, norm, 1.0)
            direction = self._direction(t, change, self.th.trend_min_change_entropy)
            self.results["sigma_rising"] = Evidence(
                "sigma_rising", "policy/std_mean", direction == 1,
                {"mk_z": t.z, "p": t.p, "change_logstd_normalised": change}, (self.start, self.stop),
                f"log σ {'rises' if direction == 1 else 'does not rise significantly'} (p = {_fmt(t.p)}, "
                f"change {_fmt(change)} of its range)")
            return
        rising = self.results["entropy_rising"]
        if self.scale.dist in GAUSSIAN_DISTS and rising.holds is not None:
            self.results["sigma_rising"] = Evidence(
                "sigma_rising", "policy/entropy (Gaussian: tracks mean log σ)", rising.holds, rising.numbers,
                rising.window, f"from the entropy trend (policy/std_mean not usable): {rising.implies}")
            return
        self.results["sigma_rising"] = self._missing(
            "sigma_rising", "policy/std_mean",
            f"{self._why_missing('policy/std_mean')}; entropy trend not usable either")

    def saturated(self) -> None:
        sat = self.level("policy/saturation_frac")
        if sat is None:
            inferred = self._saturation_from_sigma()
            self.results["saturated"] = inferred or self._missing("saturated", "policy/saturation_frac",
                                                                  self._why_missing("policy/saturation_frac"))
            return
        holds = sat >= self.th.saturation_high
        self.results["saturated"] = Evidence(
            "saturated", "policy/saturation_frac", holds, {"saturation_frac": sat}, (self.start, self.stop),
            f"{sat:.0%} of action components at |a| > 0.99 ({'≥' if holds else '<'} {self.th.saturation_high:.0%}): "
            + ("bang-bang actions; the gradient through the mean vanishes there" if holds else "actions not saturated"))

    def _saturation_from_sigma(self) -> Evidence | None:
        """Saturation of a tanh-squashed Gaussian whose σ was read as pinned at its ceiling (not logged).

        With mean log σ at the top of its range every dim is near the clamp, and for a Gaussian
        pre-activation the fraction outside |tanh x| ≤ 0.99 is smallest at μ = 0, so
        erfc(atanh(0.99)/(σ√2)) is a lower bound on what the policy saturates. Marked inferred
        (not decisive): it counts half in the confidence.
        """
        from dreamscope.dists import SATURATION_THRESHOLD

        ceiling = self.results.get("sigma_at_ceiling")
        lo, hi = self.scale.logstd_lo, self.scale.logstd_hi
        if (self.scale.dist != "tanh_normal" or ceiling is None or ceiling.holds is not True
                or "logstd_normalised" not in ceiling.numbers or lo is None or hi is None):
            return None
        log_std = lo + ceiling.numbers["logstd_normalised"] * (hi - lo)
        std = math.exp(log_std)
        sat = math.erfc(math.atanh(SATURATION_THRESHOLD) / (std * math.sqrt(2.0)))
        holds = sat >= self.th.saturation_high
        return Evidence(
            "saturated", f"inferred from {ceiling.signal}", holds, {"saturation_frac_lower_bound": sat, "std": std},
            (self.start, self.stop),
            f"policy/saturation_frac not logged; a tanh-squashed Gaussian at σ ≈ {std:.3g} (log σ {log_std:.2f}, read "
            f"off {ceiling.signal}) puts ≥ {sat:.0%} of action components at |a| > 0.99 (μ = 0 is the least): "
            + ("bang-bang actions" if holds else "not saturated at μ = 0"), decisive=False)

    def bonus_drift(self) -> None:
        """Does the bonus's mean push on log σ outweigh the policy gradient's over this window?"""
        th = self.th
        _, pg = self.points("actor/logstd_push_pg")
        _, ent = self.points("actor/logstd_push_ent")
        eta = self.meta.get("eta")
        push: Evidence | None = None
        ent_known = len(ent) >= th.min_points or (eta is not None and self.scale.dist in GAUSSIAN_DISTS)
        if len(pg) >= th.min_points and ent_known:
            m_pg = float(pg.mean())
            blocks = [b.mean() for b in np.array_split(pg, min(th.drift_blocks, len(pg)))]
            se = float(np.std(blocks, ddof=1) / math.sqrt(len(blocks))) if len(blocks) > 1 else math.inf
            if len(ent) >= th.min_points:
                m_ent, ent_src = float(ent.mean()), "actor/logstd_push_ent"
            else:
                m_ent = -float(eta)
                ent_src = f"−η from meta (η = {eta}; a Gaussian entropy pushes exactly −η per dim)"
            ratio = abs(m_pg) / abs(m_ent) if m_ent != 0 else math.inf
            up = m_ent < 0
            holds = up and ratio < th.drift_dominance
            margin = abs(m_ent) * th.drift_dominance
            if holds:
                decisive = abs(m_pg) + th.drift_z * se < margin
            else:
                decisive = abs(m_pg) - th.drift_z * se > margin or not up
            direction = "up" if m_pg < 0 else "down"
            if m_ent == 0:
                what = (f"mean PG push on log σ {_fmt(m_pg)} ± {_fmt(se)} (pointing {direction}); the bonus is off "
                        "(η = 0): it cannot be what moves σ")
            else:
                what = (f"mean PG push on log σ {_fmt(m_pg)} ± {_fmt(se)} (pointing {direction}) "
                        f"vs the bonus's {_fmt(m_ent)} (pointing {'up' if up else 'down'}): |PG|/|bonus| = "
                        f"{_fmt(ratio)} "
                        + (f"< {th.drift_dominance:g}, so the bonus is what moves σ" if holds
                           else f"≥ {th.drift_dominance:g}, so the policy gradient decides where σ goes" if up
                           else "— the bonus pushes σ down here")
                        + ("" if decisive else f" (within {th.drift_z:g} standard errors: not decisive)"))
            push = Evidence(
                "bonus_drift", f"actor/logstd_push_pg vs {ent_src}", holds,
                {"push_ent_mean": m_ent, "push_pg_mean": m_pg, "push_pg_se": se, "pg_to_ent": ratio,
                 "updates": len(pg), "batch_means": len(blocks)},
                (self.start, self.stop), what, decisive)
        drift = self.level("actor/ent_to_pg_drift_ratio")
        ratio_ev = None
        if drift is not None:
            ratio_holds = drift >= th.drift_ratio
            ratio_ev = Evidence(
                "bonus_drift", "actor/ent_to_pg_drift_ratio", ratio_holds, {"drift_ratio": drift},
                (self.start, self.stop),
                f"|mean ∇ηH| / |mean ∇PG| = {_fmt(drift)} ({'≥' if ratio_holds else '<'} {th.drift_ratio:g}): "
                + ("the bonus's gradient drift is the larger" if ratio_holds
                   else "the policy gradient's drift is the larger")
                + " (whole actor gradient, not only σ)", decisive=False)
        if push is not None:
            if ratio_ev is not None and ratio_ev.holds != push.holds:
                push.implies += f"; the whole-gradient drift ratio {_fmt(drift)} disagrees — the log-σ pushes decide"
                push.numbers["drift_ratio"] = drift
                push.decisive = False
            self.results["bonus_drift"] = push
        elif ratio_ev is not None:
            self.results["bonus_drift"] = ratio_ev
        else:
            self.results["bonus_drift"] = self._missing(
                "bonus_drift", "actor/logstd_push_pg, actor/logstd_push_ent, actor/ent_to_pg_drift_ratio",
                f"{self._why_missing('actor/logstd_push_pg', 'actor/logstd_push_ent')} "
                f"(and no η in meta), and {self._why_missing('actor/ent_to_pg_drift_ratio')}")

    def per_step_ratio(self) -> None:
        ratio = self.level("actor/ent_to_pg_ratio")
        if ratio is None:
            self.results["per_step_ratio"] = self._missing("per_step_ratio", "actor/ent_to_pg_ratio",
                                                           self._why_missing("actor/ent_to_pg_ratio"))
            return
        _, cos = self.points("actor/grad_cos")
        nums = {"ratio_median": ratio}
        if len(cos):
            nums.update(cos_min=float(cos.min()), cos_max=float(cos.max()))
        self.results["per_step_ratio"] = Evidence(
            "per_step_ratio", "actor/ent_to_pg_ratio, actor/grad_cos", ratio >= self.th.drift_ratio, nums,
            (self.start, self.stop),
            f"per-step ‖∇ηH‖/‖∇PG‖ median {_fmt(ratio)}: secondary only — the PG's per-step norm is mostly "
            "noise that cancels over updates, so the drift decides, not this", decisive=False)

    def adv_weak(self) -> None:
        th = self.th
        norm = self.level("adv_norm/abs_mean")
        raw = self.level("adv/abs_mean")
        scale = self.level("return/scale")
        if norm is not None:
            value, how = norm, "adv_norm/abs_mean"
        elif raw is not None and scale is not None:
            value, how = raw / max(self.return_limit, scale), "adv/abs_mean / max(limit, return/scale)"
        elif raw is not None and raw < th.adv_weak_norm and self.return_limit >= 1:
            value = raw
            how = "adv/abs_mean (the normalised value is at most this: it is divided by max(limit, S) ≥ 1)"
        else:
            self.results["adv_weak"] = self._missing(
                "adv_weak", "adv_norm/abs_mean",
                f"{self._why_missing('adv_norm/abs_mean')}; "
                "raw advantages alone cannot be put next to the return scale")
            return
        holds = value < th.adv_weak_norm
        nums = {"adv_norm_abs_mean": value, "adv_abs_mean": raw, "return_scale": scale}
        self.results["adv_weak"] = Evidence(
            "adv_weak", how, holds, {k: v for k, v in nums.items() if v is not None}, (self.start, self.stop),
            f"|advantage| in return-scale units {_fmt(value)} ({'<' if holds else '≥'} {th.adv_weak_norm}): "
            + ("≈ 0 — almost no learning signal" if holds else "the advantages carry signal"))

    def return_scale_under(self) -> None:
        scale = self.level("return/scale")
        if scale is None:
            self.results["return_scale_under"] = self._missing("return_scale_under", "return/scale",
                                                               self._why_missing("return/scale"))
            return
        ratio = scale / self.return_limit
        holds = ratio < self.th.return_scale_under
        self.results["return_scale_under"] = Evidence(
            "return_scale_under", "return/scale", holds, {"return_scale": scale, "limit": self.return_limit},
            (self.start, self.stop),
            f"S = {_fmt(scale)} is {'under' if holds else 'at or over'} its limit {self.return_limit:g}: "
            + ("the normaliser is inactive — imagined returns barely spread" if holds else "returns spread"))

    def head_misses(self) -> None:
        hit = self.level("reward/head_hit_rate")
        replay = self.level("reward/replay_nonzero_frac")
        if replay is not None and replay == 0.0:
            self.results["head_misses"] = Evidence(
                "head_misses", "reward/replay_nonzero_frac", True, {"replay_nonzero_frac": 0.0},
                (self.start, self.stop),
                "replay holds no reward events at all: there is nothing for the reward head to learn")
            return
        if hit is None:
            self.results["head_misses"] = self._missing("head_misses", "reward/head_hit_rate",
                                                        self._why_missing("reward/head_hit_rate"))
            return
        if replay is not None and replay > self.th.sparse_reward_max_frac:
            self.results["head_misses"] = Evidence(
                "head_misses", "reward/replay_nonzero_frac", None, {"replay_nonzero_frac": replay, "head_hit_rate": hit},
                (self.start, self.stop),
                f"rewards are dense ({replay:.0%} of replay steps, > {self.th.sparse_reward_max_frac:.0%}): "
                "the check of sparse reward events does not apply")
            return
        holds = hit < self.th.head_hit_min
        nums = {"head_hit_rate": hit}
        if replay is not None:
            nums["replay_nonzero_frac"] = replay
        self.results["head_misses"] = Evidence(
            "head_misses", "reward/head_hit_rate", holds, nums, (self.start, self.stop),
            f"the reward head hits {hit:.0%} of the replay's reward events "
            + (f"(< {self.th.head_hit_min:.0%}): imagined returns miss the sparse rewards" if holds
               else f"(≥ {self.th.head_hit_min:.0%}): it predicts them"))

    def critic_trivial(self) -> None:
        ev = self.level("value/explained_var")
        if ev is None:
            self.results["critic_trivial"] = self._missing("critic_trivial", "value/explained_var",
                                                           self._why_missing("value/explained_var"))
            return
        holds = ev >= self.th.critic_trivial_ev
        self.results["critic_trivial"] = Evidence(
            "critic_trivial", "value/explained_var", holds, {"explained_var": ev}, (self.start, self.stop),
            f"critic explains {ev:.0%} of the λ-return variance "
            + (f"(≥ {self.th.critic_trivial_ev:.0%}): advantages keep ≤ {1 - ev:.0%} of it" if holds
               else "— it leaves the advantages their variance"))

    def score_trends(self) -> None:
        direction, nums = self.signal_trend("episode/score")
        window = (self.start, self.stop)
        for check, sign, word in (("score_rising", 1, "rise"), ("score_falling", -1, "fall")):
            if direction is None:
                self.results[check] = Evidence(check, "episode/score", None, {}, window,
                                               self._why_missing("episode/score"))
                continue
            self.results[check] = Evidence(
                check, "episode/score", direction == sign, nums, window,
                f"score {'rises' if direction == 1 else 'falls' if direction == -1 else 'does not ' + word} "
                f"in this window (Mann–Kendall p = {_fmt(nums['p'])}, "
                f"Theil–Sen change {_fmt(nums['change_per_spread'])} of its spread)")

    def signal_rising(self) -> None:
        names = ("episode/score", "adv_norm/abs_mean", "reward/head_hit_rate", "return/scale")
        rising, decided = [], []
        for name in names:
            direction, _ = self.signal_trend(name, tests=len(names))
            if direction is not None:
                decided.append(name)
                if direction == 1:
                    rising.append(name)
        if not decided:
            self.results["signal_rising"] = self._missing("signal_rising", ", ".join(names), self._why_missing(*names))
            return
        self.results["signal_rising"] = Evidence(
            "signal_rising", ", ".join(decided), bool(rising), {"rising": len(rising), "tested": len(decided)},
            (self.start, self.stop),
            (f"rising: {', '.join(rising)}" if rising else f"none of {', '.join(decided)} rises significantly")
            + f" (Mann–Kendall at α = {self.th.trend_alpha:g}/{len(names)}, any of {len(names)} signals counts)")

    def dips(self) -> None:
        got = self.entropy_or_missing("dips")
        if got is None:
            return
        steps, y = got
        th = self.th
        ref = float(np.percentile(y, th.dip_reference_pct))
        below = (y < ref - th.dip_depth).astype(np.int8)
        edges = np.flatnonzero(np.diff(np.concatenate([[0], below, [0]])))
        found = []
        for a, b in zip(edges[::2], edges[1::2]):
            came_from_top = np.any(y[:a] >= ref - th.dip_recover)
            recovered = np.any(y[b:] >= ref - th.dip_recover)
            if b - a >= th.dip_min_points and came_from_top and recovered:
                found.append((int(steps[a]), int(steps[b - 1]), float(ref - y[a:b].min())))
        nums = {"dips": len(found), "reference_normalised": ref}
        if found:
            nums.update(deepest=max(f[2] for f in found), first_dip_start=found[0][0], first_dip_end=found[0][1])
        self.results["dips"] = Evidence(
            "dips", "policy/entropy", bool(found), nums, (self.start, self.stop),
            (f"{len(found)} dip(s) deeper than {th.dip_depth} of the range that recovered — the policy briefly "
             "committed (a rare reward was learned), then drifted back (it was forgotten)" if found
             else "no dip that recovers"))

    def score_kept(self) -> None:
        """Is the score now no lower than it was between the run's early stretch and this window?"""
        name = "episode/score"
        _, _, _, now = self.early_and_now(name)
        series = self.run.get(name)
        # The best earlier stretch as long as this window: a run that learned and then lost it
        # has not kept its score, whatever it was at the start.
        before, width = np.empty(0), max(self.stop - self.start, 1)
        for end in range(self.start, self.run_start, -width) if series is not None else ():
            v = series.window(max(end - width, self.run_start), end).values
            v = v[np.isfinite(v)]
            if len(v) >= self.th.min_points and (not len(before) or v.mean() > before.mean()):
                before = v
        if len(now) < self.th.min_points or len(before) < self.th.min_points:
            self.results["score_kept"] = self._missing(
                "score_kept", name, f"no earlier stretch of {width} steps with {self.th.min_points} scores before "
                f"step {self.start}, or {len(now)} score(s) now")
            return
        sh = shift_test(before, now)
        holds = sh.p_down >= self.th.trend_alpha
        self.results["score_kept"] = Evidence(
            "score_kept", name, holds, {"mean_before": sh.mean_early, "mean_now": sh.mean_late, "p": sh.p_down},
            (self.run_start, self.stop),
            f"score mean {_fmt(sh.mean_late)} now vs {_fmt(sh.mean_early)} in the best earlier stretch (Mann–Whitney p = "
            f"{_fmt(sh.p_down)} for a fall): " + ("kept" if holds else "fell back"))

    def actor_grad_dead(self) -> None:
        """Is the actor's gradient at numerical zero, or fallen by orders of magnitude since the run's start?"""
        th = self.th
        name = next((n for n in ("actor/grad_norm", "actor/pg_grad_norm") if self.run.get(n) is not None),
                    "actor/grad_norm")
        now = self.level(name)
        if now is None:
            self.results["actor_grad_dead"] = self._missing("actor_grad_dead", name, self._why_missing(name))
            return
        _, _, early, _ = self.early_and_now(name)
        early_level = float(np.median(np.abs(early))) if len(early) else math.nan
        fall = abs(now) / early_level if early_level > 0 else math.nan
        zero = abs(now) <= th.grad_dead_abs
        fell = math.isfinite(fall) and fall <= th.grad_dead_fall
        holds = zero or fell
        nums = {"grad_norm_median": now, "grad_norm_early": early_level, "fall": fall}
        self.results["actor_grad_dead"] = Evidence(
            "actor_grad_dead", name, holds, nums, (self.start, self.stop),
            f"{name} median {_fmt(now)} "
            + (f"≤ {th.grad_dead_abs:g}: numerical zero — no gradient reaches the actor" if zero else
               f"= {_fmt(fall)} of its early {_fmt(early_level)} (≤ {th.grad_dead_fall:g}): fallen by orders of "
               "magnitude — almost no gradient reaches the actor" if fell else
               "is alive"))

    def reward_seen(self) -> None:
        """Has the log held a reward event (a positive score; any non-zero one on a dense task) by now?"""
        kind = task_rewards(self.meta)
        found = {n: self.run.get(n) for n in ("episode/score", "episode/score_max", "episode/win")}
        values = {n: s.window(self.run_start, self.stop).values for n, s in found.items() if s is not None}
        values = {n: v[np.isfinite(v)] for n, v in values.items()}
        values = {n: v for n, v in values.items() if len(v)}
        if not values:
            self.results["reward_seen"] = self._missing("reward_seen", "episode/score",
                                                        self._why_missing("episode/score"))
            return
        best = max(float(v.max()) for v in values.values())
        nonzero = any(np.any(v != 0) for v in values.values())
        nums = {"best_score": best, "episodes": sum(len(v) for v in values.values())}
        signal = ", ".join(values)
        window = (self.run_start, self.stop)
        if best > 0:
            holds, why = True, f"a positive score ({_fmt(best)}) by step {self.stop}: the policy has met a reward"
        elif kind == "dense" and nonzero:
            holds, why = True, f"the task ({self.meta.get('task')}) pays a reward every step: scores up to {_fmt(best)}"
        elif not nonzero:
            holds, why = False, "every score is 0: the log never held a reward"
        elif kind == "sparse":
            holds, why = False, (f"no positive score by step {self.stop} (best {_fmt(best)}) on a task whose reward "
                                 f"is a goal event ({self.meta.get('task')}): the goal was never reached")
        else:
            holds, why = None, (f"no positive score by step {self.stop} (best {_fmt(best)}), and the task is not "
                                "known: a cost-only task (Pendulum) pays no positive reward, a goal task (MountainCar) "
                                "pays one at the goal; pass --task to tell them apart")
        self.results["reward_seen"] = Evidence("reward_seen", signal, holds, nums, window, why)

    def compute(self) -> dict[str, Evidence]:
        self.entropy_level()
        self.entropy_trend()
        self.sigma_pinned()
        self.sigma_rising()
        self.saturated()
        self.bonus_drift()
        self.per_step_ratio()
        self.adv_weak()
        self.return_scale_under()
        self.head_misses()
        self.critic_trivial()
        self.score_trends()
        self.so_far()
        self.signal_rising()
        self.dips()
        self.actor_grad_dead()
        self.reward_seen()
        self.score_kept()
        return self.results


# --------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Fire:
    factor: float  # confidence multiplier (1 measured, less when inferred or within noise)
    note: str | None = None  # a caveat: what was inferred or missing
    reading: str | None = None  # how the verdict was reached, when the rule has several ways; joins the summary
    support: tuple[tuple[str, bool], ...] | None = None  # replaces the rule's supporting checks for this way


@dataclass(frozen=True)
class _Rule:
    code: str
    fires: Callable[[dict[str, Evidence], Thresholds], _Fire | None]
    required: tuple[str, ...]  # checks shown as the deciding evidence
    support: tuple[tuple[str, bool], ...]  # (check, value that supports the verdict)
    context: tuple[str, ...] = ()  # shown, never scored


def _h(c: dict[str, Evidence], name: str) -> bool | None:
    return c[name].holds


def _learning(c) -> bool:
    """The score rises now, or has risen since the run's early stretch."""
    return _h(c, "score_rising") is True or (_h(c, "score_rose_so_far") is True and _h(c, "score_kept") is not False)


def _fires_pinned_learning(c, th):
    if not _learning(c) or _h(c, "reward_seen") is False:
        return None
    fire = _bonus_holds_sigma(c, th)
    if fire is None:
        return None
    return _Fire(fire.factor, fire.note,
                 "The bonus holds σ at (or towards) its ceiling, yet the score rises: with σ pinned the mean still "
                 "sets each action, so the policy learns under the bonus — the entropy is held by the bonus but "
                 "does not block learning.")


def _fires_bonus(c, th):
    return None if _learning(c) else _bonus_holds_sigma(c, th)


def _bonus_holds_sigma(c, th):
    if _h(c, "actor_grad_dead") is True:
        return None  # nothing reaches the actor: the bonus moves nothing either
    sigma_up = _h(c, "sigma_at_ceiling") is True or _h(c, "sigma_rising") is True
    if _h(c, "saturated") is False and c["saturated"].decisive and _no_signal_core(c) is not None:
        # The bonus may be what moves σ, but with the actions measured unsaturated the policy
        # gradient through the mean is intact: it is not what blocks learning. The advantages
        # carry nothing (and a mechanism says why), so the missing signal is the answer.
        return None
    if _h(c, "bonus_drift") is True and sigma_up:
        return _Fire(1.0 if c["bonus_drift"].decisive else th.confidence_within_noise)
    # σ in the top quarter of its range with bang-bang actions, and the bonus's drift the larger:
    # σ is on its way to the clamp (the last stretch is slow where log σ is squashed into its
    # bounds, so neither "pinned" nor a significant rise shows yet), and it is the bonus that
    # holds it there. Saturation ≥ ½ needs σ several times the action range, so an unsquashed
    # σ ≤ 1 head does not get here from σ alone.
    if _h(c, "bonus_drift") is True and _h(c, "entropy_high") is True and _h(c, "saturated") is True:
        return _Fire(1.0 if c["bonus_drift"].decisive else th.confidence_within_noise,
                     "σ is in the top quarter of its range and the actions are bang-bang, but σ is not yet pinned "
                     "at the clamp nor rising significantly: the bonus's drift is what holds it there")
    if _h(c, "bonus_drift") is None and _h(c, "sigma_at_ceiling") is True and _h(c, "saturated") is True:
        sat_note = ("" if c["saturated"].decisive else
                    "; saturation not logged either: read off σ (" + _fmt(c["saturated"].numbers.get(
                        "saturation_frac_lower_bound", math.nan)) + " at μ = 0)")
        return _Fire(th.confidence_inferred,
                     "drift not logged: inferred from σ pinned at its ceiling with saturated actions — the "
                     "pre-tanh bonus pushes log σ up by η per dim at every σ, and nothing else pins it there"
                     + sat_note,
                     "σ is pinned at its clamp and the bonus is the likely cause; the drift that would prove it "
                     "was not logged, so confidence is lowered.")
    # σ read off the entropy (or std) at the top of its range on a head that cannot saturate
    # (a bounded normal, σ ≤ 1), rewards reaching the log, and the score not rising: nothing but
    # the bonus pushes a Gaussian's log σ up by the same amount at every σ.
    if (_h(c, "bonus_drift") is None and _h(c, "sigma_at_ceiling") is True and _h(c, "saturated") is None
            and _h(c, "reward_seen") is not False):
        level = c["sigma_at_ceiling"].numbers.get("logstd_normalised")
        at = f" ({level:.2f} of its log range)" if level is not None else ""
        return _Fire(th.confidence_inferred,
                     "drift and saturation not logged: inferred from σ at the top of its range" + at
                     + " while the score does not rise",
                     f"σ sits at the top of its range{at} and the score does not rise: the bonus, which pushes log σ "
                     "up by η per dimension at every σ, is what holds it there; the drift that would prove it was "
                     "not logged, so confidence is lowered.")
    return None


def _fires_collapse(c, th):
    if _h(c, "actor_grad_dead") is True:
        return None  # the entropy did not stop the learning; nothing reaches the actor
    if not (_h(c, "entropy_low") is True or _h(c, "sigma_at_floor") is True):
        return None
    rose = _h(c, "score_rose_so_far")
    level = c["entropy_low"].numbers.get("normalised") if _h(c, "entropy_low") is not None else None
    at = f" ({level + 0.0 if abs(level) >= 0.005 else 0.0:.2f} of its floor–ceiling range)" if level is not None else ""
    if rose is None:
        why = c["score_rose_so_far"].implies
        return _Fire(th.confidence_inferred,
                     f"episode/score: {why} — whether returns rose before the floor (convergence) could not be decided",
                     f"The entropy is at its floor{at}; returns could not be checked ({why}), so convergence is not "
                     "ruled out: confidence lowered.")
    return None if rose else _Fire(1.0, None, f"The entropy is at its floor{at} and the score has not risen since "
                                               "the run's early stretch.")


def _fires_dips(c, th):
    return (_Fire(1.0) if _h(c, "dips") is True and _h(c, "score_rising") is not True
            and _h(c, "actor_grad_dead") is not True else None)


def _no_signal_core(c) -> str | None:
    """"measured" / "inferred" when the advantages carry no signal and a mechanism says why, else None."""
    if _h(c, "signal_rising") is True:
        return None
    mechanisms = sum(_h(c, n) is True for n in ("return_scale_under", "head_misses", "critic_trivial"))
    if _h(c, "adv_weak") is True and mechanisms >= 1:
        return "measured"
    if _h(c, "adv_weak") is None and mechanisms >= 2:
        return "inferred"
    return None


def _fires_no_signal(c, th):
    if _h(c, "actor_grad_dead") is True:
        dead = c["actor_grad_dead"].numbers
        return _Fire(1.0, None,
                     f"The actor's gradient has died (median {_fmt(dead['grad_norm_median'])}, early "
                     f"{_fmt(dead['grad_norm_early'])}): no learning signal reaches the policy, so the entropy stays "
                     "where it was when the gradient died — a symptom, not what blocks learning.",
                     (("entropy_falling", False), ("score_rising", False), ("adv_weak", True),
                      ("signal_rising", False)))
    if _h(c, "reward_seen") is False:
        return _Fire(1.0, None,
                     f"{c['reward_seen'].implies}. A plateau without a reward event is no signal yet, not convergence.",
                     (("score_rising", False), ("adv_weak", True), ("return_scale_under", True),
                      ("signal_rising", False)))
    core = _no_signal_core(c)
    if core is None:
        return None
    if core == "inferred":
        return _Fire(th.confidence_inferred,
                     "advantage scale not logged: inferred from the return scale, reward head and critic")
    if _h(c, "bonus_drift") is True:
        if _h(c, "sigma_at_ceiling") is True or _h(c, "sigma_rising") is True:
            sat = c["saturated"].numbers.get("saturation_frac")
            only = f"only {sat:.0%} of the actions are saturated" if sat is not None else "the actions are not saturated"
            return _Fire(1.0, f"the bonus is what moves σ (up, to or towards its ceiling), but {only}, "
                              "so the policy gradient through the mean is intact: the bonus is not what "
                              "blocks learning, the missing signal is — lowering η alone would not help",
                         "The bonus holds σ at its ceiling only because nothing else pushes on it: the advantages "
                         "are ≈ 0.")
        return _Fire(1.0, "the bonus outweighs the PG's drift on σ, yet σ is neither at its ceiling nor rising: "
                          "if σ starts climbing to the ceiling with saturated actions this becomes BONUS_DOMINATES")
    return _Fire(1.0)


def _fires_exploring(c, th):
    return _Fire(1.0) if _h(c, "entropy_high") is True and _h(c, "signal_rising") is True else None


#: What supports "converged to a plateau": the whole-run movement and the present flatness.
_PLATEAU_SUPPORT = (("entropy_fell_so_far", True), ("entropy_high", False), ("entropy_rising", False),
                    ("score_falling", False), ("saturated", False), ("sigma_at_ceiling", False))


def _fires_healthy(c, th):
    if _h(c, "score_rising") is True and _h(c, "entropy_high") is not True and _h(c, "entropy_rising") is not True:
        return _Fire(1.0)
    if _h(c, "entropy_low") is True and _h(c, "score_rose_so_far") is True:
        rose, level = c["score_rose_so_far"].numbers, c["entropy_low"].numbers["normalised"]
        return _Fire(1.0, "entropy at its floor after returns rose: converged",
                     f"Converged: the entropy sits at its floor ({level:.2f} of its floor–ceiling range) after the "
                     f"score rose (mean {_fmt(rose['mean_early'])} → {_fmt(rose['mean_now'])}).")
    # The run as a whole: returns rose since its early stretch while the entropy fell, and now
    # neither moves the wrong way (score not falling, entropy not rising, not at the ceiling).
    # A converged run's late windows are flat, so judging them alone would leave nothing to say.
    if (_h(c, "score_rose_so_far") is True and _h(c, "entropy_fell_so_far") is True
            and _h(c, "entropy_high") is not True and _h(c, "entropy_rising") is not True
            and _h(c, "score_falling") is not True):
        rose, fell = c["score_rose_so_far"].numbers, c["entropy_fell_so_far"].numbers
        level = c["entropy_high"].numbers.get("normalised") if _h(c, "entropy_high") is not None else None
        where = ("" if level is None else
                 f", now at {level:.2f} of its floor–ceiling range" if level > th.entropy_low_norm else
                 ", now at its floor")
        reading = (f"Converged to a plateau: over the run the score rose (mean {_fmt(rose['mean_early'])} → "
                   f"{_fmt(rose['mean_now'])}) while the entropy fell ({_fmt(fell['mean_early'])} → "
                   f"{_fmt(fell['mean_now'])}{' normalised' if level is not None else ' nats'}{where}); "
                   "in this window neither moves the wrong way.")
        if _h(c, "entropy_high") is None:
            return _Fire(th.confidence_inferred,
                         "entropy floor/ceiling unknown: its level could not be checked, only that it fell "
                         "(pass --action-dim and --dist)", reading, _PLATEAU_SUPPORT)
        return _Fire(1.0, None, reading, _PLATEAU_SUPPORT)
    return None


#: Priority order: a cause the run shows beats a symptom, a symptom beats "expected".
RULES: tuple[_Rule, ...] = (
    _Rule("PINNED_LEARNING", _fires_pinned_learning, ("bonus_drift", "sigma_at_ceiling", "score_rising",
                                                      "score_rose_so_far"),
          (("saturated", True), ("entropy_high", True), ("reward_seen", True), ("adv_weak", False))),
    _Rule("BONUS_DOMINATES", _fires_bonus, ("bonus_drift", "sigma_at_ceiling", "sigma_rising"),
          (("saturated", True), ("entropy_high", True), ("adv_weak", True), ("score_rising", False)),
          ("per_step_ratio", "dips", "return_scale_under", "head_misses")),
    _Rule("COLLAPSE", _fires_collapse, ("entropy_low", "sigma_at_floor", "score_rose_so_far"),
          (("sigma_at_floor", True), ("entropy_low", True), ("score_rising", False), ("entropy_falling", True))),
    _Rule("TRANSIENT_DIPS", _fires_dips, ("dips", "score_rising"),
          (("head_misses", True), ("adv_weak", True), ("entropy_high", True))),
    _Rule("NO_SIGNAL", _fires_no_signal, ("actor_grad_dead", "reward_seen", "adv_weak", "return_scale_under",
                                          "head_misses", "critic_trivial"),
          (("return_scale_under", True), ("head_misses", True), ("critic_trivial", True), ("score_rising", False),
           ("entropy_falling", False), ("sigma_at_ceiling", False)),
          ("bonus_drift", "signal_rising")),
    _Rule("EXPLORING", _fires_exploring, ("entropy_high", "signal_rising"),
          (("score_rising", True), ("bonus_drift", False), ("saturated", False), ("adv_weak", False))),
    _Rule("HEALTHY", _fires_healthy, ("score_rising", "entropy_high", "entropy_low", "score_rose_so_far",
                                      "entropy_fell_so_far", "entropy_rising", "score_falling"),
          (("entropy_falling", True), ("adv_weak", False), ("saturated", False), ("sigma_at_ceiling", False),
           ("reward_seen", True))),
)
_RULES_BY_CODE = {r.code: r for r in RULES}


def _confidence(rule: _Rule, checks: dict[str, Evidence], factor: float, th: Thresholds,
                support: tuple[tuple[str, bool], ...] | None = None) -> float:
    """Base + span × (agreeing − ½·contradicting)/supporting; undecidable support adds nothing."""
    support = rule.support if support is None else support
    score = 0.0
    for name, expected in support:
        holds = checks[name].holds
        if holds is None:
            continue
        # Evidence that is inferred or within its own noise (not decisive) counts half.
        weight = 1.0 if checks[name].decisive else 0.5
        score += weight if holds == expected else -0.5 * weight
    conf = th.confidence_base + th.confidence_span * score / len(support)
    return float(np.clip(conf * factor, th.confidence_floor, th.confidence_base + th.confidence_span))


def two_answers(code: str, checks: dict[str, Evidence]) -> tuple[str, str]:
    """(entropy_held_by, learning_blocked_by) of a window's verdict; NO_SIGNAL's holder is read off σ."""
    info = VERDICTS[code]
    held = info.entropy_held_by
    if code == "NO_SIGNAL":
        if _h(checks, "entropy_low") is True or _h(checks, "sigma_at_floor") is True:
            held = "floor"
        elif any(_h(checks, n) is True for n in ("sigma_at_ceiling", "entropy_high", "bonus_drift")):
            held = "bonus"
    return held, info.learning_blocked_by


@dataclass
class WindowVerdict:
    index: int
    start: int
    stop: int
    verdict: str
    answer: str
    confidence: float
    notes: list[str]
    checks: dict[str, Evidence]
    reading: str | None = None
    entropy_held_by: str = "unknown"
    learning_blocked_by: str = "unknown"

    def to_dict(self) -> dict:
        return {"index": self.index, "start": self.start, "stop": self.stop, "verdict": self.verdict,
                "answer": self.answer, "confidence": round(self.confidence, 3), "reading": self.reading,
                "entropy_held_by": self.entropy_held_by, "learning_blocked_by": self.learning_blocked_by,
                "notes": self.notes, "checks": {k: v.to_dict() for k, v in self.checks.items()}}


def _decide(index: int, start: int, stop: int, checks: dict[str, Evidence], impossible: bool,
            th: Thresholds) -> WindowVerdict:
    for rule in RULES:
        fire = rule.fires(checks, th)
        if fire is not None:
            conf = _confidence(rule, checks, fire.factor, th, fire.support)
            notes = [fire.note] if fire.note else []
            return WindowVerdict(index, start, stop, rule.code, VERDICTS[rule.code].answer, conf, notes, checks,
                                 fire.reading, *two_answers(rule.code, checks))
    undecided = [c for c in checks.values() if c.holds is None]
    code = "IMPOSSIBLE_ENTROPY" if impossible else "UNDECIDED"
    # Nothing decided: confidence in "undecided" is what fraction of the evidence was there to look at.
    conf = max(th.confidence_floor, (1.0 - len(undecided) / len(checks)) * th.confidence_inferred)
    note = f"no rule's required evidence holds; {len(undecided)} of {len(checks)} checks undecidable"
    return WindowVerdict(index, start, stop, code, VERDICTS[code].answer, conf, [note], checks, None,
                         *two_answers(code, checks))


# --------------------------------------------------------------------------------------
# Diagnosis
# --------------------------------------------------------------------------------------


@dataclass
class Diagnosis:
    """The doctor's answer for a run; ``to_dict()`` is what ``diagnose --json`` prints."""

    verdict: str
    answer: str
    summary: str
    confidence: float
    entropy_held_by: str
    learning_blocked_by: str
    evidence: list[Evidence]
    undecided: list[dict]
    notes: list[str]
    fixes: list[Fix]
    intervention: str
    findings: list[Finding]
    missing_signals: list[dict]
    windows: list[WindowVerdict]
    assumptions: list[str]
    warnings: list[str]
    scale: EntropyScale
    return_limit: float
    run_path: str
    run_format: str
    thresholds: Thresholds

    def to_dict(self) -> dict:
        s = self.scale
        return {
            "run": {"path": self.run_path, "format": self.run_format},
            "verdict": self.verdict,
            "answer": self.answer,
            "summary": self.summary,
            "confidence": round(self.confidence, 3),
            "entropy_held_by": self.entropy_held_by,
            "learning_blocked_by": self.learning_blocked_by,
            "evidence": [e.to_dict() for e in self.evidence],
            "undecided": self.undecided,
            "notes": self.notes,
            "fixes": [{"rank": i + 1, **asdict(f)} for i, f in enumerate(self.fixes)],
            "intervention": self.intervention,
            "findings": [f.to_dict() for f in self.findings],
            "missing_signals": self.missing_signals,
            "windows": [w.to_dict() for w in self.windows],
            "assumptions": self.assumptions,
            "warnings": self.warnings,
            "entropy_scale": {"dist": s.dist, "action_dim": s.action_dim, "floor": s.floor, "ceiling": s.ceiling,
                              "action_bound": s.action_bound, "logstd_lo": s.logstd_lo, "logstd_hi": s.logstd_hi,
                              "source": s.source},
            "return_limit": self.return_limit,
            "thresholds": self.thresholds.to_dict(),
        }


def _step_range(run: Run) -> tuple[int, int]:
    lows = [int(s.steps.min()) for s in run.series.values() if len(s)]
    highs = [int(s.steps.max()) for s in run.series.values() if len(s)]
    if not lows:
        raise DreamscopeError(f"run {run.path}: no metric has any data points; nothing to diagnose")
    return min(lows), max(highs) + 1


def _window_medians(run: Run, name: str, edges: np.ndarray) -> list[float]:
    series = run.get(name)
    out = []
    for a, b in zip(edges[:-1], edges[1:]):
        v = series.window(int(a), int(b)).values
        v = v[np.isfinite(v)]
        out.append(float(np.median(v)) if len(v) else float("nan"))
    return out


def _impossible_finding(run: Run, scale: EntropyScale, edges: np.ndarray, explanation,
                        th: Thresholds) -> tuple[Finding | None, list[bool]]:
    """Windows whose logged entropy exceeds d·ln2 (what any action distribution on [-1, 1]^d can have)."""
    if scale.action_bound is None or run.get("policy/entropy") is None:
        return None, [False] * (len(edges) - 1)
    medians = _window_medians(run, "policy/entropy", edges)
    limit = scale.action_bound * (1.0 + th.impossible_margin)
    flags = [math.isfinite(m) and m > limit for m in medians]
    if not any(flags):
        return None, flags
    worst = int(np.nanargmax(medians))
    peak = medians[worst]
    d = scale.action_dim
    window = (int(edges[worst]), int(edges[worst + 1]))
    message = (f"Logged policy/entropy reaches {peak:.4g} nats (median of steps {window[0]}–{window[1]}), "
               f"above {d}·ln 2 = {scale.action_bound:.3f}, the most any distribution of actions in [-1, 1]^{d} has: "
               "it is not the entropy of the actions the environment receives.")
    numbers = {"logged_entropy": peak, "action_bound": scale.action_bound, "windows_above": int(sum(flags))}
    action = run.get("policy/entropy_action")
    if action is not None and len(action):
        numbers["entropy_action_median"] = float(np.nanmedian(action.values))
        message += f" The actions' own entropy (policy/entropy_action) is {numbers['entropy_action_median']:.3g}."
    detail = {}
    if explanation is not None:
        detail["explanation"] = explanation.summary
        detail["fingerprint"] = explanation.to_dict()
    return Finding("IMPOSSIBLE_ENTROPY", message, numbers, window, detail), flags


#: What to do when the critic expects more than any episode pays.
OVERPROMISE_FIX = Fix(
    "Check the world model where episodes end and pay: the continue head's p(continue) on the replay's terminal "
    "rows, and imagined reward per step against the replay's. Make the end observable (e.g. a goal flag in the "
    "observation) and discount imagination by p(continue) (dreamscope: behavior.continuation=prob). Reward "
    "smoothing moves a terminal reward off the last step, and with it what marks that step in the latent",
    "the critic's values come down to what episodes pay, and the actor stops chasing rewards only imagined")


def _overpromise_finding(run: Run, edges: np.ndarray, th: Thresholds) -> Finding | None:
    """The latest window whose critic values exceed the best episode score several-fold: the
    world model imagines rewards the task does not pay, or does not see episodes end, and the
    actor is taught by returns no real episode has."""
    value, score = run.get("value/mean"), run.get("episode/score")
    if value is None or score is None or len(score) < th.value_check_min_episodes:
        return None
    best_series = run.get("episode/score_max") or score  # a log line's mean hides its best episode
    best = float(np.nanmax(best_series.values))
    medians = _window_medians(run, "value/mean", edges)
    over = [i for i, m in enumerate(medians) if best > 0 and math.isfinite(m) and m > th.value_over_best_score * best]
    if not over:
        return None
    i = over[-1]
    a, b = int(edges[i]), int(edges[i + 1])
    numbers = {"value_median": medians[i], "best_score": best, "score_points": len(score)}
    message = (f"Steps {a}–{b}: the critic's mean value is {medians[i]:.3g}, above the best episode score in the "
               f"logs ({best:.3g}, over {len(score)} logged scores): it expects more than any episode paid. A critic taught "
               "in imagination learns what the world model imagines: rewards where the task pays none, or no end "
               "where episodes end.")
    length = run.get("episode/length")
    if run.get("reward/imag_mean") is not None and length is not None:
        scores, lengths = score.window(a, b), length.window(a, b)
        per_step = _window_medians(run, "reward/imag_mean", edges[i:i + 2])[0]
        if len(scores) == len(lengths) and lengths.values.sum() > 0 and math.isfinite(per_step):
            real = float(np.nansum(scores.values) / lengths.values.sum())
            numbers.update(imagined_reward_per_step=per_step, real_reward_per_step=real)
            message += (f" Imagined steps collect {per_step:.3g} reward each, the episodes of these steps "
                        f"{real:.3g} per step.")
    return Finding("VALUE_EXCEEDS_RETURNS", message, numbers, (a, b))


#: What to do when the world model's latent does not carry the observation.
BLIND_MODEL_FIX = Fix(
    "See which observation dimensions the latent loses (dreamscope model-fit RUN_DIR), then fix the world model "
    "before tuning the actor: a larger stochastic latent first (world_model.stoch x classes carries at most "
    "stoch * log2(classes) bits a step; a 4 x 4 latent, 8), then a wider model (world_model.deter for the "
    "dynamics, hidden, units), more model updates per env step (run.train_ratio), and the KL balance that prices "
    "what the posterior carries (world_model.free_nats, kl_rep_scale). world_model.rec_norm=std shifts the "
    "decoder's attention to dimensions that vary little but adds no capacity. Check model/obs_explained_var "
    "after each change",
    "the decoded observations explain most of their variance, and imagined returns can tell apart policies that "
    "act on the state")


def _blind_model_finding(run: Run, edges: np.ndarray, th: Thresholds) -> Finding | None:
    """The latest window in which the world model's posterior explains too little of the
    observations: whatever the latent drops, the actor and critic never see."""
    if run.get("model/obs_explained_var") is None:
        return None
    medians = _window_medians(run, "model/obs_explained_var", edges)
    measured = [i for i, m in enumerate(medians) if math.isfinite(m)]
    if not measured or medians[measured[-1]] >= th.model_explained_min:
        return None
    i = measured[-1]
    a, b = int(edges[i]), int(edges[i + 1])
    message = (f"Steps {a}–{b}: decoded from its latent states, the world model explains {medians[i]:.0%} of the "
               f"observations' variance (model/obs_explained_var, median; under {th.model_explained_min:.0%}). "
               "The actor and critic see the task only through that latent: what it leaves out (on air hockey, "
               "where the puck is) they cannot learn from, and imagined returns hardly depend on the policy.")
    return Finding("MODEL_MISSES_STATE", message, {"obs_explained_var": medians[i],
                                                   "threshold": th.model_explained_min}, (a, b))


def _fingerprint(run: Run, d: int | None, dist: str | None, edges: np.ndarray, th: Thresholds):
    """Explanation of the highest window-median logged entropy, when it is needed and can be read.

    Needed to infer an unknown distribution, or to explain a value above d·ln2.
    """
    from dreamscope.dists import action_entropy_bound

    if d is None or run.get("policy/entropy") is None:
        return None
    medians = [m for m in _window_medians(run, "policy/entropy", edges) if math.isfinite(m)]
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


def _infer_action_dim(run: Run, edges: np.ndarray, th: Thresholds) -> tuple[_PinnedReading | None, str | None]:
    """Read d off an entropy pinned at a value that is d × (½ln(2πe) + a known log-σ bound) for one d only.

    A Gaussian policy whose σ sits on its bound logs the same entropy at every step, and that
    value is d·(½ln(2πe) + log σ_bound) to the fingerprint's tolerance. The reading is taken
    only when exactly one d ≤ ``infer_max_dim`` fits (any known bound, either side); otherwise
    (no pinned stretch, no fit, several fits) d stays unknown and the reason is returned.
    """
    from dreamscope.dists import GAUSSIAN_ENTROPY_UNIT
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


#: Signals whose sparseness alone can leave a run undecided, in the order they are reported.
_DECISIVE_SIGNALS = ("policy/entropy", "episode/score", "adv_norm/abs_mean", "adv/abs_mean", "return/scale",
                     "policy/std_mean", "policy/saturation_frac", "actor/logstd_push_pg")


def _round_down(x: float) -> int:
    """x rounded down to one significant digit (at least 1): a logging interval to suggest."""
    if x < 1:
        return 1
    mag = 10 ** int(math.floor(math.log10(x)))
    return int(x // mag * mag)


def _thin_signals(run: Run, first: int, last: int, windows: int, th: Thresholds) -> tuple[list[str], list[Fix]]:
    """Logged signals with too few points for the doctor to judge, said with their numbers and what to log."""
    need = windows * th.min_points
    every = _round_down((last - first) / (2 * need))
    notes, fixes = [], []
    for name in _DECISIVE_SIGNALS:
        series = run.get(name)
        if series is None:
            continue
        keep = np.isfinite(series.values)
        steps, values = series.steps[keep], series.values[keep]
        n = len(values)
        if n == 0 or n >= need:
            continue
        source = run.sources.get(name)
        label = (name if not source or source == name else
                 f"{name} ({source})" if source.startswith("derived") else f"{name} (logged as {source})")
        listed = ""
        if n <= 6:
            listed = (f" (at steps {', '.join(str(int(x)) for x in steps)}: "
                      f"{' → '.join(_fmt(float(v)) for v in values)})")
        notes.append(f"{label} has {n} point{'s' if n != 1 else ''} in steps {first}–{last}{listed}: too few to judge "
                     f"its level or trend — each of the {windows} windows needs {th.min_points}, and a trend test "
                     "cannot reach p < 0.05 on fewer than 5 points")
        fixes.append(Fix(f"Log {label} at least every ~{every} steps (≥ {2 * need} lines over a run this long)",
                         f"each window holds ≥ {th.min_points} points of it and the next diagnosis can judge its "
                         "level and trend"))
    return notes, fixes


def _extra_findings(windows: list[WindowVerdict]) -> list[Finding]:
    """Cross-check findings: where the per-step gradient ratio would have told the wrong story."""
    out = []
    for w in windows:
        drift, step = w.checks["bonus_drift"], w.checks["per_step_ratio"]
        if drift.holds is True and step.holds is False and "push_pg_mean" in drift.numbers:
            out.append(Finding(
                "PER_STEP_RATIO_MISLEADS",
                f"Steps {w.start}–{w.stop}: the per-step gradient ratio ({_fmt(step.numbers['ratio_median'])} < 1) "
                "says the policy gradient is larger, yet its mean push on log σ is smaller than the bonus's: "
                "the PG is noise that cancels across updates, the bonus points the same way every step.",
                {"per_step_ratio": step.numbers["ratio_median"], "pg_to_ent_drift": drift.numbers["pg_to_ent"]},
                (w.start, w.stop)))
            break
    return out


def diagnose(run: Run, action_dim: int | None = None, dist: str | None = None, windows: int = 4,
             thresholds: Thresholds = DEFAULT) -> Diagnosis:
    """Verdict per step window and overall, with evidence, confidence, fixes and the confirming probe."""
    if dist is not None and dist not in DISTS:
        raise DreamscopeError(f"dist {dist!r} is not one of {', '.join(DISTS)}")
    if isinstance(windows, bool) or not isinstance(windows, int) or windows < 1:
        raise DreamscopeError(f"windows {windows!r} must be a positive integer")
    if action_dim is not None and (isinstance(action_dim, bool) or not isinstance(action_dim, int) or action_dim < 1):
        raise DreamscopeError(f"action dim {action_dim!r} must be a positive integer")
    th = thresholds
    first, last = _step_range(run)
    edges = np.unique(np.linspace(first, last, windows + 1).round().astype(np.int64))
    meta, meta_notes = _clean_meta(run.meta)
    d = action_dim if action_dim is not None else meta.get("action_dim")
    known_dist = dist or meta.get("dist")
    pinned, pinned_why = None, None
    has_refs = run.get("policy/entropy_max") is not None and run.get("policy/entropy_min_ref") is not None
    if d is None and not has_refs and known_dist not in DISTS:
        # Only when nothing about the policy is known: a run that names its distribution but not
        # its d is diagnosed on what it names (σ, drift), and the d-dependent checks are skipped.
        pinned, pinned_why = _infer_action_dim(run, edges, th)
    if pinned is not None:
        from dreamscope.fingerprint import explain_entropy

        d = pinned.action_dim
        explanation = explain_entropy(pinned.value, d)
        meta_notes.append(
            f"action_dim unknown: read as {d} because the logged entropy is pinned at {pinned.value:.4g} "
            f"({pinned.points} points of steps {pinned.window[0]}–{pinned.window[1]} within the fingerprint's "
            f"tolerance) = {d} × (½ln(2πe) {'+' if pinned.log_std >= 0 else '−'} {abs(pinned.log_std):.4f}): "
            f"a {d}-D Gaussian with σ = {math.exp(pinned.log_std):.4g} on the {pinned.side} bound of "
            f"{' and of '.join(pinned.codebases)}; no other d ≤ {th.infer_max_dim} fits a known bound; "
            "pass --action-dim to override")
        scale = entropy_scale(run, d, dist, explanation, meta)
    else:
        explanation = _fingerprint(run, d, known_dist, edges, th)
        scale = entropy_scale(run, action_dim, dist, explanation, meta)
    impossible, impossible_flags = _impossible_finding(run, scale, edges, explanation, th)

    results = []
    for i, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        checks = _Checks(run, meta, scale, th, int(a), int(b), first).compute()
        # A run that logs its action entropy has the number the impossible one stands for: its
        # undecided windows are plain UNDECIDED (the finding is still reported).
        unexplained = impossible_flags[i] and run.get("policy/entropy_action") is None
        results.append(_decide(i, int(a), int(b), checks, unexplained, th))

    recent = results[-max(1, math.ceil(len(results) * th.recent_frac)):]
    # A window that decided something outvotes one that could not (e.g. steps with only episode lines).
    decided = [w for w in recent if w.verdict in _RULES_BY_CODE] or recent
    counts: dict[str, int] = {}
    for w in decided:
        counts[w.verdict] = counts.get(w.verdict, 0) + 1
    verdict = max(counts, key=lambda code: (counts[code], max(w.index for w in decided if w.verdict == code)))
    agreeing = [w for w in recent if w.verdict == verdict]
    rep = agreeing[-1]
    confidence = float(np.mean([w.confidence for w in agreeing])) * len(agreeing) / len(recent)

    info = VERDICTS[verdict]
    rule = _RULES_BY_CODE.get(verdict)
    shown = (rule.required + tuple(n for n, _ in rule.support) + rule.context) if rule else tuple(rep.checks)
    shown = tuple(dict.fromkeys(shown))
    evidence = [rep.checks[n] for n in shown if rep.checks[n].holds is not None]
    undecided = [{"check": n, "signal": rep.checks[n].signal, "why": rep.checks[n].implies}
                 for n in shown if rep.checks[n].holds is None]

    overpromise = _overpromise_finding(run, edges, th)
    blind = _blind_model_finding(run, edges, th)
    findings = [f for f in (impossible, overpromise, blind) if f] + _extra_findings(results)
    fixes = list(info.fixes)
    if verdict == "BONUS_DOMINATES" and _no_signal_core(rep.checks) is not None:
        fixes += [Fix(f"Then: {f.action}", f.expected_effect) for f in VERDICTS["NO_SIGNAL"].fixes[:2]]
    if impossible and verdict != "IMPOSSIBLE_ENTROPY":
        fixes.append(VERDICTS["IMPOSSIBLE_ENTROPY"].fixes[1])
    if overpromise:
        fixes.append(OVERPROMISE_FIX)
    if blind:
        fixes.append(BLIND_MODEL_FIX)

    assumptions = meta_notes + scale.assumptions
    if d is None:
        assumptions.append("action_dim unknown (not in meta, no --action-dim): "
                           "the d·ln2 bound and the fingerprint were not checked"
                           + (f" ({pinned_why})" if pinned_why else ""))
    if "return_limit" not in meta:
        assumptions.append(f"return normaliser limit assumed {DEFAULT_RETURN_LIMIT:g} (DreamerV3's max(1, S))")
    notes = [n for w in agreeing for n in w.notes]
    if verdict not in _RULES_BY_CODE:
        # Undecided: say exactly why — which signals are too thin, what the logs do show — and
        # make the fixes the specific things to log.
        thin, thin_fixes = _thin_signals(run, first, last - 1, len(results), th)
        if scale.floor is None and run.get("policy/entropy") is not None:
            thin_fixes.append(Fix("Pass --action-dim (and --dist) so that the entropy can be put between its floor "
                                  "and ceiling", "the entropy's level (high, at the floor) can be judged"))
        shows = [f"{e.check}: {e.implies}" for e in rep.checks.values() if e.holds is True]
        notes_front = thin + ([f"What the logs do show (steps {rep.start}–{rep.stop}): " + "; ".join(shows)]
                              if shows else [])
        fixes = thin_fixes + [f for f in fixes if f not in thin_fixes]
    else:
        notes_front = []
    summary = info.headline
    if notes_front:
        summary = f"{info.headline} {notes_front[0]}."
    if verdict in _RULES_BY_CODE:
        agree = f"{len(agreeing)}/{len(recent)} recent windows agree"
        summary = f"{info.headline} (steps {rep.start}–{rep.stop}, {agree})"
        if rep.reading:
            summary += " " + rep.reading
    missing = [{"signal": n, "needed_for": WANTED[n]} for n in run.missing(list(WANTED))]
    if verdict not in _RULES_BY_CODE and len(results) > 1:
        # Too thin for windows: judge the run as one window, and say how little there was.
        thin = replace(th, min_points=min(th.min_points, th.thin_min_points),
                       trend_alpha=max(th.trend_alpha, th.thin_trend_alpha))
        whole = diagnose(run, action_dim=action_dim, dist=dist, windows=1, thresholds=thin)
        if whole.verdict in _RULES_BY_CODE:
            whole.confidence = max(th.confidence_floor, whole.confidence * th.confidence_inferred)
            whole.notes.insert(0, f"too thin for {len(results)} windows ({notes_front[0] if notes_front else verdict}); "
                                  "judged on the whole run as one window, so confidence is lowered")
            return whole
    return Diagnosis(
        verdict=verdict, answer=info.answer, summary=summary, confidence=confidence,
        entropy_held_by=rep.entropy_held_by, learning_blocked_by=rep.learning_blocked_by, evidence=evidence,
        undecided=undecided, notes=list(dict.fromkeys(notes_front + notes)),
        fixes=fixes, intervention=info.intervention, findings=findings, missing_signals=missing, windows=results,
        assumptions=assumptions, warnings=list(run.warnings), scale=scale,
        return_limit=meta.get("return_limit", DEFAULT_RETURN_LIMIT), run_path=str(run.path),
        run_format=str(run.format), thresholds=th)
