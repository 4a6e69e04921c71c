"""The misclassification classes of issue 24, each on a run that shows it (synthetic logs built here, in the
shapes other implementations write; the real-log cases are in test_doctor.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from dreamscope.diagnostics.doctor import diagnose
from dreamscope.logs.schema import Run, Series
from test_doctor import (EP_STEPS, FLAT_SCORE, META, RISING_SCORE, STEPS, bonus_signals, build, collapse_signals,
                         ent, healthy_signals, noise)

UNIT = 0.5 * math.log(2 * math.pi * math.e)


def shown(dx, check: str):
    return next(e for e in dx.evidence if e.check == check)


def without_advantages(signals: dict) -> dict:
    """What other implementations log: no advantages or return scale next to the gradient norm."""
    return {k: v for k, v in signals.items() if not k.startswith(("adv", "return/"))}


def test_dead_actor_gradient_at_the_floor_is_no_signal_not_collapse():
    s = without_advantages(collapse_signals())
    alive = build({**s, "actor/grad_norm": 0.5 + noise(7, 0.05)})
    assert diagnose(alive).verdict == "COLLAPSE"
    dead = np.where(STEPS < 1000, 0.5, 3e-12)  # numerical zero after the first updates
    dx = diagnose(build({**s, "actor/grad_norm": dead}))
    assert dx.verdict == "NO_SIGNAL" and dx.answer == "symptom"
    assert shown(dx, "actor_grad_dead").holds


def test_actor_gradient_fallen_by_orders_of_magnitude_is_dead_at_the_boundary():
    s = without_advantages(collapse_signals())
    for fall, verdict in ((5e-4, "NO_SIGNAL"), (5e-2, "COLLAPSE")):
        norm = np.where(STEPS < 1200, 2.0, 2.0 * fall)
        assert diagnose(build({**s, "actor/grad_norm": norm})).verdict == verdict, fall


def official_bounded_normal(final_frac: float, score) -> Run:
    """Official DreamerV3 on a 1-D task (BoundedNormal, σ ∈ [0.1, 1]) logging only entropy and score, its
    entropy climbing after η was raised to ``final_frac`` of the Gaussian ceiling ½ln(2πe) = 1.419."""
    ceiling = UNIT
    h = np.linspace(0.3, final_frac * ceiling, len(STEPS)) + noise(8, 0.005)
    series = {"policy/entropy": Series(STEPS, h), "episode/score": Series(EP_STEPS, score)}
    return Run("official.jsonl", "dreamerv3", series, {n: n for n in series},
               {"action_dim": 1, "dist": "bounded_normal"}, [])


def test_official_entropy_at_its_ceiling_with_a_random_score_is_bonus_dominates():
    random_level = -1200.0 + 80.0 * np.sin(np.arange(len(EP_STEPS)) * 2.4)  # Pendulum at chance
    dx = diagnose(official_bounded_normal(0.98, random_level))
    assert dx.verdict == "BONUS_DOMINATES" and dx.answer == "cause"
    assert shown(dx, "sigma_at_ceiling").numbers["logstd_normalised"] > 0.9
    assert dx.confidence < 0.6  # σ read off the entropy, the drift not logged
    # The same climb that stops at 0.6 of the ceiling is no pinned σ.
    assert diagnose(official_bounded_normal(0.6, random_level)).verdict != "BONUS_DOMINATES"


def test_a_high_sigma_read_off_the_entropy_while_the_score_rises_is_exploring():
    """Without the drift, nothing says the bonus holds σ: a rising score makes it exploration, not a cause."""
    rising = np.linspace(-1200.0, -300.0, len(EP_STEPS)) + 30.0 * np.sin(np.arange(len(EP_STEPS)) * 2.4)
    dx = diagnose(official_bounded_normal(0.98, rising))
    assert dx.verdict == "EXPLORING" and dx.answer == "expected"


def test_sigma_pinned_by_the_bonus_while_the_score_rises_is_pinned_learning():
    s = bonus_signals()
    assert diagnose(build(s)).verdict == "BONUS_DOMINATES"
    dx = diagnose(build({**s, "episode/score": RISING_SCORE}))
    assert dx.verdict == "PINNED_LEARNING" and dx.answer == "expected"
    assert shown(dx, "bonus_drift").holds and shown(dx, "score_rising").holds


def mountaincar(score_now: float) -> Run:
    """MountainCarContinuous: −0.1·a² a step, +100 at the goal; the entropy falls to the floor as the actions
    shrink, and the score climbs from −50 towards ``score_now``."""
    s = healthy_signals()
    falling = np.linspace(0.5, 0.02, len(STEPS))
    score = np.linspace(-50.0, score_now, len(EP_STEPS)) + np.sin(np.arange(len(EP_STEPS)) * 2.4)
    s.update({"policy/entropy": ent(falling), "policy/std_mean": np.exp(-5 + 7 * falling), "episode/score": score})
    return build(s, {**META, "task": "MountainCarContinuous-v0"})


def test_do_nothing_optimum_without_a_reward_event_is_no_signal_not_healthy():
    dx = diagnose(mountaincar(-3.6))
    assert dx.verdict == "NO_SIGNAL" and dx.answer == "symptom"
    seen = shown(dx, "reward_seen")
    assert seen.holds is False and seen.numbers["best_score"] < 0
    # The goal reached (scores above 0): the same shape is healthy.
    assert diagnose(mountaincar(90.0)).verdict == "HEALTHY"


def test_no_run_whose_scores_are_all_zero_is_healthy():
    s = healthy_signals()
    dx = diagnose(build({**s, "episode/score": np.zeros(len(EP_STEPS))}))
    assert dx.verdict == "NO_SIGNAL" and shown(dx, "reward_seen").holds is False


def test_an_unknown_task_with_only_negative_scores_stays_open():
    """Pendulum pays only costs: a rise from −1200 to −150 is learning; with the task unknown the doctor cannot
    tell it from a goal never reached, says so, and does not call it NO_SIGNAL."""
    s = healthy_signals()
    score = np.linspace(-1200.0, -150.0, len(EP_STEPS)) + 20 * np.sin(np.arange(len(EP_STEPS)) * 2.4)
    unknown = diagnose(build({**s, "episode/score": score}))
    assert unknown.verdict == "HEALTHY"
    assert "reward_seen" in {u["check"] for u in unknown.undecided}
    told = diagnose(build({**s, "episode/score": score}, {**META, "task": "Pendulum-v1"}))
    assert told.verdict == "HEALTHY" and told.confidence > unknown.confidence


def test_thin_log_without_entropy_whose_gradient_died_is_no_signal_with_low_confidence():
    """Eight training lines, no entropy: the actor's gradient norm dies and the score goes to 0."""
    steps = np.arange(0, 8000, 1000)
    grad = np.array([0.8, 0.5, 0.1, 1e-5, 1e-9, 1e-11, 1e-12, 1e-12])
    ep = np.arange(0, 8000, 500)
    score = np.concatenate([np.linspace(4.0, 1.0, 8), np.zeros(8)])
    series = {"actor/grad_norm": Series(steps, grad), "episode/score": Series(ep, score)}
    dx = diagnose(Run("thin.jsonl", "dreamerv3-torch", series, {n: n for n in series}, {}, []))
    assert dx.verdict == "NO_SIGNAL" and dx.answer == "symptom"
    assert dx.confidence < 0.5


