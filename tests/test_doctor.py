"""The doctor on synthetic runs made to fail each way, at each rule's boundary, and with signals missing."""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from dreamscope.diagnostics import doctor_cli
from dreamscope.diagnostics.doctor import BLIND_MODEL_FIX, OVERPROMISE_FIX, diagnose
from dreamscope.diagnostics.thresholds import DEFAULT
from dreamscope.errors import DreamscopeError
from dreamscope.logs.schema import Run, Series

UNIT = 0.5 * math.log(2 * math.pi * math.e)
D = 4
LO, HI = -5.0, 2.0
FLOOR, CEIL = D * (UNIT + LO), D * (UNIT + HI)  # -14.32, 13.676: the seed's pre-tanh ceiling
STEPS = np.arange(0, 6000, 10)  # 600 updates, 150 per window
EP_STEPS = np.arange(0, 6000, 100)  # 60 episodes, 15 per window
K = np.arange(len(STEPS))
META = {"action_dim": D, "dist": "tanh_normal", "eta": 3e-3, "logstd_min": LO, "logstd_max": HI}
#: Flat by construction (an oscillation, no trend), so no seed can make it "rise".
FLAT_SCORE = -5.0 + 3.0 * np.sin(np.arange(len(EP_STEPS)) * 2.4)
RISING_SCORE = -8.0 + 16.0 * EP_STEPS / 6000 + np.sin(np.arange(len(EP_STEPS)) * 2.4)


def ent(norm):
    """Entropy at a normalised level (0 = floor, 1 = ceiling) of the 4-D log σ ∈ (−5, 2) policy."""
    return FLOOR + np.asarray(norm, dtype=float) * (CEIL - FLOOR)


def std_at(norm):
    return np.exp(LO + np.asarray(norm, dtype=float) * (HI - LO))


def build(signals: dict, meta: dict | None = None, warnings=()) -> Run:
    series = {}
    for name, values in signals.items():
        steps = EP_STEPS if name.startswith("episode/") else STEPS
        series[name] = Series(steps, np.broadcast_to(np.asarray(values, dtype=float), steps.shape).copy())
    return Run("synthetic.jsonl", "synthetic", series, {n: n for n in series}, dict(META if meta is None else meta),
               list(warnings))


def noise(seed: int, scale: float):
    return np.random.default_rng(seed).normal(0.0, scale, len(STEPS))


def bonus_signals() -> dict:
    """The seed: entropy flat at the 4-D pre-tanh ceiling, σ at the clamp, 70 % saturated, adv ≈ 0.06,
    the bonus's push −η every step and the PG's mostly noise around ≈ 0."""
    return {
        "policy/entropy": ent(1.0) - np.abs(noise(1, 0.01)),
        "policy/std_mean": std_at(0.995),
        "policy/std_at_upper_frac": 0.95,
        "policy/std_at_lower_frac": 0.0,
        "policy/saturation_frac": 0.7 + noise(2, 0.01),
        "actor/logstd_push_ent": -3e-3,
        "actor/logstd_push_pg": 2e-4 + noise(3, 2e-3),
        "actor/ent_to_pg_drift_ratio": 3.0,
        "actor/ent_to_pg_ratio": 0.5,
        "actor/grad_cos": 0.95 * np.sin(K * 0.7),
        "adv/abs_mean": 0.06,
        "adv_norm/abs_mean": 0.06,
        "return/scale": 0.3,
        "reward/head_hit_rate": 0.2,
        "reward/replay_nonzero_frac": 0.003,
        "value/explained_var": 0.95,
        "episode/score": FLAT_SCORE,
    }


def no_signal_signals() -> dict:
    """Same advantages, return scale and reward head, but σ mid-range and flat, actions not saturated."""
    s = bonus_signals()
    s.update({"policy/entropy": ent(0.6), "policy/std_mean": std_at(0.6), "policy/std_at_upper_frac": 0.05,
              "policy/saturation_frac": 0.1, "actor/logstd_push_pg": noise(3, 1e-3)})
    return s


def exploring_signals() -> dict:
    return {
        "policy/entropy": ent(0.85), "policy/std_mean": std_at(0.85), "policy/std_at_upper_frac": 0.2,
        "policy/std_at_lower_frac": 0.0, "policy/saturation_frac": 0.3,
        "actor/logstd_push_ent": -3e-3, "actor/logstd_push_pg": 1e-2 + noise(4, 2e-3),
        "actor/ent_to_pg_drift_ratio": 0.3,
        "adv/abs_mean": np.linspace(0.3, 3.0, len(STEPS)), "adv_norm/abs_mean": np.linspace(0.1, 0.5, len(STEPS)),
        "return/scale": np.linspace(1.5, 6.0, len(STEPS)), "reward/head_hit_rate": 0.7,
        "reward/replay_nonzero_frac": 0.01, "value/explained_var": 0.5, "episode/score": RISING_SCORE,
    }


def healthy_signals() -> dict:
    s = exploring_signals()
    falling = np.linspace(0.7, 0.3, len(STEPS))
    s.update({"policy/entropy": ent(falling), "policy/std_mean": std_at(falling), "policy/std_at_upper_frac": 0.0,
              "policy/saturation_frac": 0.05})
    return s


def collapse_signals() -> dict:
    return {
        "policy/entropy": ent(0.05), "policy/std_mean": std_at(0.05), "policy/std_at_upper_frac": 0.0,
        "policy/std_at_lower_frac": 0.8, "policy/saturation_frac": 0.0,
        "actor/logstd_push_ent": -3e-3, "actor/logstd_push_pg": 4e-3 + noise(5, 1e-3),
        "adv/abs_mean": 0.2, "adv_norm/abs_mean": 0.2, "return/scale": 2.0, "reward/head_hit_rate": 0.6,
        "reward/replay_nonzero_frac": 0.01, "value/explained_var": 0.5, "episode/score": FLAT_SCORE,
    }


