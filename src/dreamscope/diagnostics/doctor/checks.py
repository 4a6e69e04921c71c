"""Evidence checks on the policy: entropy level and trend, σ at its bounds, saturation, who moves σ, dips.

Each check declares what it produces, the canonical signals it reads and the checks it needs
(see :func:`dreamscope.diagnostics.doctor.window.check`); a check that cannot be decided from
the log records ``holds = None`` with the reason, never a guess.
"""

from __future__ import annotations

import math

import numpy as np

from dreamscope.diagnostics.doctor.evidence import Evidence, fmt
from dreamscope.diagnostics.doctor.scale import GAUSSIAN_DISTS
from dreamscope.diagnostics.doctor.window import Window, check
from dreamscope.fingerprint import BOUND_TOL


@check(produces=("entropy_high", "entropy_low"),
       reads=("policy/entropy", "policy/entropy_max", "policy/entropy_min_ref"))
def entropy_level(w: Window) -> None:
    got = w.entropy_or_missing("entropy_high", "entropy_low")
    if got is None:
        return
    _, norm = got
    med = float(np.median(norm))
    raw = w.level("policy/entropy")
    nums = {"entropy_median": raw, "normalised": med, "floor": w.scale.floor, "ceiling": w.scale.ceiling}
    high, low = med >= w.th.entropy_high_norm, med <= w.th.entropy_low_norm
    w.results["entropy_high"] = Evidence(
        "entropy_high", "policy/entropy", high, nums, (w.start, w.stop),
        f"normalised entropy {fmt(med)} {'≥' if high else '<'} {w.th.entropy_high_norm}: "
        + ("the policy is near the widest its std bounds allow" if high else "not near the ceiling"))
    w.results["entropy_low"] = Evidence(
        "entropy_low", "policy/entropy", low, nums, (w.start, w.stop),
        f"normalised entropy {fmt(med)} {'≤' if low else '>'} {w.th.entropy_low_norm}: "
        + ("the policy is at its floor, near deterministic" if low else "not at the floor"))


@check(produces=("entropy_rising", "entropy_falling"),
       reads=("policy/entropy",))
def entropy_trend(w: Window) -> None:
    if not w.scale.usable and w.run.get("policy/entropy") is not None:
        # Floor and ceiling unknown: a direction needs no scale, so judge it in nats against
        # the run's own spread of the entropy, like any other signal; say so.
        steps, raw = w.points("policy/entropy")
        if len(raw) >= w.th.min_points:
            t, rel = w.trend(steps, raw, w.spread("policy/entropy"))
            _entropy_direction(w, t, rel, w.th.trend_min_change, "change_per_spread",
                               "policy/entropy (nats; floor/ceiling unknown)", "the run's entropy spread")
            return
    got = w.entropy_or_missing("entropy_rising", "entropy_falling")
    if got is None:
        return
    steps, norm = got
    t, change = w.trend(steps, norm, 1.0)
    _entropy_direction(w, t, change, w.th.trend_min_change_entropy, "change_normalised", "policy/entropy",
                       "the floor–ceiling range")


def _entropy_direction(w: Window, t, change: float, min_change: float, change_key: str, source: str,
                       against: str) -> None:
    """entropy_rising / entropy_falling from one trend test, ``change`` measured against ``against``."""
    direction = w.direction(t, change, min_change)
    nums = {"mk_z": t.z, "p": t.p, change_key: change, "tested_blocks": t.n}
    for name, sign, word in (("entropy_rising", 1, "rising"), ("entropy_falling", -1, "falling")):
        holds = direction == sign
        w.results[name] = Evidence(
            name, source, holds, nums, (w.start, w.stop),
            f"Mann–Kendall p = {fmt(t.p)}, change {fmt(change)} of {against}: entropy "
            + (word if holds else f"not significantly {word}"))

# ---- the run as a whole: now against its early stretch


@check(produces=("score_rose_so_far", "entropy_fell_so_far", "entropy_rose_so_far"),
       reads=("episode/score", "policy/entropy"))
