"""The window engine: split a run into step windows, run the checks in each, let the verdict records
decide per window, and combine the recent windows into the diagnosis."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import numpy as np

from dreamscope.diagnostics.doctor import checks as _policy_checks, signal_checks as _signal_checks  # noqa: F401 (register)
from dreamscope.diagnostics.doctor.evidence import Evidence, Finding, Fix
from dreamscope.diagnostics.doctor.findings import (blind_model_finding, extra_findings, impossible_finding,
                                                    overpromise_finding, thin_signals)
from dreamscope.diagnostics.doctor.messages import BLIND_MODEL_FIX, DEAD_GRADIENT_FIX, NO_REWARD_FIX, OVERPROMISE_FIX
from dreamscope.diagnostics.doctor.scale import (DEFAULT_RETURN_LIMIT, DISTS, EntropyScale, clean_meta, entropy_scale,
                                                 fingerprint, infer_action_dim)
from dreamscope.diagnostics.doctor.verdicts import RULES, VERDICTS, Verdict, no_signal_core, two_answers
from dreamscope.diagnostics.doctor.window import Window, compute
from dreamscope.diagnostics.thresholds import DEFAULT, Thresholds
from dreamscope.errors import DreamscopeError
from dreamscope.logs.schema import Run, Series

RULES_BY_CODE = {v.code: v for v in RULES}

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
    "episode/score_max": "whether a reward ever came (a line's best episode), and what the critic may expect",
    "episode/win": "whether a goal was ever scored",
    "actor/grad_norm": "whether any gradient reaches the actor",
    "actor/pg_grad_norm": "whether the policy gradient reaches the actor (when the whole norm is not logged)",
}


def _confidence(rule: Verdict, checks: dict[str, Evidence], factor: float, th: Thresholds,
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


def thinned(run: Run, limit: int) -> Run:
    """``run`` with every series longer than ``limit`` averaged over consecutive blocks down to at most ``limit``
    points (NaNs skipped); the best of each block of episode scores becomes ``episode/score_max``."""
    series, sources = dict(run.series), dict(run.sources)
    for name, s in run.series.items():
        if len(s) <= limit:
            continue
        k = math.ceil(len(s) / limit)
        starts = np.arange(0, len(s), k)
        finite = np.isfinite(s.values)
        counts = np.add.reduceat(finite.astype(np.int64), starts)
        with np.errstate(invalid="ignore", divide="ignore"):
            means = np.add.reduceat(np.where(finite, s.values, 0.0), starts) / counts
        best = np.where(counts > 0, np.maximum.reduceat(np.where(finite, s.values, -np.inf), starts), np.nan)
        steps = np.add.reduceat(s.steps, starts) // np.diff(np.append(starts, len(s)))
        series[name] = Series(steps, best if name == "episode/score_max" else np.where(counts > 0, means, np.nan))
        if name == "episode/score" and "episode/score_max" not in run.series:
            series["episode/score_max"] = Series(steps, best)
            sources["episode/score_max"] = f"derived: the best {sources.get(name, name)} of each block of {k}"
    return replace(run, series=series, sources=sources)


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
    run = thinned(run, th.max_points)
    first, last = _step_range(run)
    edges = np.unique(np.linspace(first, last, windows + 1).round().astype(np.int64))
    meta, meta_notes = clean_meta(run.meta)
    d = action_dim if action_dim is not None else meta.get("action_dim")
    known_dist = dist or meta.get("dist")
    pinned, pinned_why = None, None
    has_refs = run.get("policy/entropy_max") is not None and run.get("policy/entropy_min_ref") is not None
    if d is None and not has_refs and known_dist not in DISTS:
        # Only when nothing about the policy is known: a run that names its distribution but not
        # its d is diagnosed on what it names (σ, drift), and the d-dependent checks are skipped.
        pinned, pinned_why = infer_action_dim(run, edges, th)
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
        explanation = fingerprint(run, d, known_dist, edges, th)
        scale = entropy_scale(run, action_dim, dist, explanation, meta)
    impossible, impossible_flags = impossible_finding(run, scale, edges, explanation, th)

    results = []
    for i, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        checks = compute(Window(run, meta, scale, th, int(a), int(b), first))
        # A run that logs its action entropy has the number the impossible one stands for: its
        # undecided windows are plain UNDECIDED (the finding is still reported).
        unexplained = impossible_flags[i] and run.get("policy/entropy_action") is None
        results.append(_decide(i, int(a), int(b), checks, unexplained, th))

    recent = results[-max(1, math.ceil(len(results) * th.recent_frac)):]
    # A window that decided something outvotes one that could not (e.g. steps with only episode lines).
    decided = [w for w in recent if w.verdict in RULES_BY_CODE] or recent
    counts: dict[str, int] = {}
    for w in decided:
        counts[w.verdict] = counts.get(w.verdict, 0) + 1
    verdict = max(counts, key=lambda code: (counts[code], max(w.index for w in decided if w.verdict == code)))
    agreeing = [w for w in recent if w.verdict == verdict]
    rep = agreeing[-1]
    confidence = float(np.mean([w.confidence for w in agreeing])) * len(agreeing) / len(recent)

    info = VERDICTS[verdict]
    rule = RULES_BY_CODE.get(verdict)
    shown = (rule.required + tuple(n for n, _ in rule.support) + rule.context) if rule else tuple(rep.checks)
    shown = tuple(dict.fromkeys(shown))
    evidence = [rep.checks[n] for n in shown if rep.checks[n].holds is not None]
    undecided = [{"check": n, "signal": rep.checks[n].signal, "why": rep.checks[n].implies}
                 for n in shown if rep.checks[n].holds is None]

    overpromise = overpromise_finding(run, edges, th)
    blind = blind_model_finding(run, edges, th)
    findings = [f for f in (impossible, overpromise, blind) if f] + extra_findings(results)
    fixes = list(info.fixes)
    if verdict == "BONUS_DOMINATES" and no_signal_core(rep.checks) is not None:
        fixes += [Fix(f"Then: {f.action}", f.expected_effect) for f in VERDICTS["NO_SIGNAL"].fixes[:2]]
    if impossible and verdict != "IMPOSSIBLE_ENTROPY":
        fixes.append(VERDICTS["IMPOSSIBLE_ENTROPY"].fixes[1])
    if rep.checks["actor_grad_dead"].holds is True:
        fixes.insert(0, DEAD_GRADIENT_FIX)
    elif rep.checks["reward_seen"].holds is False:
        fixes.insert(0, NO_REWARD_FIX)
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
    if verdict not in RULES_BY_CODE:
        # Undecided: say exactly why — which signals are too thin, what the logs do show — and
        # make the fixes the specific things to log.
        thin, thin_fixes = thin_signals(run, first, last - 1, len(results), th)
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
    if verdict in RULES_BY_CODE:
        agree = f"{len(agreeing)}/{len(recent)} recent windows agree"
        summary = f"{info.headline} (steps {rep.start}–{rep.stop}, {agree})"
        if rep.reading:
            summary += " " + rep.reading
    missing = [{"signal": n, "needed_for": WANTED[n]} for n in run.missing(list(WANTED))]
    if verdict not in RULES_BY_CODE and len(results) > 1:
        # Too thin for windows: judge the run as one window, and say how little there was.
        thin = replace(th, min_points=min(th.min_points, th.thin_min_points),
                       trend_alpha=max(th.trend_alpha, th.thin_trend_alpha))
        whole = diagnose(run, action_dim=action_dim, dist=dist, windows=1, thresholds=thin)
        if whole.verdict in RULES_BY_CODE:
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