def dips_signals(depth: float = 0.3) -> dict:
    """Entropy at 0.9 of its range that drops by ``depth`` for 10 updates in every window, then recovers."""
    level = np.full(len(STEPS), 0.9)
    for w in range(4):
        level[w * 150 + 50: w * 150 + 60] = 0.9 - depth
    return {
        "policy/entropy": ent(level), "policy/std_at_upper_frac": 0.3, "policy/saturation_frac": 0.2,
        "actor/logstd_push_ent": -3e-3, "actor/logstd_push_pg": 5e-3 + noise(6, 1e-3),
        "adv/abs_mean": 0.2, "adv_norm/abs_mean": 0.2, "return/scale": 2.0, "reward/head_hit_rate": 0.3,
        "reward/replay_nonzero_frac": 0.01, "value/explained_var": 0.6, "episode/score": FLAT_SCORE,
    }


def without(signals: dict, *names: str) -> dict:
    return {k: v for k, v in signals.items() if k not in names}


def with_(signals: dict, **changes) -> dict:
    """Copy with ``policy__entropy=...``-style keyword names for canonical metrics."""
    out = dict(signals)
    out.update({k.replace("__", "/"): v for k, v in changes.items()})
    return out


# --------------------------------------------------------------------------------------
# Trend test against hand-computed values
# --------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------
# One synthetic run per verdict
# --------------------------------------------------------------------------------------


def test_seed_case_is_bonus_dominates_with_impossible_entropy_finding():
    dx = diagnose(build(bonus_signals()))
    assert dx.verdict == "BONUS_DOMINATES" and dx.answer == "cause"
    assert [w.verdict for w in dx.windows] == ["BONUS_DOMINATES"] * 4
    finding = next(f for f in dx.findings if f.code == "IMPOSSIBLE_ENTROPY")
    assert finding.numbers["action_bound"] == pytest.approx(D * math.log(2))
    assert finding.numbers["logged_entropy"] > 13.6
    assert "upper clamp 2" in finding.detail["explanation"]
    drift = next(e for e in dx.evidence if e.check == "bonus_drift")
    assert drift.holds and drift.numbers["pg_to_ent"] < 1 and drift.window == (dx.windows[-1].start, dx.windows[-1].stop)
    assert drift.numbers["push_ent_mean"] == pytest.approx(-3e-3)
    # per-step ratio 0.5 < 1 would have said "PG dominates": the doctor says why it does not decide
    assert any(f.code == "PER_STEP_RATIO_MISLEADS" for f in dx.findings)
    assert "η = 0" in dx.intervention
    assert dx.fixes[0].expected_effect and "action* entropy" in dx.fixes[0].action  # not "cut η": see VERDICTS
    assert dx.confidence > 0.8


def test_seed_case_without_pinned_sigma_is_no_signal():
    dx = diagnose(build(no_signal_signals()))
    assert dx.verdict == "NO_SIGNAL" and dx.answer == "symptom"
    shown = {e.check: e for e in dx.evidence}
    assert shown["adv_weak"].holds and shown["return_scale_under"].holds and shown["head_misses"].holds
    assert shown["sigma_at_ceiling"].holds is False


def test_official_dreamer_no_signal_carries_impossible_entropy_finding():
    """BoundedNormal σ ∈ [0.1, 1] at σ = 0.6: its Gaussian entropy 3.63 > 4·ln2 is a finding, not the verdict."""
    signals = with_(no_signal_signals(), policy__entropy=D * (UNIT + math.log(0.6)), policy__std_mean=0.6)
    dx = diagnose(build(signals, meta={"action_dim": D, "dist": "bounded_normal", "std_min": 0.1, "std_max": 1.0}))
    assert dx.verdict == "NO_SIGNAL"
    assert [f.code for f in dx.findings][0] == "IMPOSSIBLE_ENTROPY"


def test_exploring():
    dx = diagnose(build(exploring_signals()))
    assert dx.verdict == "EXPLORING" and dx.answer == "expected"


def test_healthy():
    dx = diagnose(build(healthy_signals()))
    assert dx.verdict == "HEALTHY" and dx.answer == "healthy"


def test_collapse():
    dx = diagnose(build(collapse_signals()))
    assert dx.verdict == "COLLAPSE" and dx.answer == "cause"


def test_transient_dips():
    dx = diagnose(build(dips_signals()))
    assert dx.verdict == "TRANSIENT_DIPS" and dx.answer == "symptom"
    dips = next(e for e in dx.evidence if e.check == "dips")
    assert dips.numbers["dips"] == 1 and dips.numbers["deepest"] == pytest.approx(0.3)


def test_entropy_at_the_floor_after_returns_rose_is_convergence_not_collapse():
    half = len(STEPS) // 2
    level = np.concatenate([np.linspace(0.7, 0.05, half), np.full(len(STEPS) - half, 0.05)])
    score = np.where(EP_STEPS < 3000, -8.0 + 16.0 * EP_STEPS / 3000, 8.0) + np.sin(np.arange(len(EP_STEPS)) * 2.4)
    dx = diagnose(build(with_(healthy_signals(), policy__entropy=ent(level), policy__std_mean=std_at(level),
                              episode__score=score)))
    assert [w.verdict for w in dx.windows[2:]] == ["HEALTHY", "HEALTHY"]
    assert any("converged" in n for n in dx.notes)
    # the same floor with returns that never rose is a collapse
    flat = diagnose(build(with_(healthy_signals(), policy__entropy=ent(level), policy__std_mean=std_at(level),
                                episode__score=FLAT_SCORE)))
    assert [w.verdict for w in flat.windows[2:]] == ["COLLAPSE", "COLLAPSE"]


def test_entropy_climbing_from_its_start_is_not_a_dip():
    level = np.full(len(STEPS), 0.9)
    level[:40] = np.linspace(0.5, 0.9, 40)  # σ walked up by the bonus at the start of window 0
    dx = diagnose(build(with_(dips_signals(), policy__entropy=ent(level))))
    assert dx.windows[0].checks["dips"].holds is False