def so_far(w: Window) -> None:
    w.results["score_rose_so_far"] = w.shift_evidence("score_rose_so_far", "episode/score", up=True)
    for check, up in (("entropy_fell_so_far", False), ("entropy_rose_so_far", True)):
        if w.scale.usable:
            w.results[check] = w.shift_evidence(check, "policy/entropy", up=up, transform=w.scale.normalise, unit=1.0,
                                                min_change=w.th.trend_min_change_entropy)
        else:
            w.results[check] = w.shift_evidence(check, "policy/entropy", up=up,
                                                signal="policy/entropy (nats; floor/ceiling unknown)")


@check(produces=("sigma_at_ceiling", "sigma_at_floor"),
       reads=("policy/std_at_upper_frac", "policy/std_at_lower_frac", "policy/std_mean", "policy/entropy"))
def sigma_pinned(w: Window) -> None:
    for check, frac_name, side in (("sigma_at_ceiling", "policy/std_at_upper_frac", "upper"),
                                   ("sigma_at_floor", "policy/std_at_lower_frac", "lower")):
        frac = w.level(frac_name)
        if frac is not None:
            holds = frac >= w.th.pinned_frac
            w.results[check] = Evidence(
                check, frac_name, holds, {"frac_at_bound": frac}, (w.start, w.stop),
                f"{frac:.0%} of std components at the {side} bound "
                f"({'≥' if holds else '<'} {w.th.pinned_frac:.0%}): "
                f"σ {'is' if holds else 'is not'} pinned there")
            continue
        w.results[check] = _sigma_pinned_fallback(w, check, side, frac_name)


def _sigma_pinned_fallback(w: Window, check: str, side: str, frac_name: str) -> Evidence:
    """Normalised mean log σ (from std_mean, else from a Gaussian entropy) near the bound."""
    std = w.level("policy/std_mean")
    norm, signal = None, None
    if std is not None:
        got = w.scale.normalise_logstd(np.array([std]))
        if got is not None:
            norm, signal = float(got[0]), "policy/std_mean"
    if norm is None and w.scale.dist in GAUSSIAN_DISTS:
        got = w.norm_entropy()
        if got is not None and len(got[1]) >= w.th.min_points:
            norm, signal = float(np.median(got[1])), "policy/entropy (Gaussian: mean log σ)"
    if norm is None:
        return w.missing(check, frac_name,
                             f"{w.why_missing(frac_name)}; no std_mean with known bounds either")
    edge = w.th.pinned_logstd_norm
    holds = norm >= edge if side == "upper" else norm <= 1.0 - edge
    # On the bound itself (the fingerprint's tolerance, per dim), not only near it: a pinned σ, not an initial one.
    span = w.scale.logstd_hi - w.scale.logstd_lo if w.scale.logstd_hi is not None else math.inf
    on_bound = abs((1.0 - norm if side == "upper" else norm) * span) < BOUND_TOL
    return Evidence(
        check, signal, holds, {"logstd_normalised": norm, "on_bound": float(on_bound)}, (w.start, w.stop),
        f"mean log σ at {norm if abs(norm) >= 0.005 else 0.0:.2f} of its range ({frac_name} not logged): "
        f"σ {'is' if holds else 'is not'} at the {side} bound on average")


@check(produces=("sigma_rising",),
       reads=("policy/std_mean",),
       depends=("entropy_rising",))
def sigma_rising(w: Window) -> None:
    steps, std = w.points("policy/std_mean")
    norm = w.scale.normalise_logstd(std) if len(std) else None
    if norm is not None and len(norm) >= w.th.min_points:
        t, change = w.trend(steps, norm, 1.0)
        direction = w.direction(t, change, w.th.trend_min_change_entropy)
        w.results["sigma_rising"] = Evidence(
            "sigma_rising", "policy/std_mean", direction == 1,
            {"mk_z": t.z, "p": t.p, "change_logstd_normalised": change}, (w.start, w.stop),
            f"log σ {'rises' if direction == 1 else 'does not rise significantly'} (p = {fmt(t.p)}, "
            f"change {fmt(change)} of its range)")
        return
    rising = w.results["entropy_rising"]
    if w.scale.dist in GAUSSIAN_DISTS and rising.holds is not None:
        w.results["sigma_rising"] = Evidence(
            "sigma_rising", "policy/entropy (Gaussian: tracks mean log σ)", rising.holds, rising.numbers,
            rising.window, f"from the entropy trend (policy/std_mean not usable): {rising.implies}")
        return
    w.results["sigma_rising"] = w.missing(
        "sigma_rising", "policy/std_mean",
        f"{w.why_missing('policy/std_mean')}; entropy trend not usable either")


