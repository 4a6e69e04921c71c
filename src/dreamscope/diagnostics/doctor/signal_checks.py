"""Evidence checks on the learning signal: advantages, return scale, rewards, critic, score, actor gradient."""

from __future__ import annotations

import math

import numpy as np

from dreamscope.diagnostics.doctor.evidence import Evidence, fmt
from dreamscope.diagnostics.doctor.scale import task_rewards
from dreamscope.diagnostics.doctor.window import Window, check
from dreamscope.stats import shift_test


@check(produces=("adv_weak",),
       reads=("adv_norm/abs_mean", "adv/abs_mean", "return/scale"))
def adv_weak(w: Window) -> None:
    th = w.th
    norm = w.level("adv_norm/abs_mean")
    raw = w.level("adv/abs_mean")
    scale = w.level("return/scale")
    if norm is not None:
        value, how = norm, "adv_norm/abs_mean"
    elif raw is not None and scale is not None:
        value, how = raw / max(w.return_limit, scale), "adv/abs_mean / max(limit, return/scale)"
    elif raw is not None and raw < th.adv_weak_norm and w.return_limit >= 1:
        value = raw
        how = "adv/abs_mean (the normalised value is at most this: it is divided by max(limit, S) ≥ 1)"
    else:
        w.results["adv_weak"] = w.missing(
            "adv_weak", "adv_norm/abs_mean",
            f"{w.why_missing('adv_norm/abs_mean')}; "
            "raw advantages alone cannot be put next to the return scale")
        return
    holds = value < th.adv_weak_norm
    nums = {"adv_norm_abs_mean": value, "adv_abs_mean": raw, "return_scale": scale}
    w.results["adv_weak"] = Evidence(
        "adv_weak", how, holds, {k: v for k, v in nums.items() if v is not None}, (w.start, w.stop),
        f"|advantage| in return-scale units {fmt(value)} ({'<' if holds else '≥'} {th.adv_weak_norm}): "
        + ("≈ 0 — almost no learning signal" if holds else "the advantages carry signal"))


@check(produces=("return_scale_under",),
       reads=("return/scale",))
def return_scale_under(w: Window) -> None:
    scale = w.level("return/scale")
    if scale is None:
        w.results["return_scale_under"] = w.missing("return_scale_under", "return/scale")
        return
    ratio = scale / w.return_limit
    holds = ratio < w.th.return_scale_under
    w.results["return_scale_under"] = Evidence(
        "return_scale_under", "return/scale", holds, {"return_scale": scale, "limit": w.return_limit},
        (w.start, w.stop),
        f"S = {fmt(scale)} is {'under' if holds else 'at or over'} its limit {w.return_limit:g}: "
        + ("the normaliser is inactive — imagined returns barely spread" if holds else "returns spread"))


@check(produces=("head_misses",),
       reads=("reward/head_hit_rate", "reward/replay_nonzero_frac"))
def head_misses(w: Window) -> None:
    hit = w.level("reward/head_hit_rate")
    replay = w.level("reward/replay_nonzero_frac")
    if replay is not None and replay == 0.0:
        w.results["head_misses"] = Evidence(
            "head_misses", "reward/replay_nonzero_frac", True, {"replay_nonzero_frac": 0.0},
            (w.start, w.stop),
            "replay holds no reward events at all: there is nothing for the reward head to learn")
        return
    if hit is None:
        w.results["head_misses"] = w.missing("head_misses", "reward/head_hit_rate")
        return
    if replay is not None and replay > w.th.sparse_reward_max_frac:
        w.results["head_misses"] = Evidence(
            "head_misses", "reward/replay_nonzero_frac", None, {"replay_nonzero_frac": replay, "head_hit_rate": hit},
            (w.start, w.stop),
            f"rewards are dense ({replay:.0%} of replay steps, > {w.th.sparse_reward_max_frac:.0%}): "
            "the check of sparse reward events does not apply")
        return
    holds = hit < w.th.head_hit_min
    nums = {"head_hit_rate": hit}
    if replay is not None:
        nums["replay_nonzero_frac"] = replay
    w.results["head_misses"] = Evidence(
        "head_misses", "reward/head_hit_rate", holds, nums, (w.start, w.stop),
        f"the reward head hits {hit:.0%} of the replay's reward events "
        + (f"(< {w.th.head_hit_min:.0%}): imagined returns miss the sparse rewards" if holds
           else f"(≥ {w.th.head_hit_min:.0%}): it predicts them"))


