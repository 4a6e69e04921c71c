"""One record per verdict: its answer, priority, what fires it, the evidence it shows, colour and words.

A rule's ``fires(checks, thresholds)`` returns a :class:`Fire` when the verdict holds in a window
(its factor scales the confidence; a note, a reading and an alternative support list say how it
was reached) and None otherwise. Rules are tried by ``priority`` (lowest first): a cause the run
shows beats a symptom, a symptom beats "expected". Adding a verdict is one record here, its words
in :mod:`.messages`, at most one check, and one test.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

from dreamscope.diagnostics.doctor.evidence import Evidence, fmt
from dreamscope.diagnostics.doctor.messages import TEXTS, Texts
from dreamscope.diagnostics.thresholds import Thresholds


@dataclass(frozen=True)
class Fire:
    factor: float  # confidence multiplier (1 measured, less when inferred or within noise)
    note: str | None = None  # a caveat: what was inferred or missing
    reading: str | None = None  # how the verdict was reached, when the rule has several ways; joins the summary
    support: tuple[tuple[str, bool], ...] | None = None  # replaces the rule's supporting checks for this way


def _h(c: dict[str, Evidence], name: str) -> bool | None:
    return c[name].holds


def _learning(c) -> bool:
    """The score rises now, or has risen since the run's early stretch."""
    return _h(c, "score_rising") is True or (_h(c, "score_rose_so_far") is True and _h(c, "score_kept") is not False)


def _climbed_to_ceiling(c, th) -> bool:
    """The normalised entropy rose significantly since the run's early stretch, by a good part of the headroom it
    had left under its ceiling: near the ceiling a climb is small in units of the whole floor–ceiling range."""
    rose = c["entropy_rose_so_far"]
    n = rose.numbers
    if rose.holds is True:
        return True
    if rose.holds is None or "mean_early" not in n or not n["mean_early"] < 1.0 or not rose.signal == "policy/entropy":
        return False
    headroom = (n["mean_now"] - n["mean_early"]) / (1.0 - n["mean_early"])
    return n["p"] < th.trend_alpha and headroom >= th.trend_min_change


def _sigma_where_it_started(c, th) -> bool:
    """σ read off the entropy near its ceiling, but neither on the bound itself nor climbed there: where the
    initialisation put it (official DreamerV3 starts at σ ≈ 0.89, 0.95 of its log range), not held by anything."""
    ceiling = c["sigma_at_ceiling"]
    return (ceiling.holds is True and ceiling.numbers.get("on_bound") == 0.0 and _h(c, "sigma_rising") is not True
            and not _climbed_to_ceiling(c, th))


def _fires_pinned_learning(c, th):
    if not _learning(c) or _h(c, "reward_seen") is False:
        return None
    fire = _bonus_holds_sigma(c, th)
    if fire is None or _h(c, "bonus_drift") is None:
        # Without the drift, a high σ while the score rises is read as exploration, not as the bonus.
        return None
    return Fire(fire.factor, fire.note,
                 "The bonus holds σ at (or towards) its ceiling, yet the score rises: with σ pinned the mean still "
                 "sets each action, so the policy learns under the bonus — the entropy is held by the bonus but "
                 "does not block learning.")


def _fires_bonus(c, th):
    return None if _learning(c) else _bonus_holds_sigma(c, th)