def test_impossible_entropy_is_the_verdict_only_when_nothing_else_decides():
    # 0.8 of the range: above 4·ln2, but σ is not at a clamp, so neither σ nor saturation can be read off it.
    # (At 1.0 σ is pinned at the clamp and saturation follows from σ: see the next test.)
    dx = diagnose(build({"policy/entropy": ent(0.8)}))
    assert dx.verdict == "IMPOSSIBLE_ENTROPY" and dx.answer == "undecided"
    assert dx.findings[0].code == "IMPOSSIBLE_ENTROPY"
    undecided = {u["check"] for u in dx.undecided}
    assert {"bonus_drift", "saturated", "adv_weak"} <= undecided
    assert dx.confidence < 0.5
    # With the action entropy logged the user has the real number: the finding stays, the verdict is UNDECIDED.
    logged = diagnose(build({"policy/entropy": ent(0.8), "policy/entropy_action": np.full(len(STEPS), 1.5)}))
    assert logged.verdict == "UNDECIDED" and logged.findings[0].code == "IMPOSSIBLE_ENTROPY"


def test_entropy_alone_at_the_clamp_is_the_bonus_with_low_confidence():
    """Only the entropy, pinned at the pre-tanh ceiling: σ is at the clamp in every dim, and a tanh-squashed
    Gaussian there saturates ≥ 72 % of its actions (μ = 0 is the least), so the bonus is the likely cause —
    with the drift and the saturation inferred, not measured, and said so."""
    dx = diagnose(build({"policy/entropy": ent(1.0)}))
    assert dx.verdict == "BONUS_DOMINATES"
    assert dx.findings[0].code == "IMPOSSIBLE_ENTROPY"
    sat = next(e for e in dx.evidence if e.check == "saturated")
    assert sat.holds and not sat.decisive and sat.numbers["saturation_frac_lower_bound"] == pytest.approx(0.72, abs=0.01)
    assert any("drift not logged" in n and "saturation not logged" in n for n in dx.notes)
    assert dx.confidence < 0.5 < diagnose(build(bonus_signals())).confidence


def test_windows_follow_the_run_and_recent_windows_decide():
    healthy, bonus = healthy_signals(), bonus_signals()
    first = STEPS < 3000
    first_ep = EP_STEPS < 3000
    mixed = {}
    for name in set(healthy) & set(bonus):
        a = np.broadcast_to(np.asarray(healthy[name], float), (first_ep if name.startswith("episode/") else first).shape)
        b = np.broadcast_to(np.asarray(bonus[name], float), a.shape)
        mixed[name] = np.where(first_ep if name.startswith("episode/") else first, a, b)
    dx = diagnose(build(mixed))
    assert [w.verdict for w in dx.windows] == ["HEALTHY", "HEALTHY", "BONUS_DOMINATES", "BONUS_DOMINATES"]
    assert dx.verdict == "BONUS_DOMINATES"
    assert [w.index for w in diagnose(build(mixed), windows=3).windows] == [0, 1, 2]


# --------------------------------------------------------------------------------------
# Boundaries: just above / below each threshold flips the verdict as documented
# --------------------------------------------------------------------------------------

TH = DEFAULT


def _push(ratio: float) -> float:
    """A constant PG push whose size is ``ratio`` × the bonus's (pointing down, against it)."""
    return ratio * 3e-3


BOUNDARIES = [
    # (name, signals when the rule fires, signals when it does not, verdict when it fires, otherwise)
    ("drift_dominance",
     with_(bonus_signals(), actor__logstd_push_pg=_push(TH.drift_dominance - 0.05)),
     with_(bonus_signals(), actor__logstd_push_pg=_push(TH.drift_dominance + 0.05)),
     "BONUS_DOMINATES", "NO_SIGNAL"),
    # Saturation not logged in either, so that only σ being pinned decides: with σ high, bang-bang actions and
    # the bonus's drift the larger the bonus is the cause pinned or not; with actions measured unsaturated and
    # no signal, the missing signal is.
    ("pinned_frac",
     with_(without(bonus_signals(), "policy/saturation_frac"), policy__std_at_upper_frac=TH.pinned_frac + 0.01),
     with_(without(bonus_signals(), "policy/saturation_frac"), policy__std_at_upper_frac=TH.pinned_frac - 0.01),
     "BONUS_DOMINATES", "NO_SIGNAL"),
    ("saturation_high (drift not logged)",
     with_(without(bonus_signals(), "actor/logstd_push_pg", "actor/logstd_push_ent", "actor/ent_to_pg_drift_ratio"),
           policy__saturation_frac=TH.saturation_high + 0.01),
     with_(without(bonus_signals(), "actor/logstd_push_pg", "actor/logstd_push_ent", "actor/ent_to_pg_drift_ratio"),
           policy__saturation_frac=TH.saturation_high - 0.01),
     "BONUS_DOMINATES", "NO_SIGNAL"),
    ("drift_ratio (pushes not logged)",
     with_(without(bonus_signals(), "actor/logstd_push_pg", "actor/logstd_push_ent"),
           actor__ent_to_pg_drift_ratio=TH.drift_ratio * 1.05),
     with_(without(bonus_signals(), "actor/logstd_push_pg", "actor/logstd_push_ent"),
           actor__ent_to_pg_drift_ratio=TH.drift_ratio * 0.95),
     "BONUS_DOMINATES", "NO_SIGNAL"),
    ("adv_weak_norm",
     with_(no_signal_signals(), adv_norm__abs_mean=TH.adv_weak_norm - 0.005),
     with_(no_signal_signals(), adv_norm__abs_mean=TH.adv_weak_norm + 0.005),
     "NO_SIGNAL", "UNDECIDED"),
    ("return_scale_under",
     with_(no_signal_signals(), reward__head_hit_rate=0.9, value__explained_var=0.5, return__scale=0.99),
     with_(no_signal_signals(), reward__head_hit_rate=0.9, value__explained_var=0.5, return__scale=1.01),
     "NO_SIGNAL", "UNDECIDED"),
    ("head_hit_min",
     with_(no_signal_signals(), return__scale=2.0, value__explained_var=0.5, reward__head_hit_rate=TH.head_hit_min - 0.01),
     with_(no_signal_signals(), return__scale=2.0, value__explained_var=0.5, reward__head_hit_rate=TH.head_hit_min + 0.01),
     "NO_SIGNAL", "UNDECIDED"),
    ("sparse_reward_max_frac",  # a missing head is a cause only where reward events are rare
     with_(no_signal_signals(), return__scale=2.0, value__explained_var=0.5, reward__head_hit_rate=0.3,
           reward__replay_nonzero_frac=TH.sparse_reward_max_frac - 0.01),
     with_(no_signal_signals(), return__scale=2.0, value__explained_var=0.5, reward__head_hit_rate=0.3,
           reward__replay_nonzero_frac=TH.sparse_reward_max_frac + 0.01),
     "NO_SIGNAL", "UNDECIDED"),
    ("critic_trivial_ev",
     with_(no_signal_signals(), return__scale=2.0, reward__head_hit_rate=0.9, value__explained_var=TH.critic_trivial_ev + 0.01),
     with_(no_signal_signals(), return__scale=2.0, reward__head_hit_rate=0.9, value__explained_var=TH.critic_trivial_ev - 0.01),
     "NO_SIGNAL", "UNDECIDED"),
    ("entropy_high_norm",
     with_(exploring_signals(), policy__entropy=ent(TH.entropy_high_norm + 0.01)),
     with_(exploring_signals(), policy__entropy=ent(TH.entropy_high_norm - 0.01)),
     "EXPLORING", "HEALTHY"),
    ("entropy_low_norm",
     with_(without(collapse_signals(), "policy/std_at_lower_frac", "policy/std_mean"),
           policy__entropy=ent(TH.entropy_low_norm - 0.01)),
     with_(without(collapse_signals(), "policy/std_at_lower_frac", "policy/std_mean"),
           policy__entropy=ent(TH.entropy_low_norm + 0.01)),
     "COLLAPSE", "UNDECIDED"),
    ("dip_depth", dips_signals(TH.dip_depth + 0.01), dips_signals(TH.dip_depth - 0.01), "TRANSIENT_DIPS",
     "IMPOSSIBLE_ENTROPY"),  # 0.9 of the range is 10.9 nats > 4·ln2: only the finding is left
]