def test_task_option_tells_the_doctor_a_goal_task(monkeypatch, capsys):
    import json

    from dreamscope.diagnostics import doctor_cli
    from test_doctor import _args

    run = mountaincar(-3.6)
    del run.meta["task"]
    monkeypatch.setattr(doctor_cli, "load_run", lambda path, fmt, mapping: run)
    assert doctor_cli.run(_args("run.jsonl", "--json")) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == "HEALTHY"  # the log alone cannot tell
    assert doctor_cli.run(_args("run.jsonl", "--json", "--task", "MountainCarContinuous-v0")) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["verdict"], out["learning_blocked_by"]) == ("NO_SIGNAL", "no_signal")


def test_a_long_log_is_thinned_without_changing_the_verdict_or_losing_a_reward():
    from dataclasses import replace

    from dreamscope.diagnostics.doctor.engine import thinned
    from dreamscope.diagnostics.thresholds import DEFAULT

    reps = 100  # 60,000 training points: three times the default limit
    series = {}
    for name, values in bonus_signals().items():
        steps = EP_STEPS if name.startswith("episode/") else STEPS
        v = np.broadcast_to(np.asarray(values, float), steps.shape)
        fine = np.repeat(steps, reps) + np.tile(np.arange(reps) * (steps[1] - steps[0]) // reps, len(steps))
        series[name] = Series(fine, np.repeat(v, reps) + noise(9, 1e-6)[0])
    run = Run("long.jsonl", "synthetic", series, {n: n for n in series}, dict(META), [])
    small = thinned(run, DEFAULT.max_points)
    assert max(len(s) for s in small.series.values()) <= DEFAULT.max_points
    assert diagnose(run).verdict == diagnose(run, thresholds=replace(DEFAULT, max_points=10**6)).verdict \
        == "BONUS_DOMINATES"
    # one goal among 6,000 losing episodes survives the thinning as a block's best score
    score = series["episode/score"].values.copy()
    score[:] = -10.0
    score[4321] = 10.0
    run.series["episode/score"] = Series(series["episode/score"].steps, score)
    best = thinned(run, 1000).get("episode/score_max")
    assert best is not None and best.values.max() == 10.0 and len(best) <= 1000


def test_a_short_run_with_nothing_wrong_in_its_log_is_early_not_undecided():
    """Nine CSV lines of a 1-D pre-tanh Gaussian on Pendulum (NaturalDreamer's shape): the entropy sits mid-range,
    rewards flow (a dense task), the score wanders at the random level. No fault shows: EXPLORING, confidence low."""
    steps = np.arange(800, 2401, 200)
    h = np.array([-0.67, -0.65, -0.74, -0.65, -0.70, -0.86, -0.85, -0.88, -0.84])
    score = np.array([-1684.0, -1332.0, -904.0, -852.0, -1080.0, -1440.0, -1710.0, -1507.0, -1238.0])
    series = {"policy/entropy": Series(steps, h), "episode/score": Series(steps, score)}
    run = Run("nd.csv", "naturaldreamer", series, {n: n for n in series}, {"task": "Pendulum-v1"}, [])
    dx = diagnose(run, action_dim=1, dist="tanh_normal")
    assert (dx.verdict, dx.learning_blocked_by) == ("EXPLORING", "nothing")
    assert dx.confidence < 0.4 and len(dx.windows) == 1
    # The same log with the entropy at its floor is no such thing.
    floor = {**series, "policy/entropy": Series(steps, np.full(len(steps), UNIT - 5.0))}
    assert diagnose(Run("nd.csv", "naturaldreamer", floor, {n: n for n in floor}, {"task": "Pendulum-v1"}, []),
                    action_dim=1, dist="tanh_normal").verdict != "EXPLORING"


def test_without_entropy_a_live_actor_gradient_and_rewards_read_as_early_at_lower_confidence():
    steps = np.arange(0, 2000, 100)
    score = -1300.0 + 150.0 * np.sin(np.arange(len(steps)) * 2.4)
    alive = {"actor/grad_norm": Series(steps, 0.3 + 0.01 * np.cos(np.arange(len(steps)))),
             "episode/score": Series(steps, score)}
    dx = diagnose(Run("tb", "sheeprl", alive, {n: n for n in alive}, {"task": "Pendulum-v1"}, []), action_dim=1)
    assert dx.verdict == "EXPLORING" and dx.confidence < 0.3
    # without the gradient there is nothing to read about the actor: undecided
    del alive["actor/grad_norm"]
    assert diagnose(Run("tb", "sheeprl", alive, {n: n for n in alive}, {"task": "Pendulum-v1"}, []),
                    action_dim=1).verdict == "UNDECIDED"


def official_flat(h: float) -> Run:
    """Official DreamerV3, 1-D, its entropy flat at ``h``; a cartpole score at the random level."""
    score = 100.0 + 60.0 * np.sin(np.arange(len(EP_STEPS)) * 2.4)
    series = {"policy/entropy": Series(STEPS, np.full(len(STEPS), h)), "episode/score": Series(EP_STEPS, score)}
    return Run("official.jsonl", "dreamerv3", series, {n: n for n in series},
               {"action_dim": 1, "dist": "bounded_normal", "task": "dmc_cartpole_swingup"}, [])


def test_official_sigma_at_its_initial_value_is_not_held_by_the_bonus():
    """σ = 0.9·sigmoid(2) + 0.1 ≈ 0.893 at initialisation is 0.95 of the log range already: near the ceiling,
    but neither on it nor climbed there — nothing holds it; on the bound σ = 1 itself it is the bonus."""
    initial = UNIT + math.log(0.9 / (1 + math.exp(-2.0)) + 0.1)
    dx = diagnose(official_flat(initial))
    assert dx.verdict == "EXPLORING" and dx.windows[-1].checks["sigma_at_ceiling"].numbers["on_bound"] == 0.0
    pinned = diagnose(official_flat(UNIT))
    assert (pinned.verdict, pinned.entropy_held_by) == ("BONUS_DOMINATES", "bonus")


def test_weak_advantages_without_any_logged_mechanism_and_no_learning_are_no_signal():
    """Official DreamerV3 logs |advantage| (train/adv_mag) but neither the return scale, the reward head nor the
    critic's fit: advantages ≈ 0 with a flat score are read as no signal, at lowered confidence."""
    run = official_flat(UNIT - 1.0)  # σ ≈ 0.37: mid-range
    run.series["adv_norm/abs_mean"] = Series(STEPS, np.full(len(STEPS), 0.002))
    dx = diagnose(run)
    assert (dx.verdict, dx.learning_blocked_by) == ("NO_SIGNAL", "no_signal") and dx.confidence < 0.6
    run.series["adv_norm/abs_mean"] = Series(STEPS, np.full(len(STEPS), 0.3))  # signal: nothing wrong yet
    assert diagnose(run).verdict == "EXPLORING"


def test_a_live_gradient_that_never_moves_sigma_is_a_dead_actor():
    """An actor whose gradient is computed but never applied (learning rate 0): σ stays put off its bounds."""
    s = {**healthy_signals(), "actor/pg_grad_norm": 0.04 + noise(10, 0.005),
         "policy/entropy": ent(0.6) + noise(11, 1e-5), "policy/std_mean": np.exp(-5 + 7 * 0.6) * (1 + noise(12, 1e-5)),
         "episode/score": FLAT_SCORE, "adv_norm/abs_mean": 0.3, "return/scale": 3.0}
    dx = diagnose(build(s))
    assert dx.verdict == "NO_SIGNAL" and shown(dx, "actor_grad_dead").numbers["std_relative_spread"] < 1e-3
    moving = {**s, "policy/std_mean": np.exp(-5 + 7 * np.linspace(0.6, 0.5, len(STEPS)))}
    assert diagnose(build(moving)).windows[-1].checks["actor_grad_dead"].holds is False


def test_official_sigma_climbing_the_last_stretch_to_its_ceiling_is_the_bonus():
    """η × 100 on official DreamerV3: the entropy climbs 1.306 → 1.356 (σ 0.89 → 0.94 of its max 1) — under a
    twentieth of the floor–ceiling range, but most of the headroom that was left — with the score at chance."""
    run = official_flat(1.306)
    run.series["policy/entropy"] = Series(STEPS, np.linspace(1.306, 1.356, len(STEPS)) + noise(13, 1e-4))
    dx = diagnose(run)
    assert (dx.verdict, dx.entropy_held_by, dx.learning_blocked_by) == ("BONUS_DOMINATES", "bonus", "entropy")


def test_a_gradient_killed_by_a_collapsed_sigma_while_advantages_carry_signal_is_collapse():
    """η = 0 with a narrow std floor: σ falls onto its floor, the actions saturate and the actor's gradient dies —
    while the advantages still carry signal. The collapse stopped the signal reaching the actor: COLLAPSE."""
    s = collapse_signals()  # advantages 0.2 of the return scale: a signal
    dead = np.where(STEPS < 1000, 0.5, 8e-15)
    dx = diagnose(build({**s, "actor/grad_norm": dead}))
    assert (dx.verdict, dx.entropy_held_by, dx.learning_blocked_by) == ("COLLAPSE", "floor", "entropy")
    # with the advantages unlogged (other implementations), the dead gradient is the symptom reading
    assert diagnose(build({**without_advantages(s), "actor/grad_norm": dead})).verdict == "NO_SIGNAL"


def test_entropy_climbing_into_the_top_quarter_with_a_random_score_is_the_bonus_on_its_way_up():
    """NaturalDreamer η × 100 (pre-tanh, log σ ∈ (−5, 2), 1-D): the entropy climbs −0.67 → 2.6 nats (0.45 → 0.86
    of its range), not yet at the clamp, while the score stays at the random level."""
    steps = np.arange(800, 5201, 200)
    h = -0.67 + 3.3 * (1 - np.exp(-np.arange(len(steps)) / 8.0))
    score = -1250.0 + 250.0 * np.sin(np.arange(len(steps)) * 2.4)
    series = {"policy/entropy": Series(steps, h), "episode/score": Series(steps, score)}
    run = Run("nd.csv", "naturaldreamer", series, {n: n for n in series}, {"task": "Pendulum-v1"}, [])
    dx = diagnose(run, action_dim=1, dist="tanh_normal")
    assert (dx.verdict, dx.entropy_held_by) == ("BONUS_DOMINATES", "bonus") and dx.confidence < 0.6