def _bonus_holds_sigma(c, th):
    if _h(c, "actor_grad_dead") is True:
        return None  # nothing reaches the actor: the bonus moves nothing either
    sigma_up = _h(c, "sigma_at_ceiling") is True or _h(c, "sigma_rising") is True
    if _h(c, "saturated") is False and c["saturated"].decisive and no_signal_core(c) is not None:
        # The bonus may be what moves σ, but with the actions measured unsaturated the policy
        # gradient through the mean is intact: it is not what blocks learning. The advantages
        # carry nothing (and a mechanism says why), so the missing signal is the answer.
        return None
    if _h(c, "bonus_drift") is True and sigma_up:
        return Fire(1.0 if c["bonus_drift"].decisive else th.confidence_within_noise)
    # σ in the top quarter of its range with bang-bang actions, and the bonus's drift the larger:
    # σ is on its way to the clamp (the last stretch is slow where log σ is squashed into its
    # bounds, so neither "pinned" nor a significant rise shows yet), and it is the bonus that
    # holds it there. Saturation ≥ ½ needs σ several times the action range, so an unsquashed
    # σ ≤ 1 head does not get here from σ alone.
    if _h(c, "bonus_drift") is True and _h(c, "entropy_high") is True and _h(c, "saturated") is True:
        return Fire(1.0 if c["bonus_drift"].decisive else th.confidence_within_noise,
                     "σ is in the top quarter of its range and the actions are bang-bang, but σ is not yet pinned "
                     "at the clamp nor rising significantly: the bonus's drift is what holds it there")
    if _h(c, "bonus_drift") is None and _h(c, "sigma_at_ceiling") is True and _h(c, "saturated") is True:
        sat_note = ("" if c["saturated"].decisive else
                    "; saturation not logged either: read off σ (" + fmt(c["saturated"].numbers.get(
                        "saturation_frac_lower_bound", math.nan)) + " at μ = 0)")
        return Fire(th.confidence_inferred,
                     "drift not logged: inferred from σ pinned at its ceiling with saturated actions — the "
                     "pre-tanh bonus pushes log σ up by η per dim at every σ, and nothing else pins it there"
                     + sat_note,
                     "σ is pinned at its clamp and the bonus is the likely cause; the drift that would prove it "
                     "was not logged, so confidence is lowered.")
    # σ read off the entropy (or std) at the top of its range on a head that cannot saturate
    # (a bounded normal, σ ≤ 1), rewards reaching the log, and the score not rising: nothing but
    # the bonus pushes a Gaussian's log σ up by the same amount at every σ.
    if (_h(c, "bonus_drift") is None and _h(c, "sigma_at_ceiling") is True and _h(c, "saturated") is None
            and _h(c, "reward_seen") is not False and not _sigma_where_it_started(c, th)):
        level = c["sigma_at_ceiling"].numbers.get("logstd_normalised")
        at = f" ({level:.2f} of its log range)" if level is not None else ""
        return Fire(th.confidence_inferred,
                     "drift and saturation not logged: inferred from σ at the top of its range" + at
                     + " while the score does not rise",
                     f"σ sits at the top of its range{at} and the score does not rise: the bonus, which pushes log σ "
                     "up by η per dimension at every σ, is what holds it there; the drift that would prove it was "
                     "not logged, so confidence is lowered.")
    # Not yet at the ceiling but climbing into its top quarter since the run's start, the score not rising: the
    # same push, caught on its way up.
    if (_h(c, "bonus_drift") is None and _h(c, "entropy_high") is True and _climbed_to_ceiling(c, th)
            and _h(c, "saturated") is not False and _h(c, "reward_seen") is not False):
        return Fire(th.confidence_inferred,
                    "drift not logged: inferred from the entropy climbing into the top quarter of its range while "
                    "the score does not rise",
                    "The entropy has climbed into the top quarter of its range since the run's start and the score "
                    "does not rise: the bonus is walking σ up to its ceiling; the drift that would prove it was not "
                    "logged, so confidence is lowered.")
    return None


def _collapse_killed_the_gradient(c) -> bool:
    """The actor's gradient is dead, but the advantages are measured to carry signal and σ sits at its floor: the
    collapsed σ (saturated actions, a squashed bound) is what stops the signal reaching the actor."""
    at_floor = _h(c, "entropy_low") is True or _h(c, "sigma_at_floor") is True
    return _h(c, "actor_grad_dead") is True and _h(c, "adv_weak") is False and at_floor