@pytest.mark.parametrize("name, fires, not_fires, verdict, otherwise", BOUNDARIES, ids=[b[0] for b in BOUNDARIES])
def test_threshold_boundary_flips_the_verdict(name, fires, not_fires, verdict, otherwise):
    assert diagnose(build(fires)).verdict == verdict
    assert diagnose(build(not_fires)).verdict == otherwise


def test_pushes_decide_over_a_disagreeing_drift_ratio():
    dx = diagnose(build(with_(bonus_signals(), actor__logstd_push_pg=_push(1.05))))  # drift ratio 3 says "bonus"
    drift = next(e for e in dx.evidence if e.check == "bonus_drift")
    assert drift.holds is False and "disagrees" in drift.implies and not drift.decisive


def test_noisy_pg_push_holds_but_is_not_decisive():
    wiggle = noise(7, 2e-2).reshape(4, -1)
    wiggle -= wiggle.mean(axis=1, keepdims=True)  # each window's mean is exactly 1e-3 < η; SE ≈ 1.6e-3
    noisy = with_(bonus_signals(), actor__logstd_push_pg=1e-3 + wiggle.ravel())
    dx = diagnose(build(noisy))
    drift = next(e for e in dx.evidence if e.check == "bonus_drift")
    assert drift.holds and not drift.decisive
    assert dx.verdict == "BONUS_DOMINATES"
    assert dx.confidence < diagnose(build(bonus_signals())).confidence


def test_impossible_margin_boundary():
    bound = D * math.log(2)
    above = diagnose(build({"policy/entropy": bound * (1 + TH.impossible_margin + 0.005)}))
    below = diagnose(build({"policy/entropy": bound * (1 + TH.impossible_margin - 0.005)}))
    assert [f.code for f in above.findings] == ["IMPOSSIBLE_ENTROPY"]
    assert below.findings == [] and below.verdict == "UNDECIDED"


#: A sparse task's episodes: a +10 goal in every tenth, 0 otherwise, 250 steps each.
GOAL_SCORES = np.where(np.arange(len(EP_STEPS)) % 10 == 0, 10.0, 0.0)


@pytest.mark.parametrize("value, flagged", [(10.0 * TH.value_over_best_score + 0.5, True),
                                            (10.0 * TH.value_over_best_score - 0.5, False)])
def test_critic_values_above_the_best_episode_are_flagged_at_the_boundary(value, flagged):
    """No state is worth more than the best whole episode on a task that pays only at goals; a
    critic that says so learned from imagined rewards. The finding says by how much, with the
    imagined and real reward per step of the same window (hand-computed: 1 goal in 15 episodes)."""
    dx = diagnose(build({**no_signal_signals(), "value/mean": value, "episode/score": GOAL_SCORES,
                         "episode/length": 250.0, "reward/imag_mean": 0.03}))
    found = [f for f in dx.findings if f.code == "VALUE_EXCEEDS_RETURNS"]
    assert bool(found) == flagged and (OVERPROMISE_FIX in dx.fixes) == flagged
    if flagged:
        (f,) = found
        last = dx.windows[-1]
        assert f.window == (last.start, last.stop) and f.numbers["best_score"] == 10.0
        assert f.numbers["imagined_reward_per_step"] == pytest.approx(0.03)
        in_window = GOAL_SCORES[(EP_STEPS >= last.start) & (EP_STEPS < last.stop)]
        assert f.numbers["real_reward_per_step"] == pytest.approx(in_window.sum() / (250.0 * len(in_window)))