@check(produces=("critic_trivial",),
       reads=("value/explained_var",))
def critic_trivial(w: Window) -> None:
    ev = w.level("value/explained_var")
    if ev is None:
        w.results["critic_trivial"] = w.missing("critic_trivial", "value/explained_var")
        return
    holds = ev >= w.th.critic_trivial_ev
    w.results["critic_trivial"] = Evidence(
        "critic_trivial", "value/explained_var", holds, {"explained_var": ev}, (w.start, w.stop),
        f"critic explains {ev:.0%} of the λ-return variance "
        + (f"(≥ {w.th.critic_trivial_ev:.0%}): advantages keep ≤ {1 - ev:.0%} of it" if holds
           else "— it leaves the advantages their variance"))


@check(produces=("score_rising", "score_falling"),
       reads=("episode/score",))
def score_trends(w: Window) -> None:
    direction, nums = w.signal_trend("episode/score")
    window = (w.start, w.stop)
    for check, sign, word in (("score_rising", 1, "rise"), ("score_falling", -1, "fall")):
        if direction is None:
            w.results[check] = Evidence(check, "episode/score", None, {}, window,
                                           w.why_missing("episode/score"))
            continue
        w.results[check] = Evidence(
            check, "episode/score", direction == sign, nums, window,
            f"score {'rises' if direction == 1 else 'falls' if direction == -1 else 'does not ' + word} "
            f"in this window (Mann–Kendall p = {fmt(nums['p'])}, "
            f"Theil–Sen change {fmt(nums['change_per_spread'])} of its spread)")


@check(produces=("signal_rising",),
       reads=("episode/score", "adv_norm/abs_mean", "reward/head_hit_rate", "return/scale"))
def signal_rising(w: Window) -> None:
    names = ("episode/score", "adv_norm/abs_mean", "reward/head_hit_rate", "return/scale")
    rising, decided = [], []
    for name in names:
        direction, _ = w.signal_trend(name, tests=len(names))
        if direction is not None:
            decided.append(name)
            if direction == 1:
                rising.append(name)
    if not decided:
        w.results["signal_rising"] = w.missing("signal_rising", ", ".join(names), w.why_missing(*names))
        return
    w.results["signal_rising"] = Evidence(
        "signal_rising", ", ".join(decided), bool(rising), {"rising": len(rising), "tested": len(decided)},
        (w.start, w.stop),
        (f"rising: {', '.join(rising)}" if rising else f"none of {', '.join(decided)} rises significantly")
        + f" (Mann–Kendall at α = {w.th.trend_alpha:g}/{len(names)}, any of {len(names)} signals counts)")


@check(produces=("score_kept",),
       reads=("episode/score",))
def score_kept(w: Window) -> None:
    """Is the score now no lower than it was between the run's early stretch and this window?"""
    name = "episode/score"
    _, _, _, now = w.early_and_now(name)
    series = w.run.get(name)
    # The best earlier stretch as long as this window: a run that learned and then lost it
    # has not kept its score, whatever it was at the start.
    before, width = np.empty(0), max(w.stop - w.start, 1)
    for end in range(w.start, w.run_start, -width) if series is not None else ():
        v = series.window(max(end - width, w.run_start), end).values
        v = v[np.isfinite(v)]
        if len(v) >= w.th.min_points and (not len(before) or v.mean() > before.mean()):
            before = v
    if len(now) < w.th.min_points or len(before) < w.th.min_points:
        w.results["score_kept"] = w.missing(
            "score_kept", name, f"no earlier stretch of {width} steps with {w.th.min_points} scores before "
            f"step {w.start}, or {len(now)} score(s) now")
        return
    sh = shift_test(before, now)
    holds = sh.p_down >= w.th.trend_alpha
    w.results["score_kept"] = Evidence(
        "score_kept", name, holds, {"mean_before": sh.mean_early, "mean_now": sh.mean_late, "p": sh.p_down},
        (w.run_start, w.stop),
        f"score mean {fmt(sh.mean_late)} now vs {fmt(sh.mean_early)} in the best earlier stretch (Mann–Whitney p = "
        f"{fmt(sh.p_down)} for a fall): " + ("kept" if holds else "fell back"))