@check(produces=("saturated",),
       reads=("policy/saturation_frac",),
       depends=("sigma_at_ceiling",))
def saturated(w: Window) -> None:
    sat = w.level("policy/saturation_frac")
    if sat is None:
        inferred = _saturation_from_sigma(w)
        w.results["saturated"] = inferred or w.missing("saturated", "policy/saturation_frac")
        return
    holds = sat >= w.th.saturation_high
    w.results["saturated"] = Evidence(
        "saturated", "policy/saturation_frac", holds, {"saturation_frac": sat}, (w.start, w.stop),
        f"{sat:.0%} of action components at |a| > 0.99 ({'≥' if holds else '<'} {w.th.saturation_high:.0%}): "
        + ("bang-bang actions; the gradient through the mean vanishes there" if holds else "actions not saturated"))


def _saturation_from_sigma(w: Window) -> Evidence | None:
    """Saturation of a tanh-squashed Gaussian whose σ was read as pinned at its ceiling (not logged).

    With mean log σ at the top of its range every dim is near the clamp, and for a Gaussian
    pre-activation the fraction outside |tanh x| ≤ 0.99 is smallest at μ = 0, so
    erfc(atanh(0.99)/(σ√2)) is a lower bound on what the policy saturates. Marked inferred
    (not decisive): it counts half in the confidence.
    """
    from dreamscope.metrics import SATURATION_THRESHOLD

    ceiling = w.results.get("sigma_at_ceiling")
    lo, hi = w.scale.logstd_lo, w.scale.logstd_hi
    if (w.scale.dist != "tanh_normal" or ceiling is None or ceiling.holds is not True
            or "logstd_normalised" not in ceiling.numbers or lo is None or hi is None):
        return None
    log_std = lo + ceiling.numbers["logstd_normalised"] * (hi - lo)
    std = math.exp(log_std)
    sat = math.erfc(math.atanh(SATURATION_THRESHOLD) / (std * math.sqrt(2.0)))
    holds = sat >= w.th.saturation_high
    return Evidence(
        "saturated", f"inferred from {ceiling.signal}", holds, {"saturation_frac_lower_bound": sat, "std": std},
        (w.start, w.stop),
        f"policy/saturation_frac not logged; a tanh-squashed Gaussian at σ ≈ {std:.3g} (log σ {log_std:.2f}, read "
        f"off {ceiling.signal}) puts ≥ {sat:.0%} of action components at |a| > 0.99 (μ = 0 is the least): "
        + ("bang-bang actions" if holds else "not saturated at μ = 0"), decisive=False)


@check(produces=("bonus_drift",),
       reads=("actor/logstd_push_pg", "actor/logstd_push_ent", "actor/ent_to_pg_drift_ratio"))