def test_the_best_episode_is_read_from_score_max_where_a_line_averages_episodes():
    """dreamscope's lines average the episodes they close: a best line mean of 4 hides episodes
    that paid 10, which ``episode/score_max`` keeps. Without it the mean is all there is; a
    task that never paid anything (best ≤ 0) is not judged."""
    means = np.where(np.arange(len(EP_STEPS)) % 10 == 0, 4.0, 0.0)
    signals = {**no_signal_signals(), "value/mean": 12.0, "episode/score": means}
    codes = lambda dx: [f.code for f in dx.findings]  # noqa: E731
    assert "VALUE_EXCEEDS_RETURNS" in codes(diagnose(build(signals)))
    assert "VALUE_EXCEEDS_RETURNS" not in codes(diagnose(build({**signals, "episode/score_max": GOAL_SCORES})))
    assert "VALUE_EXCEEDS_RETURNS" not in codes(diagnose(build({**signals, "episode/score": -means})))


def test_real_air_hockey_run_whose_world_model_imagined_goals_is_flagged():
    """Our own run (tests/fixtures/logs/PROVENANCE.md): goals are worth 10 and end the episode,
    so no state's return exceeds 10, yet the critic ends near 24; imagined steps collected
    several times the reward the episodes did."""
    from dreamscope.logs import read_run

    run = read_run(Path(__file__).parent / "fixtures" / "logs" / "dreamscope_airhockey_imagined_goals.jsonl",
                   format="dreamscope")
    (f,) = [f for f in diagnose(run, action_dim=4, dist="tanh_normal").findings if f.code == "VALUE_EXCEEDS_RETURNS"]
    assert f.numbers["value_median"] > 20 and f.numbers["best_score"] == 2.5  # the best line mean: no score_max
    assert f.numbers["imagined_reward_per_step"] > 3 * f.numbers["real_reward_per_step"] > 0