@check(produces=("actor_grad_dead",),
       reads=("actor/grad_norm", "actor/pg_grad_norm", "policy/std_mean"),
       depends=("sigma_at_ceiling", "sigma_at_floor"))
def actor_grad_dead(w: Window) -> None:
    """Does no update reach the actor? Its gradient at numerical zero or fallen by orders of magnitude since the
    run's start — or alive while σ never moves (off its bounds): the updates are computed but never applied."""
    th = w.th
    name = next((n for n in ("actor/grad_norm", "actor/pg_grad_norm") if w.run.get(n) is not None),
                "actor/grad_norm")
    now = w.level(name)
    if now is None:
        w.results["actor_grad_dead"] = w.missing("actor_grad_dead", name)
        return
    _, _, early, _ = w.early_and_now(name)
    early_level = float(np.median(np.abs(early))) if len(early) else math.nan
    fall = abs(now) / early_level if early_level > 0 else math.nan
    zero = abs(now) <= th.grad_dead_abs
    fell = math.isfinite(fall) and fall <= th.grad_dead_fall
    nums = {"grad_norm_median": now, "grad_norm_early": early_level, "fall": fall}
    _, std = w.points("policy/std_mean", w.run_start)
    on_bound = w.results["sigma_at_ceiling"].holds is True or w.results["sigma_at_floor"].holds is True
    frozen = False
    if len(std) >= 2 * th.min_points and not on_bound and np.median(std) > 0:
        nums["std_relative_spread"] = spread = float(np.ptp(std) / np.median(std))
        frozen = spread <= th.frozen_std_rel
    implies = (f"≤ {th.grad_dead_abs:g}: numerical zero — no gradient reaches the actor" if zero else
               f"= {fmt(fall)} of its early {fmt(early_level)} (≤ {th.grad_dead_fall:g}): fallen by orders of "
               "magnitude — almost no gradient reaches the actor" if fell else
               f"is alive, yet σ has not moved since the run's start (relative spread {fmt(nums['std_relative_spread'])}"
               f" ≤ {th.frozen_std_rel:g}) while off its bounds: the updates are never applied (actor learning rate "
               "0, or an optimizer without the actor's parameters)" if frozen else "is alive")
    w.results["actor_grad_dead"] = Evidence("actor_grad_dead", name, zero or fell or frozen, nums, (w.start, w.stop),
                                            f"{name} median {fmt(now)} " + implies)


@check(produces=("reward_seen",),
       reads=("episode/score", "episode/score_max", "episode/win"))
def reward_seen(w: Window) -> None:
    """Has the log held a reward event (a positive score; any non-zero one on a dense task) by now?"""
    kind = task_rewards(w.meta)
    found = {n: w.run.get(n) for n in ("episode/score", "episode/score_max", "episode/win")}
    values = {n: s.window(w.run_start, w.stop).values for n, s in found.items() if s is not None}
    values = {n: v[np.isfinite(v)] for n, v in values.items()}
    values = {n: v for n, v in values.items() if len(v)}
    if not values:
        w.results["reward_seen"] = w.missing("reward_seen", "episode/score")
        return
    best = max(float(v.max()) for v in values.values())
    nonzero = any(np.any(v != 0) for v in values.values())
    nums = {"best_score": best, "episodes": sum(len(v) for v in values.values())}
    signal = ", ".join(values)
    window = (w.run_start, w.stop)
    if best > 0:
        holds, why = True, f"a positive score ({fmt(best)}) by step {w.stop}: the policy has met a reward"
    elif kind == "dense" and nonzero:
        holds, why = True, f"the task ({w.meta.get('task')}) pays a reward every step: scores up to {fmt(best)}"
    elif not nonzero:
        holds, why = False, "every score is 0: the log never held a reward"
    elif kind == "sparse":
        holds, why = False, (f"no positive score by step {w.stop} (best {fmt(best)}) on a task whose reward "
                             f"is a goal event ({w.meta.get('task')}): the goal was never reached")
    else:
        holds, why = None, (f"no positive score by step {w.stop} (best {fmt(best)}), and the task is not "
                            "known: a cost-only task (Pendulum) pays no positive reward, a goal task (MountainCar) "
                            "pays one at the goal; pass --task to tell them apart")
    w.results["reward_seen"] = Evidence("reward_seen", signal, holds, nums, window, why)
