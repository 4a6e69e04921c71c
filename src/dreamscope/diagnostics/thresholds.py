"""Every threshold the doctor uses, written down once with the reasoning behind it.

All of them are dimensionless: fractions, ratios, normalised entropy
(entropy − floor)/(ceiling − floor), p-values, or counts. Nothing in
:mod:`dreamscope.diagnostics.doctor` compares a raw number to a literal; it asks a
:class:`Thresholds` instance, so a caller (or a test) can move one boundary and watch the
verdict flip.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Thresholds:
    # --- entropy level, in normalised units (0 = the distribution's floor, 1 = its ceiling)
    #: "High" entropy: the upper quarter of the range the std bounds allow. For the common
    #: log σ ∈ (−5, 2) clamp that is mean log σ ≥ 0.25, i.e. σ ≥ 1.3 — wider than the
    #: whole action interval, so the policy cannot be exploiting anything.
    entropy_high_norm: float = 0.75
    #: "At the floor": the lowest tenth of the range. For log σ ∈ (−5, 2) that is
    #: σ ≤ 0.013 — a deterministic policy for any task with actions in [−1, 1].
    entropy_low_norm: float = 0.10
    #: A logged entropy counts as above the action space's bound d·ln2 only when it exceeds
    #: it by more than this fraction, so the Monte-Carlo noise of an action-entropy
    #: estimate sitting at the uniform's value is not called impossible.
    impossible_margin: float = 0.01

    #: An entropy counts as *pinned* over a window when at least this fraction of its points
    #: lie within the fingerprint's tolerance (0.01 nats) of the window's median: a σ held on
    #: its bound logs one value, while a σ that still moves spreads by far more than 0.01
    #: (one unit of log σ per dim is one nat). 0.9 leaves room for the odd transient batch.
    pinned_points_frac: float = 0.9
    #: When neither the run nor the user says how many action dims there are, d is read off a
    #: pinned entropy only if exactly one d in 1..this puts it on a known σ bound. 32 covers
    #: every common continuous-control task (humanoid: 17–21); uniqueness, not the cap, is
    #: what keeps the reading honest, since larger d widen the tolerance (d × 0.01 nats).
    infer_max_dim: int = 32

    # --- std at its bounds and saturation
    #: ``policy/std_at_upper_frac`` (components within 2 % of the log-std range from the
    #: bound) above one half: the typical action dimension is pinned, not just one outlier.
    pinned_frac: float = 0.5
    #: Without the at-bound fractions, normalised mean log σ this close to a bound (top or
    #: bottom tenth of the log range) stands in for "pinned"; same tenth as the entropy floor.
    pinned_logstd_norm: float = 0.9
    #: More than half of the action components at |a| > 0.99: the policy is bang-bang.
    #: A uniform policy has 0.5 % there and N(0, 1) clipped to [−1, 1] has 32 %, so one half
    #: is only reached when σ (pre-tanh) is several times the action range.
    saturation_high: float = 0.5

    # --- drift: who moves log σ over a window of updates
    #: The bonus dominates when |mean PG push on log σ| / |mean entropy push| is below this.
    #: 1 is the crossover where the two drifts cancel; below it the net push has the
    #: bonus's sign (up) whatever the policy gradient's sign is.
    drift_dominance: float = 1.0
    #: ``actor/ent_to_pg_drift_ratio`` (|EMA ∇ηH| / |EMA ∇PG|) above this: the bonus's mean
    #: gradient is the larger one. Same crossover as above.
    drift_ratio: float = 1.0
    #: The comparison is *decisive* when the PG push's mean is more than this many standard
    #: errors (batch means) away from the bonus's magnitude; inside it the verdict stands
    #: but its confidence drops (``confidence_within_noise``). Two standard errors ≈ 95 %.
    drift_z: float = 2.0
    #: Number of contiguous blocks for the batch-means standard error: per-step pushes are
    #: autocorrelated, block means of ~1/20 of a window are close to independent.
    drift_blocks: int = 20

    # --- a dead actor gradient
    #: The actor's gradient norm at or below this is numerical zero: float32 round-off of a
    #: gradient that no loss term reaches (a detached actor, a zero learning signal through a
    #: saturated or clamped head) sits at 1e-8…1e-15, while a live actor gradient of any model
    #: size is ≥ 1e-4 (a per-parameter gradient of 1e-6 over 10⁴ parameters).
    grad_dead_abs: float = 1e-7
    #: ... or the window's median has fallen below this fraction of the run's early stretch:
    #: three orders of magnitude, far beyond what a learning rate schedule or a converging
    #: policy does to the norm (both keep it within one or two).
    grad_dead_fall: float = 1e-3
    #: ... or the gradient is alive but σ (policy/std_mean, off its bounds) has not moved by more than this
    #: fraction over the run so far (at least two windows' worth of points): a learning rate 0 or an
    #: optimizer that does not hold the actor computes gradients that are never applied. A live actor
    #: moves σ by a few per cent within its first hundred updates (Adam/LaProp steps are ~lr per
    #: parameter whatever the gradient's size); 0.1 % is float noise of a mean over a batch.
    frozen_std_rel: float = 1e-3

    # --- learning signal
    #: Normalised |advantage| (in units of max(limit, S)) below this is "≈ 0": the actions'
    #: advantages differ by under a tenth of the return spread — or, with S under its limit,
    #: by under 0.1 return units, a hundredth of one ±10 sparse reward.
    adv_weak_norm: float = 0.1
    #: S / limit below this: the return normaliser is inactive (max(limit, S) = limit), so
    #: the raw advantages are all the signal there is. 1 is where max() switches.
    return_scale_under: float = 1.0
    #: Reward-head hit rate on replay steps with a non-zero reward below this: the head
    #: misses most of the sparse events the replay holds, so imagined returns lack them.
    head_hit_min: float = 0.5
    #: ... decided only when at most this fraction of replay steps carries a reward: on a dense
    #: task (Pendulum, DMC, shaped air hockey: nearly every step) the hit rate scores the head's
    #: fit of every step's reward, which says nothing about rare events.
    sparse_reward_max_frac: float = 0.2
    #: Critic explained variance of the λ-returns at or above this: advantages keep at most
    #: a tenth of the return variance (Var(R − v) = (1 − EV)·Var(R)).
    critic_trivial_ev: float = 0.9

    # --- trends (Mann–Kendall test, Theil–Sen slope)
    #: Two-sided significance level of the trend test.
    trend_alpha: float = 0.05
    #: Series are reduced to this many block medians before the test: training logs are
    #: autocorrelated (the test assumes independence) and the test is O(n²).
    trend_blocks: int = 24
    #: Smallest change over a window that counts as a trend, for entropy in normalised units
    #: (5 % of the floor–ceiling range) ...
    trend_min_change_entropy: float = 0.05
    #: ... and for any other signal as a fraction of its run-wide spread ...
    trend_min_change: float = 0.1
    #: ... measured between these percentiles: P5–P95, the range DreamerV3 normalises returns
    #: by, so one outlier episode does not set the scale.
    spread_percentiles: tuple[float, float] = (5.0, 95.0)
    #: "Since the run's start" compares the window being judged with the run's early stretch:
    #: the first fifth of the steps up to that window's end (for the first window, its first
    #: fifth against the rest). A fifth is long enough to hold a few log lines in a typical
    #: log (≥ 20 lines per run) and short enough to sit before most of the learning in a run
    #: that learns. The comparison is a one-sided Mann–Whitney test at ``trend_alpha`` with
    #: the difference of means as its size (``trend_min_change`` of the spread, or
    #: ``trend_min_change_entropy`` of the entropy range); a trend test would miss a score
    #: that jumped to a plateau, whose Theil–Sen slope is 0 (most pairs tie).
    early_frac: float = 0.2
    #: Series longer than this are averaged over consecutive blocks down to this many points
    #: before any check (episode scores keep each block's best as episode/score_max): a level
    #: or trend needs far fewer points, the trend test already works on ``trend_blocks`` block
    #: medians, and tests on 10⁵–10⁶ autocorrelated log lines would call any wiggle significant.
    #: It keeps a 1M-line log's diagnosis well under a second.
    max_points: int = 20_000
    #: Fewest points a window needs before a level or a trend is decided from it (at least 3,
    #: the trend test's minimum); a median of fewer is one batch's noise.
    min_points: int = 4

    #: A log too thin for any window to decide (a handful of training lines) is judged once
    #: more as a single window whose levels need only this many points and whose trends only a
    #: direction (this p, not a significance: three monotone points give p ≈ 0.3), with the
    #: confidence multiplied by ``confidence_inferred`` and the point counts said.
    thin_min_points: int = 1
    thin_trend_alpha: float = 0.5

    # --- transient dips (normalised entropy)
    #: The level a dip falls from: the window's 90th percentile, i.e. where the entropy sits
    #: most of the time when dips are brief, robust to the dips themselves.
    dip_reference_pct: float = 90.0
    #: A dip goes this far below that level (15 % of the range: about one unit of log σ per
    #: dimension for the (−5, 2) clamp) ...
    dip_depth: float = 0.15
    #: ... and has recovered when it is back within this distance of that level.
    dip_recover: float = 0.05
    #: Consecutive points a dip must last, so a single bad batch is not a dip.
    dip_min_points: int = 2

    # --- the critic against what episodes pay
    #: A critic's value is a discounted sum of future rewards, so on a task whose rewards are
    #: not negative (or that pays only when an episode ends, like a goal) no state is worth
    #: more than the best whole episode. A window-median value above this multiple of the best
    #: score in the logs is flagged: half as much again leaves room for a best episode the logs
    #: have not seen yet and for the noise of a mean over one batch of states.
    value_over_best_score: float = 1.5
    #: ... judged only once this many episode scores are logged, so "the best" means something.
    value_check_min_episodes: int = 10

    # --- the world model against the observations
    #: The share of the observations' (symlog) variance the posterior-decoded observation must
    #: explain. The same small model passes 0.95 on Pendulum-v1 within 2,000 steps; on air
    #: hockey it stays at 0.80-0.86 after 50,000 (a 4 x 4 or 32 x 4 latent, a 64-unit posterior), the puck
    #: off by 0.2 m of its 0.3-0.4 m spread and its y under 30% explained, and no policy learned
    #: to score (docs/airhockey_case_study.md); a 32 x 16 latent reaches 0.89 in the posterior but
    #: 0.71-0.73 after 15 imagined steps, and does not score either. Below 0.9 a tenth of what
    #: the observations vary by is noise to the actor.
    model_explained_min: float = 0.9

    # --- combining windows and confidence
    #: The overall verdict is the majority over this trailing fraction of the windows (ties
    #: go to the latest): the question is about the run's present state.
    recent_frac: float = 0.5
    #: Confidence of a rule whose required evidence holds but none of its supporting
    #: evidence was decidable ...
    confidence_base: float = 0.55
    #: ... plus this much when all of its supporting evidence agrees; each supporting check
    #: that contradicts it subtracts half its share, a missing one adds nothing.
    confidence_span: float = 0.4
    #: Multiplier when the key evidence was inferred rather than measured (e.g. the drift
    #: was not logged and dominance is read off σ pinned at the ceiling).
    confidence_inferred: float = 0.6
    #: Multiplier when the drift comparison holds but not by ``drift_z`` standard errors.
    confidence_within_noise: float = 0.8
    #: No verdict is reported with less confidence than this: zero would read as "certainly
    #: wrong", which the doctor never knows. (The cap is confidence_base + confidence_span.)
    confidence_floor: float = 0.05

    def to_dict(self) -> dict:
        return asdict(self)


DEFAULT = Thresholds()

#: The few thresholds the accuracy benchmark may choose on labelled runs (benchmarks/doctor_accuracy.py,
#: leave-one-implementation-out), each with the values it tries; every other threshold stays at its
#: default. Kept small so that a choice made on some implementations cannot fit noise in them.
#: ``pinned_logstd_norm``: how close to its ceiling σ read off the entropy must sit to count as
#: pinned; ``entropy_low_norm``: the floor's band; ``grad_dead_fall``: how far an actor gradient
#: must fall to be dead.
TUNABLE: dict[str, tuple[float, ...]] = {
    "pinned_logstd_norm": (0.8, 0.9, 0.95),
    "entropy_low_norm": (0.05, 0.1, 0.2),
    "grad_dead_fall": (1e-4, 1e-3, 1e-2),
}