@pytest.mark.parametrize("level, flagged", [(TH.model_explained_min - 0.01, True), (TH.model_explained_min + 0.01, False)])
def test_a_world_model_that_misses_the_state_is_flagged_at_the_boundary(level, flagged):
    """Only the latest window counts: a model that was blind early and learned is not flagged."""
    early = np.where(STEPS < STEPS[-1] // 2, 0.3, level)
    dx = diagnose(build({**no_signal_signals(), "model/obs_explained_var": early}))
    found = [f for f in dx.findings if f.code == "MODEL_MISSES_STATE"]
    assert bool(found) == flagged and (BLIND_MODEL_FIX in dx.fixes) == flagged
    if flagged:
        assert found[0].window == (dx.windows[-1].start, dx.windows[-1].stop)
        assert found[0].numbers["obs_explained_var"] == pytest.approx(level)
    assert not [f for f in diagnose(build(no_signal_signals())).findings if f.code == "MODEL_MISSES_STATE"]


def test_thresholds_are_the_only_knobs():
    signals = with_(without(bonus_signals(), "actor/logstd_push_pg", "actor/logstd_push_ent", "actor/ent_to_pg_drift_ratio"))
    assert diagnose(build(signals)).verdict == "BONUS_DOMINATES"  # saturation 0.7 ≥ 0.5
    strict = replace(DEFAULT, saturation_high=0.8)
    assert diagnose(build(signals), thresholds=strict).verdict == "NO_SIGNAL"


# --------------------------------------------------------------------------------------
# Missing signals: listed, lower confidence, never a silent flip
# --------------------------------------------------------------------------------------


def test_missing_drift_is_listed_and_lowers_confidence_not_the_verdict():
    full = diagnose(build(bonus_signals()))
    blind = diagnose(build(without(bonus_signals(), "actor/logstd_push_pg", "actor/logstd_push_ent",
                                   "actor/ent_to_pg_drift_ratio")))
    assert blind.verdict == full.verdict == "BONUS_DOMINATES"
    assert blind.confidence < full.confidence
    missing = {m["signal"] for m in blind.missing_signals}
    assert {"actor/logstd_push_pg", "actor/logstd_push_ent", "actor/ent_to_pg_drift_ratio"} <= missing
    assert any(u["check"] == "bonus_drift" and "not logged" in u["why"] for u in blind.undecided)
    assert any("drift not logged" in n for n in blind.notes)


def test_missing_score_lowers_confidence_and_is_named():
    full = diagnose(build(no_signal_signals()))
    blind = diagnose(build(without(no_signal_signals(), "episode/score")))
    assert blind.verdict == full.verdict == "NO_SIGNAL"
    assert blind.confidence < full.confidence
    assert any(u["check"] == "score_rising" and "episode/score" in u["why"] for u in blind.undecided)


def test_unknown_dist_is_read_off_the_fingerprint_and_stated():
    meta = {"action_dim": D}
    dx = diagnose(build(bonus_signals(), meta=meta))
    assert dx.verdict == "BONUS_DOMINATES"
    assert dx.scale.dist == "tanh_normal" and dx.scale.ceiling == pytest.approx(CEIL)
    assert any("fingerprint" in a and "--dist" in a for a in dx.assumptions)
    # overrides win over meta
    assert diagnose(build(bonus_signals(), meta=meta), dist="bounded_normal").scale.ceiling == pytest.approx(D * UNIT)


def test_no_action_dim_still_diagnoses_and_says_what_it_could_not_check():
    meta = {"dist": "tanh_normal", "logstd_min": LO, "logstd_max": HI}
    dx = diagnose(build(bonus_signals(), meta=meta))
    assert all(f.code != "IMPOSSIBLE_ENTROPY" for f in dx.findings)
    assert any("action_dim unknown" in a for a in dx.assumptions)
    assert dx.verdict == "BONUS_DOMINATES"  # σ and drift signals do not need d
    assert diagnose(build(bonus_signals(), meta=meta), action_dim=D).findings[0].code == "IMPOSSIBLE_ENTROPY"


def test_action_dim_is_read_off_an_entropy_pinned_on_a_known_bound_and_only_then():
    """No meta at all: 2 × (½ln(2πe) + ln 0.1) held constant is a 2-D Gaussian on the official σ floor."""
    floor2 = 2 * (UNIT + math.log(0.1))
    dx = diagnose(build({"policy/entropy": floor2, "episode/score": FLAT_SCORE}, meta={}))
    assert dx.scale.action_dim == 2 and dx.scale.dist == "bounded_normal"
    assert dx.verdict == "COLLAPSE"
    assert any("read as 2" in a and "pass --action-dim" in a for a in dx.assumptions)
    # the same level, moving: no σ bound can be read off it, and the doctor says why it did not try
    moving = diagnose(build({"policy/entropy": floor2 + np.linspace(0, 1, len(STEPS))}, meta={}))
    assert moving.scale.action_dim is None
    assert any("never constant" in a for a in moving.assumptions)
    # constant but on no known bound for any d: not read
    off = diagnose(build({"policy/entropy": 0.3}, meta={}))
    assert off.scale.action_dim is None and any("no d ≤ 32" in a for a in off.assumptions)


def test_score_that_jumped_to_a_plateau_rose_so_far():
    """A success score (−10 or +100) that jumps early and stays: the trend test's Theil–Sen slope is 0 there,
    the early-vs-now comparison sees the rise."""
    score = np.where(EP_STEPS < 1200, -10.0, 100.0)
    score[::7] = -10.0
    level = np.concatenate([np.linspace(0.9, 0.3, 120), np.full(len(STEPS) - 120, 0.3)])
    dx = diagnose(build(with_(healthy_signals(), episode__score=score, policy__entropy=ent(level),
                              policy__std_mean=std_at(level))))
    last = dx.windows[-1].checks
    assert last["score_rising"].holds is False and last["score_rose_so_far"].holds
    assert last["entropy_fell_so_far"].holds
    assert dx.verdict == "HEALTHY" and "plateau" in dx.summary


def test_bang_bang_sigma_near_the_clamp_is_the_bonus_before_it_is_pinned():
    """σ in the top of its range, 65 % saturated, the bonus's drift the larger, but not yet 50 % at the bound."""
    signals = with_(bonus_signals(), policy__std_at_upper_frac=0.2, policy__std_mean=std_at(0.97),
                    policy__entropy=ent(0.97), policy__saturation_frac=0.65)
    dx = diagnose(build(signals))
    assert dx.verdict == "BONUS_DOMINATES"
    assert any("not yet pinned" in n for n in dx.notes)


def test_bonus_at_an_unsaturated_ceiling_with_no_signal_is_no_signal():
    """Official head (σ ≤ 1): the bonus walks σ to 1, but the actions are not saturated and the advantages are 0:
    the bonus blocks nothing; the missing signal is the answer (what rewards removed looks like)."""
    signals = with_(bonus_signals(), policy__saturation_frac=0.3)
    dx = diagnose(build(signals))
    assert dx.verdict == "NO_SIGNAL"
    assert any("policy gradient through the mean is intact" in n for n in dx.notes)


def test_logged_floor_and_ceiling_are_used():
    signals = with_(bonus_signals(), policy__entropy_max=CEIL, policy__entropy_min_ref=FLOOR)
    dx = diagnose(build(signals, meta={"action_dim": D, "dist": "tanh_normal"}))
    assert dx.scale.source.startswith("logged")
    assert dx.scale.logstd_hi == pytest.approx(HI)
    assert not any("log σ bounds" in a for a in dx.assumptions)


def test_bad_input_errors():
    with pytest.raises(DreamscopeError, match="no metric"):
        diagnose(Run("empty.jsonl", "synthetic"))
    with pytest.raises(DreamscopeError, match="windows"):
        diagnose(build(bonus_signals()), windows=0)
    with pytest.raises(DreamscopeError, match="dist"):
        diagnose(build(bonus_signals()), dist="gaussian")


def test_degenerate_run_gives_strict_json():
    signals = {"policy/entropy": ent(1.0), "adv/abs_mean": np.nan, "policy/saturation_frac": 0.7,
               "episode/score": np.zeros(len(EP_STEPS))}
    dx = diagnose(build(signals, meta={"action_dim": D}), windows=7)
    json.dumps(dx.to_dict(), allow_nan=False)
    assert len(dx.windows) == 7


def test_unusable_meta_values_are_dropped_and_said():
    meta = {**META, "action_dim": "four", "eta": float("nan"), "logstd_max": None, "std_max": -1}
    dx = diagnose(build(bonus_signals(), meta=meta), action_dim=D)
    assert dx.verdict == "BONUS_DOMINATES"
    assert sum("ignored" in a for a in dx.assumptions) == 3  # action_dim, eta, std_max; None means "not given"
    assert dx.scale.logstd_hi == pytest.approx(HI)  # the tanh_normal default, stated as an assumption
    assert any("log σ bounds not in the run's meta" in a for a in dx.assumptions)


def test_nan_values_are_ignored():
    signals = bonus_signals()
    sat = np.asarray(signals["policy/saturation_frac"], dtype=float).copy()
    sat[::3] = np.nan
    assert diagnose(build(with_(signals, policy__saturation_frac=sat))).verdict == "BONUS_DOMINATES"


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    doctor_cli.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_cli_json_keys(monkeypatch, capsys):
    monkeypatch.setattr(doctor_cli, "load_run", lambda path, fmt, mapping: build(bonus_signals()))
    assert doctor_cli.run(_args("run.jsonl", "--json", "--windows", "3")) == 0
    out = json.loads(capsys.readouterr().out)
    for key in ("verdict", "answer", "evidence", "fixes", "missing_signals", "windows", "findings", "confidence",
                "assumptions", "intervention", "undecided", "summary"):
        assert key in out, key
    assert out["verdict"] == "BONUS_DOMINATES" and len(out["windows"]) == 3
    assert {"signal", "numbers", "window", "implies", "holds"} <= set(out["evidence"][0])
    assert {"rank", "action", "expected_effect"} <= set(out["fixes"][0])


def test_cli_passes_overrides_and_map(monkeypatch, capsys):
    seen = {}

    def fake_load(path, fmt, mapping):
        seen.update(path=path, fmt=fmt, mapping=mapping)
        return build(bonus_signals(), meta={})

    monkeypatch.setattr(doctor_cli, "load_run", fake_load)
    doctor_cli.run(_args("r", "--format", "natural", "--map", "entropy_mean=policy/entropy", "--action-dim", "4",
                         "--dist", "tanh_normal", "--json"))
    out = json.loads(capsys.readouterr().out)
    assert seen == {"path": "r", "fmt": "natural", "mapping": {"entropy_mean": "policy/entropy"}}
    assert out["entropy_scale"]["action_dim"] == 4 and out["entropy_scale"]["dist"] == "tanh_normal"


def test_cli_reads_a_real_run_directory(tmp_path, capsys):
    """End to end through the log reader: a dreamscope run directory (metrics.jsonl + meta.json)."""
    signals = bonus_signals()
    rows = {int(s): {"step": int(s)} for s in STEPS}
    for name, values in signals.items():
        steps = EP_STEPS if name.startswith("episode/") else STEPS
        for step, value in zip(steps, np.broadcast_to(np.asarray(values, dtype=float), steps.shape)):
            rows[int(step)][name] = float(value)
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(rows[s]) + "\n" for s in sorted(rows)))
    (tmp_path / "meta.json").write_text(json.dumps(META))
    report = tmp_path / "report.html"
    assert doctor_cli.run(_args(str(tmp_path), "--json", "--html", str(report))) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["verdict"] == "BONUS_DOMINATES" and out["run"]["format"] == "dreamscope"
    assert out["findings"][0]["code"] == "IMPOSSIBLE_ENTROPY"
    assert report.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    with pytest.raises(DreamscopeError, match="no such file"):
        doctor_cli.run(_args(str(tmp_path / "missing")))
    with pytest.raises(DreamscopeError, match="--format"):
        doctor_cli.run(_args(str(tmp_path), "--format", "nope"))