def bonus_drift(w: Window) -> None:
    """Does the bonus's mean push on log σ outweigh the policy gradient's over this window?"""
    th = w.th
    _, pg = w.points("actor/logstd_push_pg")
    _, ent = w.points("actor/logstd_push_ent")
    eta = w.meta.get("eta")
    push: Evidence | None = None
    ent_known = len(ent) >= th.min_points or (eta is not None and w.scale.dist in GAUSSIAN_DISTS)
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
            what = (f"mean PG push on log σ {fmt(m_pg)} ± {fmt(se)} (pointing {direction}); the bonus is off "
                    "(η = 0): it cannot be what moves σ")
        else:
            what = (f"mean PG push on log σ {fmt(m_pg)} ± {fmt(se)} (pointing {direction}) "
                    f"vs the bonus's {fmt(m_ent)} (pointing {'up' if up else 'down'}): |PG|/|bonus| = "
                    f"{fmt(ratio)} "
                    + (f"< {th.drift_dominance:g}, so the bonus is what moves σ" if holds
                       else f"≥ {th.drift_dominance:g}, so the policy gradient decides where σ goes" if up
                       else "— the bonus pushes σ down here")
                    + ("" if decisive else f" (within {th.drift_z:g} standard errors: not decisive)"))
        push = Evidence(
            "bonus_drift", f"actor/logstd_push_pg vs {ent_src}", holds,
            {"push_ent_mean": m_ent, "push_pg_mean": m_pg, "push_pg_se": se, "pg_to_ent": ratio,
             "updates": len(pg), "batch_means": len(blocks)},
            (w.start, w.stop), what, decisive)
    drift = w.level("actor/ent_to_pg_drift_ratio")
    ratio_ev = None
    if drift is not None:
        ratio_holds = drift >= th.drift_ratio
        ratio_ev = Evidence(
            "bonus_drift", "actor/ent_to_pg_drift_ratio", ratio_holds, {"drift_ratio": drift},
            (w.start, w.stop),
            f"|mean ∇ηH| / |mean ∇PG| = {fmt(drift)} ({'≥' if ratio_holds else '<'} {th.drift_ratio:g}): "
            + ("the bonus's gradient drift is the larger" if ratio_holds
               else "the policy gradient's drift is the larger")
            + " (whole actor gradient, not only σ)", decisive=False)
    if push is not None:
        if ratio_ev is not None and ratio_ev.holds != push.holds:
            push.implies += f"; the whole-gradient drift ratio {fmt(drift)} disagrees — the log-σ pushes decide"
            push.numbers["drift_ratio"] = drift
            push.decisive = False
        w.results["bonus_drift"] = push
    elif ratio_ev is not None:
        w.results["bonus_drift"] = ratio_ev
    else:
        w.results["bonus_drift"] = w.missing(
            "bonus_drift", "actor/logstd_push_pg, actor/logstd_push_ent, actor/ent_to_pg_drift_ratio",
            f"{w.why_missing('actor/logstd_push_pg', 'actor/logstd_push_ent')} "
            f"(and no η in meta), and {w.why_missing('actor/ent_to_pg_drift_ratio')}")


@check(produces=("per_step_ratio",),
       reads=("actor/ent_to_pg_ratio", "actor/grad_cos"))
def per_step_ratio(w: Window) -> None:
    ratio = w.level("actor/ent_to_pg_ratio")
    if ratio is None:
        w.results["per_step_ratio"] = w.missing("per_step_ratio", "actor/ent_to_pg_ratio")
        return
    _, cos = w.points("actor/grad_cos")
    nums = {"ratio_median": ratio}
    if len(cos):
        nums.update(cos_min=float(cos.min()), cos_max=float(cos.max()))
    w.results["per_step_ratio"] = Evidence(
        "per_step_ratio", "actor/ent_to_pg_ratio, actor/grad_cos", ratio >= w.th.drift_ratio, nums,
        (w.start, w.stop),
        f"per-step ‖∇ηH‖/‖∇PG‖ median {fmt(ratio)}: secondary only — the PG's per-step norm is mostly "
        "noise that cancels over updates, so the drift decides, not this", decisive=False)


@check(produces=("dips",),
       reads=("policy/entropy",))
def dips(w: Window) -> None:
    got = w.entropy_or_missing("dips")
    if got is None:
        return
    steps, y = got
    th = w.th
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
    w.results["dips"] = Evidence(
        "dips", "policy/entropy", bool(found), nums, (w.start, w.stop),
        (f"{len(found)} dip(s) deeper than {th.dip_depth} of the range that recovered — the policy briefly "
         "committed (a rare reward was learned), then drifted back (it was forgotten)" if found
         else "no dip that recovers"))