def _fires_collapse(c, th):
    if _h(c, "actor_grad_dead") is True and not _collapse_killed_the_gradient(c):
        return None  # the entropy did not stop the learning; nothing reaches the actor
    if not (_h(c, "entropy_low") is True or _h(c, "sigma_at_floor") is True):
        return None
    rose = _h(c, "score_rose_so_far")
    level = c["entropy_low"].numbers.get("normalised") if _h(c, "entropy_low") is not None else None
    at = f" ({level + 0.0 if abs(level) >= 0.005 else 0.0:.2f} of its floor–ceiling range)" if level is not None else ""
    if rose is None:
        why = c["score_rose_so_far"].implies
        return Fire(th.confidence_inferred,
                     f"episode/score: {why} — whether returns rose before the floor (convergence) could not be decided",
                     f"The entropy is at its floor{at}; returns could not be checked ({why}), so convergence is not "
                     "ruled out: confidence lowered.")
    return None if rose else Fire(1.0, None, f"The entropy is at its floor{at} and the score has not risen since "
                                               "the run's early stretch.")


def _fires_dips(c, th):
    return (Fire(1.0) if _h(c, "dips") is True and _h(c, "score_rising") is not True
            and _h(c, "actor_grad_dead") is not True else None)


def no_signal_core(c) -> str | None:
    """How the advantages are known to carry no signal: "measured" (with a mechanism that says why), "inferred"
    (the mechanisms without the advantages), "unexplained" (weak advantages, no mechanism logged, no learning)."""
    if _h(c, "signal_rising") is True:
        return None
    mechanisms = sum(_h(c, n) is True for n in ("return_scale_under", "head_misses", "critic_trivial"))
    if _h(c, "adv_weak") is True and mechanisms >= 1:
        return "measured"
    if _h(c, "adv_weak") is None and mechanisms >= 2:
        return "inferred"
    unlogged = all(_h(c, n) is None for n in ("return_scale_under", "head_misses", "critic_trivial"))
    if _h(c, "adv_weak") is True and unlogged and not _learning(c) and _h(c, "score_rose_so_far") is not True:
        return "unexplained"  # other logs hold none of the mechanisms: weak advantages and no learning must do
    return None


def _fires_no_signal(c, th):
    if _h(c, "actor_grad_dead") is True and not _collapse_killed_the_gradient(c):
        dead = c["actor_grad_dead"]
        return Fire(1.0, None,
                    f"No update reaches the actor ({dead.signal} median {fmt(dead.numbers['grad_norm_median'])}; "
                    "see actor_grad_dead): no learning signal reaches the policy, so the entropy stays where it was "
                    "when the updates stopped — a symptom, not what blocks learning.",
                    (("entropy_falling", False), ("score_rising", False), ("adv_weak", True),
                     ("signal_rising", False)))
    if _h(c, "reward_seen") is False:
        return Fire(1.0, None,
                     f"{c['reward_seen'].implies}. A plateau without a reward event is no signal yet, not convergence.",
                     (("score_rising", False), ("adv_weak", True), ("return_scale_under", True),
                     ("signal_rising", False)))
    core = no_signal_core(c)
    if core is None:
        return None
    if core == "inferred":
        return Fire(th.confidence_inferred,
                     "advantage scale not logged: inferred from the return scale, reward head and critic")
    if core == "unexplained":
        return Fire(th.confidence_inferred,
                    "the advantages are ≈ 0 and the score has not risen, but nothing logged says why (return scale, "
                    "reward head, critic fit not logged)")
    if _h(c, "bonus_drift") is True:
        if _h(c, "sigma_at_ceiling") is True or _h(c, "sigma_rising") is True:
            sat = c["saturated"].numbers.get("saturation_frac")
            only = f"only {sat:.0%} of the actions are saturated" if sat is not None else "the actions are not saturated"
            return Fire(1.0, f"the bonus is what moves σ (up, to or towards its ceiling), but {only}, "
                              "so the policy gradient through the mean is intact: the bonus is not what "
                              "blocks learning, the missing signal is — lowering η alone would not help",
                         "The bonus holds σ at its ceiling only because nothing else pushes on it: the advantages "
                         "are ≈ 0.")
        return Fire(1.0, "the bonus outweighs the PG's drift on σ, yet σ is neither at its ceiling nor rising: "
                          "if σ starts climbing to the ceiling with saturated actions this becomes BONUS_DOMINATES")
    return Fire(1.0)


#: What supports "nothing wrong yet": the entropy between its floor and ceiling, rewards reaching the log, a live
#: actor gradient, the score not falling.
_NOTHING_WRONG_SUPPORT = (("entropy_high", False), ("entropy_low", False), ("reward_seen", True),
                          ("actor_grad_dead", False), ("score_falling", False))