@pytest.mark.parametrize("argv, option", [
    (("r", "--map", "entropy_mean"), "--map"),
    (("r", "--map", "a=not/canonical"), "--map"),
    (("r", "--windows", "0"), "--windows"),
    (("r", "--action-dim", "four"), "--action-dim"),
    (("r", "--dist", "gaussian"), "--dist"),
    (("r", "--html", "/nonexistent-dir/report.html"), "/nonexistent-dir"),
])
def test_cli_bad_options_name_the_option(monkeypatch, argv, option):
    monkeypatch.setattr(doctor_cli, "load_run", lambda *a: pytest.fail("should fail before reading"))
    with pytest.raises(DreamscopeError, match=option.replace("-", r"\-")):
        doctor_cli.run(_args(*argv))


def test_terminal_summary_fits_a_screen_and_prints_log_strings_literally():
    from rich.console import Console

    run = build(bonus_signals(), warnings=["[bold]key entropy_mean renamed[/bold]"])
    console = Console(record=True, width=120, force_terminal=False)
    doctor_cli.render(diagnose(run), console=console)
    text = console.export_text()
    assert "BONUS_DOMINATES" in text and "Confirm:" in text and "Fixes, best first" in text
    assert "[bold]key entropy_mean renamed[/bold]" in text
    assert len(text.splitlines()) <= 60


def test_terminal_summary_keeps_notes_apart_from_undecided_checks():
    from dataclasses import replace

    from rich.console import Console

    diagnosis = replace(diagnose(build(bonus_signals())), notes=["the drift was not logged"],
                        undecided=[{"check": "score_rising", "why": "no episode scores"}])
    console = Console(record=True, width=200, force_terminal=False)
    doctor_cli.render(diagnosis, console=console)
    lines = console.export_text().splitlines()
    assert "Note: the drift was not logged" in lines
    assert "Could not decide: score_rising (no episode scores)" in lines


# --------------------------------------------------------------------------------------
# Real runs of other implementations (../shared/realruns), and the seed's numbers
# --------------------------------------------------------------------------------------

REALRUNS = Path(__file__).resolve().parents[2] / "shared" / "realruns"
SEED_EXAMPLE = Path(__file__).resolve().parents[1] / "docs" / "seed_example.csv"


def real_diagnosis(name: str, mapping: dict | None = None, **kwargs):
    from dreamscope.logs import read_run

    path = REALRUNS / name
    if not (path / "metrics.jsonl").is_file():
        pytest.skip(f"real logs not found at {path} (shared/ must sit beside the clone)")
    return diagnose(read_run(path, mapping=mapping), **kwargs)


def shown(dx, check: str):
    return next(e for e in dx.evidence if e.check == check)


def test_real_ajayghimire_dead_actor_gradient_at_the_std_floor_is_no_signal_not_collapse():
    """Entropy −0.8836 at every point = 1 × (½ln(2πe) + ln 0.1): a 1-D Gaussian on its σ = 0.1 floor, read off
    the pinned value (no meta, no --action-dim). Its actor_grad_norm falls to ~1e-10 (numerical zero): nothing
    reaches the actor, so the floor is where σ was left, not what stops learning — NO_SIGNAL/symptom."""
    dx = real_diagnosis("dreamerv3-torch_ajayghimire")  # the reader maps actor_grad_norm itself
    assert dx.verdict == "NO_SIGNAL" and dx.answer == "symptom"
    assert [w.verdict for w in dx.windows] == ["NO_SIGNAL"] * 4
    dead = shown(dx, "actor_grad_dead")
    assert dead.holds and dead.numbers["grad_norm_median"] < 1e-9
    assert dx.scale.action_dim == 1 and dx.scale.floor == pytest.approx(-0.8836, abs=1e-4)
    assert any("read as 1" in a and "-0.8836" in a for a in dx.assumptions)
    # Without the gradient norm the same log reads as a collapse at the floor, returns unchecked.
    from dreamscope.logs import read_run

    run = read_run(REALRUNS / "dreamerv3-torch_ajayghimire")
    assert run.sources["actor/grad_norm"] == "actor_grad_norm"
    del run.series["actor/grad_norm"]
    blind = diagnose(run)
    assert blind.verdict == "COLLAPSE" and 0.3 < blind.confidence < 0.5
    assert shown(blind, "entropy_low").numbers["normalised"] == pytest.approx(0.0, abs=1e-3)


