"""Findings: things true about a run that travel with whatever verdict is reached, and what the log lacks.

An entropy above what any action distribution can have, a critic that expects more than any
episode pays, a world model whose latent misses the state, a per-step gradient ratio that tells
the wrong story, signals too thin to judge.
"""

from __future__ import annotations

import math

import numpy as np

from dreamscope.diagnostics.doctor.evidence import Finding, Fix, fmt
from dreamscope.diagnostics.doctor.scale import EntropyScale, window_medians
from dreamscope.diagnostics.thresholds import Thresholds
from dreamscope.logs.schema import Run


def impossible_finding(run: Run, scale: EntropyScale, edges: np.ndarray, explanation,
                        th: Thresholds) -> tuple[Finding | None, list[bool]]:
    """Windows whose logged entropy exceeds d·ln2 (what any action distribution on [-1, 1]^d can have)."""
    if scale.action_bound is None or run.get("policy/entropy") is None:
        return None, [False] * (len(edges) - 1)
    medians = window_medians(run, "policy/entropy", edges)
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


def overpromise_finding(run: Run, edges: np.ndarray, th: Thresholds) -> Finding | None:
    """The latest window whose critic values exceed the best episode score several-fold: the
    world model imagines rewards the task does not pay, or does not see episodes end, and the
    actor is taught by returns no real episode has."""
    value, score = run.get("value/mean"), run.get("episode/score")
    if value is None or score is None or len(score) < th.value_check_min_episodes:
        return None
    best_series = run.get("episode/score_max") or score  # a log line's mean hides its best episode
    best = float(np.nanmax(best_series.values))
    medians = window_medians(run, "value/mean", edges)
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
        per_step = window_medians(run, "reward/imag_mean", edges[i:i + 2])[0]
        if len(scores) == len(lengths) and lengths.values.sum() > 0 and math.isfinite(per_step):
            real = float(np.nansum(scores.values) / lengths.values.sum())
            numbers.update(imagined_reward_per_step=per_step, real_reward_per_step=real)
            message += (f" Imagined steps collect {per_step:.3g} reward each, the episodes of these steps "
                        f"{real:.3g} per step.")
    return Finding("VALUE_EXCEEDS_RETURNS", message, numbers, (a, b))


def blind_model_finding(run: Run, edges: np.ndarray, th: Thresholds) -> Finding | None:
    """The latest window in which the world model's posterior explains too little of the
    observations: whatever the latent drops, the actor and critic never see."""
    if run.get("model/obs_explained_var") is None:
        return None
    medians = window_medians(run, "model/obs_explained_var", edges)
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


#: Signals whose sparseness alone can leave a run undecided, in the order they are reported.
_DECISIVE_SIGNALS = ("policy/entropy", "episode/score", "adv_norm/abs_mean", "adv/abs_mean", "return/scale",
                     "policy/std_mean", "policy/saturation_frac", "actor/logstd_push_pg")


def _round_down(x: float) -> int:
    """x rounded down to one significant digit (at least 1): a logging interval to suggest."""
    if x < 1:
        return 1
    mag = 10 ** int(math.floor(math.log10(x)))
    return int(x // mag * mag)


def thin_signals(run: Run, first: int, last: int, windows: int, th: Thresholds) -> tuple[list[str], list[Fix]]:
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
                      f"{' → '.join(fmt(float(v)) for v in values)})")
        notes.append(f"{label} has {n} point{'s' if n != 1 else ''} in steps {first}–{last}{listed}: too few to judge "
                     f"its level or trend — each of the {windows} windows needs {th.min_points}, and a trend test "
                     "cannot reach p < 0.05 on fewer than 5 points")
        fixes.append(Fix(f"Log {label} at least every ~{every} steps (≥ {2 * need} lines over a run this long)",
                         f"each window holds ≥ {th.min_points} points of it and the next diagnosis can judge its "
                         "level and trend"))
    return notes, fixes


def extra_findings(windows) -> list[Finding]:
    """Cross-check findings: where the per-step gradient ratio would have told the wrong story."""
    out = []
    for w in windows:
        drift, step = w.checks["bonus_drift"], w.checks["per_step_ratio"]
        if drift.holds is True and step.holds is False and "push_pg_mean" in drift.numbers:
            out.append(Finding(
                "PER_STEP_RATIO_MISLEADS",
                f"Steps {w.start}–{w.stop}: the per-step gradient ratio ({fmt(step.numbers['ratio_median'])} < 1) "
                "says the policy gradient is larger, yet its mean push on log σ is smaller than the bonus's: "
                "the PG is noise that cancels across updates, the bonus points the same way every step.",
                {"per_step_ratio": step.numbers["ratio_median"], "pg_to_ent_drift": drift.numbers["pg_to_ent"]},
                (w.start, w.stop)))
            break
    return out