def _fires_exploring(c, th):
    if _h(c, "entropy_high") is True and _h(c, "signal_rising") is True:
        return Fire(1.0)
    # Early in a run nothing may have risen (or only weakly). If nothing shows a fault — the entropy measured
    # between its floor and ceiling (or, not logged, an actor gradient measured alive), rewards flowing, nothing
    # pinned, dead or falling — and the run has not learned yet (that would be HEALTHY): keep training.
    entropy_mid = _h(c, "entropy_high") is False and _h(c, "entropy_low") is False
    blind = _h(c, "entropy_high") is None and _h(c, "actor_grad_dead") is False
    initial = _sigma_where_it_started(c, th) and _h(c, "entropy_fell_so_far") is not True
    if ((entropy_mid or blind or initial) and (_h(c, "sigma_at_ceiling") is not True or initial)
            and _h(c, "sigma_at_floor") is not True
            and _h(c, "reward_seen") is True and _h(c, "actor_grad_dead") is not True and _h(c, "adv_weak") is not True
            and _h(c, "score_falling") is not True and _fires_healthy(c, th) is None):
        where = ("the entropy sits between its floor and its ceiling" if entropy_mid else
                 "σ sits near its ceiling where the initialisation put it, neither climbing nor on the bound"
                 if initial else "the entropy is not logged, but the actor's gradient is alive")
        return Fire(th.confidence_inferred if entropy_mid else th.confidence_inferred ** 2,
                    "no signal has risen yet; nothing in the log shows a fault either",
                    f"No fault shows yet: {where}, rewards reach the log and the score is not falling, but nothing "
                    "has risen yet — too early to call learning.", _NOTHING_WRONG_SUPPORT)
    return None


#: What supports "converged to a plateau": the whole-run movement and the present flatness.
_PLATEAU_SUPPORT = (("entropy_fell_so_far", True), ("entropy_high", False), ("entropy_rising", False),
                    ("score_falling", False), ("saturated", False), ("sigma_at_ceiling", False))


def _fires_healthy(c, th):
    if _h(c, "score_rising") is True and _h(c, "entropy_high") is not True and _h(c, "entropy_rising") is not True:
        return Fire(1.0)
    if _h(c, "entropy_low") is True and _h(c, "score_rose_so_far") is True:
        rose, level = c["score_rose_so_far"].numbers, c["entropy_low"].numbers["normalised"]
        return Fire(1.0, "entropy at its floor after returns rose: converged",
                     f"Converged: the entropy sits at its floor ({level:.2f} of its floor–ceiling range) after the "
                     f"score rose (mean {fmt(rose['mean_early'])} → {fmt(rose['mean_now'])}).")
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
        reading = (f"Converged to a plateau: over the run the score rose (mean {fmt(rose['mean_early'])} → "
                   f"{fmt(rose['mean_now'])}) while the entropy fell ({fmt(fell['mean_early'])} → "
                   f"{fmt(fell['mean_now'])}{' normalised' if level is not None else ' nats'}{where}); "
                   "in this window neither moves the wrong way.")
        if _h(c, "entropy_high") is None:
            return Fire(th.confidence_inferred,
                         "entropy floor/ceiling unknown: its level could not be checked, only that it fell "
                         "(pass --action-dim and --dist)", reading, _PLATEAU_SUPPORT)
        return Fire(1.0, None, reading, _PLATEAU_SUPPORT)
    return None


@dataclass(frozen=True)
class Verdict:
    code: str
    answer: str  # cause | symptom | expected | healthy | undecided
    priority: int  # rules are tried lowest first
    colour: str  # hex; the one style table (dreamscope.report.style) derives from it
    entropy_held_by: str  # dreamscope.diagnostics.answers.ENTROPY_HELD_BY
    learning_blocked_by: str  # dreamscope.diagnostics.answers.LEARNING_BLOCKED_BY
    fires: Callable[[dict[str, Evidence], Thresholds], Fire | None] | None  # None: reached when no rule fires
    required: tuple[str, ...] = ()  # checks shown as the deciding evidence
    support: tuple[tuple[str, bool], ...] = ()  # (check, value that supports the verdict): the confidence
    context: tuple[str, ...] = ()  # shown, never scored

    @property
    def texts(self) -> Texts:
        return TEXTS[self.code]

    @property
    def headline(self) -> str:
        return self.texts.headline

    @property
    def fixes(self):
        return self.texts.fixes

    @property
    def intervention(self) -> str:
        return self.texts.intervention