def test_real_crafter_is_healthy_converged_plateau():
    """Entropy falls from ln 17 while the score rises, then both flatten: judged over the run as a whole."""
    dx = real_diagnosis("dreamerv3_crafter_yap-cod")
    assert dx.verdict == "HEALTHY"
    assert [w.verdict for w in dx.windows] == ["HEALTHY"] * 4
    level = shown(dx, "entropy_high").numbers["normalised"]
    assert DEFAULT.entropy_low_norm < level < DEFAULT.entropy_high_norm  # mid-range: ≈ 0.21 of ln 17
    assert level == pytest.approx(0.21, abs=0.02)
    rose = shown(dx, "score_rose_so_far")
    assert rose.holds and rose.numbers["mean_now"] - rose.numbers["mean_early"] > 2.5  # 1.8 → 4.9
    assert shown(dx, "entropy_fell_so_far").holds
    assert "plateau" in dx.summary and dx.confidence > 0.7
    assert "VALUE_EXCEEDS_RETURNS" not in [f.code for f in dx.findings]  # values ≤ 0.92, best score 10.1


def test_real_home_nav_is_healthy_converged_at_the_floor():
    dx = real_diagnosis("dreamerv3_home-nav")
    assert dx.verdict == "HEALTHY"
    assert shown(dx, "entropy_low").numbers["normalised"] < DEFAULT.entropy_low_norm  # 0.08 of ln 5
    assert shown(dx, "score_rose_so_far").numbers["mean_now"] == pytest.approx(15.1, abs=0.2)
    assert "Converged" in dx.summary
    assert "VALUE_EXCEEDS_RETURNS" not in [f.code for f in dx.findings]  # values ≤ 13.5, best score 15.3


def test_real_turtlebot_stage2_is_healthy_with_the_entropy_scale_unknown():
    """Success score −10/+100: the rate rose to ~97 % while the entropy fell by > 1 nat; 23 training lines are
    enough for the run-wide comparison, but without --action-dim only the fall, not the level, can be judged."""
    dx = real_diagnosis("dreamerv3-torch_turtlebot_stage2_10")
    assert dx.verdict == "HEALTHY"
    fell = shown(dx, "entropy_fell_so_far")
    assert fell.holds and fell.numbers["mean_now"] < -1.0 < fell.numbers["mean_early"] + 1.0
    assert dx.confidence < 0.6 and any("--action-dim" in n for n in dx.notes)
    # Told the action dim, the level is judged too, and the confidence rises.
    told = real_diagnosis("dreamerv3-torch_turtlebot_stage2_10", action_dim=2)
    assert told.verdict == "HEALTHY" and told.confidence > dx.confidence
    assert told.scale.dist == "bounded_normal"


def test_real_turtlebot_stage1_three_training_lines_get_a_low_confidence_verdict():
    """Three training lines (entropy 2.53 → 1.59 → −0.92) while every episode comes to reach the goal: too thin
    for windows, so judged as one with relaxed point counts — HEALTHY, at a confidence that says how little."""
    dx = real_diagnosis("dreamerv3-torch_turtlebot_stage1_10")
    assert dx.verdict == "HEALTHY" and len(dx.windows) == 1
    assert dx.confidence < 0.35
    assert dx.thresholds.min_points == DEFAULT.thin_min_points
    rose = shown(dx, "score_rose_so_far")
    assert rose.holds and rose.numbers["mean_now"] == pytest.approx(99.2, abs=0.1)


def test_seed_example_csv_is_the_bonus_at_the_clamp_with_the_impossible_entropy_finding():
    """docs/seed_example.csv: the question's numbers (13.67 flat, |adv| ≈ 0.05, ±10 scores, 4-D) in
    NaturalDreamer's CSV format — a reconstruction, not the user's log."""
    from dreamscope.logs import read_run

    dx = diagnose(read_run(SEED_EXAMPLE), action_dim=4)
    finding = dx.findings[0]
    assert finding.code == "IMPOSSIBLE_ENTROPY"
    assert finding.numbers["logged_entropy"] == pytest.approx(13.67, abs=0.01)
    assert "log σ pinned at the upper clamp 2" in finding.detail["explanation"]
    assert dx.verdict == "BONUS_DOMINATES" and dx.answer == "cause"
    assert "pinned at its clamp" in dx.summary and "bonus is the likely cause" in dx.summary
    assert dx.confidence < 0.55  # drift, σ and saturation are inferred, not logged
    undecided = {u["check"] for u in dx.undecided}
    assert {"bonus_drift", "adv_weak"} <= undecided
    assert not shown(dx, "saturated").decisive
    assert "η = 0" in dx.intervention


def test_junk_values_never_crash_the_doctor(tmp_path):
    """Negative stds (log → NaN) and noise everywhere: a verdict comes out, no exception."""
    import json as _json

    rng = np.random.default_rng(0)
    keys = ("policy/entropy", "policy/std_mean", "policy/saturation_frac", "actor/logstd_push_pg",
            "actor/logstd_push_ent", "adv_norm/abs_mean", "return/scale", "episode/score")
    with open(tmp_path / "metrics.jsonl", "w") as f:
        for i in range(500):
            f.write(_json.dumps({"step": 16 * i, **{k: float(rng.normal()) for k in keys}}) + "\n")
    (tmp_path / "meta.json").write_text(_json.dumps({"action_dim": 4, "dist": "tanh_normal", "eta": 3e-3}))
    from dreamscope.logs import read_run

    assert diagnose(read_run(tmp_path)).verdict