VERDICTS: dict[str, Verdict] = {v.code: v for v in (
    Verdict("PINNED_LEARNING", "expected", 10, "#e377c2", "bonus", "nothing", _fires_pinned_learning,
            ("bonus_drift", "sigma_at_ceiling", "score_rising", "score_rose_so_far"),
            (("saturated", True), ("entropy_high", True), ("reward_seen", True), ("adv_weak", False))),
    Verdict("BONUS_DOMINATES", "cause", 20, "#d62728", "bonus", "entropy", _fires_bonus,
            ("bonus_drift", "sigma_at_ceiling", "sigma_rising"),
            (("saturated", True), ("entropy_high", True), ("adv_weak", True), ("score_rising", False)),
            ("per_step_ratio", "dips", "return_scale_under", "head_misses")),
    Verdict("COLLAPSE", "cause", 30, "#7b2d8e", "floor", "entropy", _fires_collapse,
            ("entropy_low", "sigma_at_floor", "score_rose_so_far"),
            (("sigma_at_floor", True), ("entropy_low", True), ("score_rising", False), ("entropy_falling", True))),
    Verdict("TRANSIENT_DIPS", "symptom", 40, "#bcbd22", "policy_gradient", "no_signal", _fires_dips,
            ("dips", "score_rising"),
            (("head_misses", True), ("adv_weak", True), ("entropy_high", True))),
    Verdict("NO_SIGNAL", "symptom", 50, "#ff7f0e", "unknown", "no_signal", _fires_no_signal,
            ("actor_grad_dead", "reward_seen", "adv_weak", "return_scale_under", "head_misses", "critic_trivial"),
            (("return_scale_under", True), ("head_misses", True), ("critic_trivial", True), ("score_rising", False),
             ("entropy_falling", False), ("sigma_at_ceiling", False)),
            ("bonus_drift", "signal_rising")),
    Verdict("EXPLORING", "expected", 60, "#1f77b4", "nothing_wrong", "nothing", _fires_exploring,
            ("entropy_high", "signal_rising"),
            (("score_rising", True), ("bonus_drift", False), ("saturated", False), ("adv_weak", False))),
    Verdict("HEALTHY", "healthy", 70, "#2ca02c", "nothing_wrong", "nothing", _fires_healthy,
            ("score_rising", "entropy_high", "entropy_low", "score_rose_so_far", "entropy_fell_so_far",
             "entropy_rising", "score_falling"),
            (("entropy_falling", True), ("adv_weak", False), ("saturated", False), ("sigma_at_ceiling", False),
             ("reward_seen", True))),
    Verdict("IMPOSSIBLE_ENTROPY", "undecided", 90, "#7f7f7f", "unknown", "unknown", None),
    Verdict("UNDECIDED", "undecided", 100, "#c7c7c7", "unknown", "unknown", None),
)}

#: The verdicts a rule can reach, in the order they are tried.
RULES: tuple[Verdict, ...] = tuple(sorted((v for v in VERDICTS.values() if v.fires is not None),
                                          key=lambda v: v.priority))


def two_answers(code: str, checks: dict[str, Evidence]) -> tuple[str, str]:
    """(entropy_held_by, learning_blocked_by) of a window's verdict; NO_SIGNAL's holder is read off σ."""
    v = VERDICTS[code]
    held = v.entropy_held_by
    if code == "NO_SIGNAL":
        if _h(checks, "entropy_low") is True or _h(checks, "sigma_at_floor") is True:
            held = "floor"
        elif any(_h(checks, n) is True for n in ("sigma_at_ceiling", "entropy_high", "bonus_drift")):
            held = "bonus"
    return held, v.learning_blocked_by
