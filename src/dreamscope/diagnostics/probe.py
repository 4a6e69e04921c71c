"""Probe a checkpoint: is the stuck entropy a symptom or a cause? Decide it by intervention.

From a run's checkpoint and replay, the world model and critic are frozen and, from the same
imagined start states, the trained actor is updated K more times under each intervention:
η = 0, η as trained, η × 10, advantages × 10 and (tanh-squashed policies) the bonus on the
action-space entropy. Each intervention's policy is then compared with the trained one on
held-out start states with common random numbers: Δ entropy, Δ σ, Δ saturation and
Δ imagined return, with confidence intervals over evaluation batches. If removing the bonus
frees imagined return, the bonus is a cause; if neither removing it nor amplifying the
advantages moves imagined return, there is no learning signal and the entropy is a symptom.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import time
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from dreamscope.diagnostics.answers import PROBE_CONCLUSION_BLOCKED_BY, PROBE_HOLDER_HELD_BY
from dreamscope.checkpoint import load_agent, run_directory
from dreamscope.cli_args import int_option, positive_float_option, progress_bar
from dreamscope.errors import DreamscopeError
from dreamscope.run_files import CHECKPOINT, CONFIG, REPLAY
from dreamscope.stats import interval


# --------------------------------------------------------------------------------------
# Decision thresholds: every number the conclusion depends on, with the reasoning
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProbeThresholds:
    #: Two-sided level of every interval. Intervals are Student-t over evaluation batches
    #: (mean ± t·SE): with the 8 default batches, 1.96·SE would be ~20 % too narrow.
    confidence: float = 0.95
    #: Smallest change in imagined return that counts as an effect, in units of the run's
    #: return scale max(limit, S) (S = EMA of the P95 − P5 spread of λ-returns): the unit the
    #: actor's advantages are divided by, so it means the same on every task. The doctor
    #: calls normalised |advantages| under 0.1 "no signal"; an intervention whose mean return
    #: moves by under half of that after K updates has freed nothing worth having. With S
    #: under its limit (sparse rewards not yet seen) it is 0.05 return units: 0.5 % of one
    #: ±10 goal.
    min_return_effect: float = 0.05
    #: The decision needs at least this many evaluation batches: an interval over fewer is
    #: mostly t quantile (2.36 at 8 batches, 4.3 at 3), and a handful of batches can share
    #: one unusual stretch of replay.
    min_eval_batches: int = 8
    #: "Symptom" also needs the trained policy's entropy to be in the upper part of what its
    #: σ bounds allow: mean normalised log σ, (log σ − log σ_min)/(log σ_max − log σ_min),
    #: at least this. The question "symptom or cause?" is about entropy that stays *high*;
    #: below the middle of the range the policy has committed (σ ≤ 0.22 for log σ ∈ (−5, 2),
    #: σ ≤ 0.32 for σ ∈ [0.1, 1]) and "no intervention changes imagined return" means it has
    #: converged (or collapsed), not that a missing signal holds its entropy up.
    symptom_min_std_level: float = 0.5
    #: "Symptom" also needs the trained actor's policy gradient to have no consistent
    #: direction. Measured at the checkpoint, before any update, on M = --train-batches
    #: batches with fresh noise: drift R = ‖Σ_m g_m‖² / Σ_m ‖g_m‖² is ≈ 1 for zero-mean noise,
    #: M for a gradient that is the same every batch, 0 when there is none. Above this, the
    #: gradient points somewhere, and a flat return means that K updates at the run's learning
    #: rate were too few to act on it (σ pinned deep in a squashed bound moves slowly), not
    #: that there is nothing to learn. 3: noise exceeds it by chance with ≤ 8 % probability
    #: even when all of it lies along one direction (χ²₁ > 3), far less otherwise.
    pg_drift_max: float = 3.0
    #: σ "still at its ceiling" after the η = 0 updates: more than half of the σ components
    #: within 2 % of the log-σ range of the upper bound (the doctor's ``pinned_frac``). Then
    #: K was too short to tell whether the bonus holds σ there, and the statement says so.
    pinned_frac: float = 0.5
    #: "The bonus holds the entropy up" when removing it lowers σ's level (mean normalised
    #: log σ, as above) by at least this much more than continuing as trained does over the
    #: same K updates. 0.1 of the log range is 0.7 in log σ for (−5, 2): σ halves, far beyond
    #: the ±0.01 the trained policy drifts by at its clamp.
    bonus_release_level: float = 0.1

    def to_dict(self) -> dict:
        return asdict(self)


DEFAULT_THRESHOLDS = ProbeThresholds()

# The rules, in words (kept next to the thresholds; ``decide`` implements exactly these):
#   Δ_i   = imagined return of intervention i's policy − the trained policy's, per
#           evaluation batch, in return-scale units; G = Δ_eta0 − Δ_trained (paired).
#   improves(x): interval of x entirely above 0 and mean ≥ min_return_effect.
#   flat(x):     interval of x entirely inside (−min_return_effect, +min_return_effect).
#   cause    ⇐ improves(G): without the bonus the policy gains imagined return that
#              continuing with the bonus does not: the bonus blocks improvement.
#   symptom  ⇐ flat(Δ_eta0), and neither Δ_adv_x10 nor Δ_trained can reach
#              +min_return_effect (upper bounds below it): removing the bonus frees
#              nothing and ten times the advantages find nothing to learn either; and the
#              trained σ level is ≥ symptom_min_std_level (the entropy is high) and the
#              policy gradient's drift at the checkpoint is ≤ pg_drift_max (no direction),
#              or the return spread S itself is under min_return_effect × scale (the
#              imagined returns hardly vary: a direction, but nothing worth gaining).
#   undecided otherwise, with the reason (the bonus helps; the policy still improves as
#              trained; or the intervals are too wide to call).
# A second, separate question: what holds the entropy up? (``entropy_holder``)
#   bonus      ⇐ the trained σ level is ≥ symptom_min_std_level and η = 0 lowers it by
#                ≥ bonus_release_level more than continuing as trained does;
#   pinned     ⇐ η = 0 does not lower it that much, and σ is still at its ceiling after the
#                η = 0 updates (> pinned_frac of its components): K was too short to tell;
#   not bonus  ⇐ the level is high but η = 0 does not lower it that much, σ off its ceiling;
#   not high   ⇐ the trained σ level is under symptom_min_std_level.


# --------------------------------------------------------------------------------------
# Interventions
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Intervention:
    name: str
    description: str
    eta: Callable[[float], float]  # η used, from the trained η
    adv_multiplier: float = 1.0
    entropy_space: str | None = None  # None: as configured


INTERVENTIONS: dict[str, Intervention] = {i.name: i for i in (
    Intervention("eta0", "entropy bonus removed (η = 0)", lambda eta: 0.0),
    Intervention("trained", "η as trained (the control: K more updates as training would do)", lambda eta: eta),
    Intervention("eta_x10", "entropy bonus × 10", lambda eta: 10.0 * eta),
    Intervention("adv_x10", "advantages × 10", lambda eta: eta, adv_multiplier=10.0),
    Intervention("action_entropy", "bonus on the action-space entropy (of tanh(x)) instead of the pre-tanh one",
                 lambda eta: eta, entropy_space="action"),
)}


def available_interventions(cfg) -> list[str]:
    """The interventions that apply to this run's policy, in order."""
    names = ["eta0", "trained", "eta_x10", "adv_x10"]
    if cfg.actor.dist == "tanh_normal" and cfg.actor.entropy_space != "action":
        names.append("action_entropy")
    return names


def intervention_loss(ac, imag, intervention: Intervention, trained_eta: float):
    """The actor-critic loss with the intervention applied (``ActorCritic.loss`` overrides)."""
    return ac.loss(imag, eta=intervention.eta(trained_eta), adv_multiplier=intervention.adv_multiplier,
                   entropy_space=intervention.entropy_space)


# --------------------------------------------------------------------------------------
# Result
# --------------------------------------------------------------------------------------

#: Evaluated per batch: name -> what it is.
MEASURES = {
    "return": "imagined λ-return from the start states, R^λ_0 (frozen critic bootstraps)",
    "return_norm": "the same in return-scale units, / max(limit, S)",
    "reward_sum": "discounted imagined reward over the horizon",
    "entropy": "entropy as the trained loss uses it (policy/entropy)",
    "entropy_action": "entropy of the actions the env receives (policy/entropy_action)",
    "std": "mean policy σ (policy/std_mean)",
    "std_level": "mean normalised log σ: 0 at the σ floor, 1 at the ceiling",
    "std_at_upper_frac": "fraction of σ components at the upper bound",
    "saturation": "fraction of action components with |a| > 0.99",
}


@dataclass
class InterventionResult:
    name: str
    description: str
    eta: float
    adv_multiplier: float
    entropy_space: str
    before: dict[str, float]  # trained policy, mean over evaluation batches
    after: dict[str, float]  # after K updates under the intervention
    delta: dict[str, dict[str, float]]  # after − before, per measure: mean, se, half_width, lo, hi, n
    seconds: float

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ProbeResult:
    conclusion: str  # cause | symptom | undecided
    statement: str
    interventions: list[InterventionResult]
    settings: dict[str, Any]
    gain_vs_trained: dict[str, float] | None = None  # Δ_eta0 − Δ_trained, return-scale units
    pg_drift: float | None = None  # ‖Σ g‖² / Σ ‖g‖² of the trained actor's policy gradient (≈ 1 noise)
    thresholds: dict[str, Any] = field(default_factory=lambda: DEFAULT_THRESHOLDS.to_dict())
    entropy_holder: str = "unknown"  # bonus | pinned | not bonus | not high | unknown: what holds the entropy up
    entropy_statement: str = ""

    def get(self, name: str) -> InterventionResult | None:
        return next((i for i in self.interventions if i.name == name), None)

    @property
    def learning_blocked_by(self) -> str:
        """The conclusion in the doctor's code set (dreamscope.diagnostics.answers)."""
        return PROBE_CONCLUSION_BLOCKED_BY[self.conclusion]

    @property
    def entropy_held_by(self) -> str:
        return PROBE_HOLDER_HELD_BY[self.entropy_holder]

    def to_dict(self) -> dict:
        return _finite({"conclusion": self.conclusion, "statement": self.statement,
                        "entropy_holder": self.entropy_holder, "entropy_statement": self.entropy_statement,
                        "entropy_held_by": self.entropy_held_by, "learning_blocked_by": self.learning_blocked_by,
                        "interventions": [i.to_dict() for i in self.interventions],
                        "gain_vs_trained": self.gain_vs_trained, "pg_drift": self.pg_drift,
                        "settings": self.settings,
                        "thresholds": self.thresholds})


def _finite(obj):
    """JSON without NaN/inf: non-finite numbers become null."""
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


# --------------------------------------------------------------------------------------
# The decision
# --------------------------------------------------------------------------------------


def _g(x: float) -> str:
    return f"{x:.3g}" if math.isfinite(x) else "n/a"


def _pm(d: dict) -> str:
    h = d["half_width"]
    return f"{_g(d['mean'])} ± {f'{h:.2g}' if math.isfinite(h) else 'n/a'}"


def entropy_holder(results: dict[str, InterventionResult], updates: int,
                   th: ProbeThresholds = DEFAULT_THRESHOLDS) -> tuple[str, str]:
    """(holder, statement): does the bonus hold σ up? Read from σ alone, apart from the return.

    A run can answer "yes" here and "undecided" on learning: the bonus pins σ at its ceiling,
    and with σ freed there is still nothing to gain until rewards reach the world model.
    """
    eta0, trained = results.get("eta0"), results.get("trained")
    if eta0 is None or trained is None:
        return "unknown", "needs the eta0 and trained interventions (run without --only)"
    level = eta0.before["std_level"]
    s0, s_free, s_kept = eta0.before["std"], eta0.after["std"], trained.after["std"]
    if level < th.symptom_min_std_level:
        return "not high", (f"σ = {_g(s0)} sits at {math.floor(100 * level) / 100:.2f} of its log range (0 = floor, "
                            f"1 = ceiling): the entropy is not stuck high")
    released = (level - eta0.after["std_level"]) - (level - trained.after["std_level"])
    moves = (f"without the bonus σ goes from {_g(s0)} to {_g(s_free)} in {updates} actor updates, with it to "
             f"{_g(s_kept)}")
    if released >= th.bonus_release_level:
        return "bonus", f"the bonus holds the entropy up: {moves}"
    pinned = eta0.after.get("std_at_upper_frac", 0.0)
    if pinned > th.pinned_frac:
        return "pinned", (f"σ has not left its ceiling with or without the bonus: {moves} ({pinned:.0%} of its "
                          f"components still at the upper bound); {updates} updates are too few to tell whether the "
                          "bonus holds it there — rerun with more --updates or a larger --lr")
    return "not bonus", (f"the bonus is not what holds the entropy up now: {moves} (σ's level falls "
                         f"{released:.2f} more without it; a release is ≥ {th.bonus_release_level:g} of the log range)")


def decide(results: dict[str, InterventionResult], gain: dict | None, scale: float, updates: int,
           pg_drift: float, th: ProbeThresholds = DEFAULT_THRESHOLDS, lr: float = math.nan,
           spread: float = math.nan) -> tuple[str, str]:
    """(conclusion, statement) from the interventions' deltas; see the rules above ProbeThresholds.

    ``spread`` is the checkpoint's return spread S (P95 − P5 of λ-returns, before max(limit, ·)).
    """
    eps = th.min_return_effect
    unit = f"{_g(eps * scale)} return units = {eps:g} × return scale {_g(scale)}"
    over = f"over {updates} actor updates"
    eta0, trained, adv = results.get("eta0"), results.get("trained"), results.get("adv_x10")
    if eta0 is None or trained is None or gain is None:
        return "undecided", "undecided: the decision needs the eta0 and trained interventions (run without --only)"
    n = eta0.delta["return"]["n"]
    if n < th.min_eval_batches:
        return "undecided", (f"undecided: {n} evaluation batches are fewer than {th.min_eval_batches}; "
                             "rerun with more --eval-batches")

    def improves(d: dict) -> bool:
        return d["lo"] > 0 and d["mean"] >= eps

    def flat(d: dict) -> bool:
        return -eps < d["lo"] and d["hi"] < eps

    def can_improve(d: dict) -> bool:
        return d["hi"] >= eps

    def ret(r: InterventionResult) -> str:  # in return units, the user's unit
        return _pm(r.delta["return"])

    s0, s1 = eta0.before["std"], eta0.after["std"]
    x0, x1 = eta0.before["saturation"], eta0.after["saturation"]
    sigma = (f"{'lowers' if s1 < s0 else 'raises'} σ from {_g(s0)} to {_g(s1)} and saturation from "
             f"{x0:.0%} to {x1:.0%}")
    eta_txt = f"η = {_g(trained.eta)} → 0"
    if improves(gain):
        verb = "raises" if eta0.delta["return"]["mean"] > 0 else "changes"
        return "cause", (f"removing the entropy bonus ({eta_txt}) {sigma}, and {verb} imagined return by {ret(eta0)} "
                         f"(continuing with η as trained: {ret(trained)}; gain {_pm(gain)} return scales) {over}: "
                         "learning is blocked by the entropy: the bonus is a cause")
    adv_ok = adv is not None and not can_improve(adv.delta["return_norm"])
    nothing = flat(eta0.delta["return_norm"]) and adv_ok and not can_improve(trained.delta["return_norm"])
    level, drift = eta0.before["std_level"], pg_drift
    if nothing and level >= th.symptom_min_std_level and drift <= th.pg_drift_max:
        return "symptom", (f"removing the entropy bonus ({eta_txt}) changes imagined return by {ret(eta0)} and ×10 "
                           f"advantages by {ret(adv)} (an effect would be ≥ {unit}) {over}; σ goes from {_g(s0)} to "
                           f"{_g(s1)} and the policy gradient keeps no direction (drift {drift:.2g}; noise gives ≈ 1): "
                           "learning is blocked by no signal: there is nothing to free — the entropy is a symptom")
    if nothing and level >= th.symptom_min_std_level and spread < eps * scale:
        return "symptom", (f"removing the entropy bonus ({eta_txt}) {sigma} but changes imagined return by only "
                           f"{ret(eta0)} (×10 advantages: {ret(adv)}) {over}; the whole spread of imagined returns is "
                           f"{_g(spread)} return units, under one effect ({unit}): the world model imagines almost "
                           "no reward to win, so no policy can gain — learning is blocked by no signal, and the "
                           "entropy is a symptom")
    # Undecided: say why.
    if nothing and level >= th.symptom_min_std_level and eta0.after["std_at_upper_frac"] <= th.pinned_frac:
        why = (f"without the bonus σ leaves its ceiling ({_g(s0)} → {_g(s1)}), yet imagined return moves only "
               f"{ret(eta0)} (×10 advantages: {ret(adv)}; an effect is ≥ {unit}; the whole spread of imagined returns "
               f"is {_g(spread)}): the bonus is what holds σ up, but freeing it buys almost no return — the policy "
               f"gradient has a direction (drift {drift:.3g}) with little to gain, so the missing signal, not the "
               "entropy, limits learning; more --updates show whether the gain grows")
    elif nothing and level >= th.symptom_min_std_level:
        why = (f"imagined return stays flat (η = 0: {ret(eta0)}, ×10 advantages: {ret(adv)}) but without the bonus "
               f"the policy gradient keeps a direction (drift {drift:.3g} > {th.pg_drift_max:g}; noise gives ≈ 1): "
               f"{updates} updates at lr {lr:g} were too few to act on it (σ {_g(s0)} → {_g(s1)}); rerun with more "
               "--updates or a larger --lr")
    elif nothing:
        why = (f"no intervention changes imagined return (η = 0: {ret(eta0)}, ×10 advantages: {ret(adv)}), but the "
               f"entropy is not high: σ = {_g(s0)} sits at {math.floor(100 * level) / 100:.2f} of its log range "
               f"(0 = floor, 1 = ceiling; a symptom needs ≥ {th.symptom_min_std_level:g}): the policy has converged "
               "or collapsed; no stuck-high entropy to explain")
    elif gain["hi"] < 0 and gain["mean"] <= -eps:
        why = (f"removing the bonus lowers imagined return ({ret(eta0)} vs {ret(trained)} as trained): the bonus "
               "is not what blocks improvement here")
    elif improves(trained.delta["return_norm"]) or (adv is not None and improves(adv.delta["return_norm"])):
        who = "continuing as trained" if improves(trained.delta["return_norm"]) else "×10 advantages"
        best = trained if who.startswith("continuing") else adv
        why = (f"{who} raises imagined return by {ret(best)} and removing the bonus adds {_pm(gain)} return "
               f"scales beyond that: there is a learning signal, and within {updates} updates the bonus is not what "
               "holds it back")
        pinned = eta0.after["std_at_upper_frac"]
        if pinned > th.pinned_frac:
            why += (f"; but without the bonus σ has not left its ceiling yet ({pinned:.0%} of its components still at "
                    "the upper bound): rerun with more --updates to see whether it does")
        else:
            why += " (the entropy should fall as training goes on)"
    elif gain["lo"] > 0:
        why = (f"removing the bonus raises imagined return by {ret(eta0)} (as trained: {ret(trained)}), a real gain "
               f"of {_pm(gain)} return scales but under the {eps:g} that counts as an effect: the bonus costs "
               "little here")
    elif adv is None:
        why = (f"removing the bonus changes imagined return by {ret(eta0)}, but without the adv_x10 intervention "
               "a missing signal cannot be told from a weak one")
    else:
        why = (f"removing the bonus changes imagined return by {ret(eta0)} (gain {_pm(gain)} return scales; an "
               f"effect would be ≥ {unit}): the interval is too wide to call; rerun with more --eval-batches or "
               "--updates")
    return "undecided", f"undecided: {why}"


# --------------------------------------------------------------------------------------
# Loading a run
# --------------------------------------------------------------------------------------


def _npz_shape(path: Path, key: str) -> tuple[int, ...]:
    """Shape of one array in an .npz without reading its data."""
    with zipfile.ZipFile(path) as z, z.open(f"{key}.npy") as f:
        version = np.lib.format.read_magic(f)
        reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, _ = reader(f)
    return tuple(shape)


def load_run(run_dir: str | Path, device: str = "cpu", compile: bool = False):
    """(config, agent with the checkpoint's weights, replay) of a run directory; DreamscopeError if it is not one."""
    from dreamscope.config import load_run_config
    from dreamscope.replay import Replay

    path = run_directory(run_dir, (CONFIG, CHECKPOINT, REPLAY))
    cfg = load_run_config(path / CONFIG)
    cfg.run.compile = compile  # off by default: at small sizes the compile costs more than it saves
    cfg.run.device = device
    try:
        obs_shape, act_shape = _npz_shape(path / REPLAY, "obs"), _npz_shape(path / REPLAY, "prev_action")
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise DreamscopeError(f"{path / REPLAY}: cannot read the saved replay ({err}); expected the replay.npz "
                              "that `dreamscope train` writes") from None
    if len(obs_shape) != 3 or len(act_shape) != 3:
        raise DreamscopeError(f"{path / REPLAY}: obs {obs_shape} / prev_action {act_shape} are not "
                              "(streams, rows, dim) arrays; expected the replay.npz that `dreamscope train` writes")
    obs_dim, action_dim = obs_shape[-1], act_shape[-1]
    agent = load_agent(path, cfg, obs_dim, action_dim, device)
    replay = Replay(cfg.run.replay_size, cfg.run.envs, obs_dim, action_dim, seed=cfg.run.seed)
    replay.load(path / REPLAY)
    return cfg, agent, replay


# --------------------------------------------------------------------------------------
# The probe
# --------------------------------------------------------------------------------------


def _frozen_retnorm(retnorm):
    """A copy of the return normaliser whose ``update`` does nothing: every intervention
    sees the checkpoint's scale, so the intervention is the only difference between them."""
    from dreamscope.agent.behavior import ReturnNorm

    class FrozenReturnNorm(ReturnNorm):
        def update(self, returns) -> None:  # noqa: D102 - frozen on purpose
            return None

    frozen = FrozenReturnNorm(retnorm.cfg)
    frozen.load_state_dict(retnorm.state_dict())
    return frozen.to(retnorm.lo.device)


def freeze(agent) -> float:
    """Freeze the world model, the critic and the return normaliser for actor-only updates; returns
    the trained η (the entropy controller's current value, held from here on)."""
    agent.wm.requires_grad_(False)
    agent.ac.critic.requires_grad_(False)
    agent.ac.retnorm = _frozen_retnorm(agent.ac.retnorm)
    return float(agent.ac.entropy_control.eta)


def start_states(agent, replay, batches: int, batch_size: int, batch_length: int, device: str):
    """Posterior latents of ``batches`` replay batches, flattened to (B·T) starts, with continue flags."""
    import torch

    from dreamscope.agent.world_model import Latent

    wm = agent.wm
    out = []
    with torch.no_grad():
        for _ in range(batches):
            batch = replay.sample(batch_size, batch_length, device)
            obs = batch["obs"]
            post, _, _ = wm.rssm.observe(wm.embed(obs), batch["prev_action"], batch["is_first"],
                                         wm.rssm.initial(obs.shape[0], obs.device))
            start = Latent(post.deter.reshape(-1, post.deter.shape[-1]), post.stoch.reshape(-1, *post.stoch.shape[2:]))
            out.append((start, 1.0 - batch["is_terminal"].float().reshape(-1)))
    return out


def policy_gradient_drift(ac, wm, starts, seeds: list[int], trained_eta: float) -> float:
    """‖Σ_m g_m‖² / Σ_m ‖g_m‖² of the trained actor's policy-gradient term over the start batches.

    ≈ 1 when the gradient is zero-mean noise, the number of batches when it is the same on
    every batch, 0 when there is none: whether the advantages carry a direction at all.
    """
    import torch

    params = [p for p in ac.actor.parameters() if p.requires_grad]
    g_sum, g_sq = None, 0.0
    for (start, cont), seed in zip(starts, seeds):
        torch.manual_seed(seed)
        imag = ac.imagine(wm, start, cont)
        out = intervention_loss(ac, imag, INTERVENTIONS["eta0"], trained_eta)
        if not out.pg_loss.requires_grad:
            return 0.0
        grads = torch.autograd.grad(out.pg_loss, params, allow_unused=True)
        g = torch.cat([(gr if gr is not None else torch.zeros_like(p)).reshape(-1)
                       for gr, p in zip(grads, params)]).double()
        g_sum = g if g_sum is None else g_sum + g
        g_sq += float(g.dot(g))
    return float(g_sum.dot(g_sum)) / g_sq if g_sq > 0 else 0.0


def evaluate(ac, wm, starts, seeds: list[int], entropy_space: str) -> dict[str, np.ndarray]:
    """Per evaluation batch, the policy's measures (see MEASURES), each batch under its own noise seed."""
    import torch

    from dreamscope.agent.behavior import lambda_return
    from dreamscope.agent.entropy import differentiable_entropy
    from dreamscope.dists import SATURATION_THRESHOLD

    rows: dict[str, list[float]] = {k: [] for k in MEASURES if k != "return_norm"}
    with torch.no_grad():
        for (start, cont), seed in zip(starts, seeds):
            torch.manual_seed(seed)
            imag = ac.imagine(wm, start, cont)
            value = ac.critic(imag.feat).mean()
            returns = lambda_return(imag.reward, imag.disc, value, ac.cfg.return_lambda)
            dist = ac.actor(imag.feat[:-1])
            upper, _ = dist.std_at_bounds()
            lo, hi = math.log(dist.std_min), math.log(dist.std_max)
            rows["std_level"].append(float(((dist.std.log() - lo) / (hi - lo)).mean()))
            rows["return"].append(float(returns[0].mean()))
            rows["reward_sum"].append(float((imag.weight[:-1] * imag.reward[1:]).sum(0).mean()))
            rows["entropy"].append(float(differentiable_entropy(dist, entropy_space).mean()))
            rows["entropy_action"].append(float(dist.action_entropy(16).mean()))
            rows["std"].append(float(dist.std.mean()))
            rows["std_at_upper_frac"].append(float(upper))
            rows["saturation"].append(float((imag.action[:-1].abs() > SATURATION_THRESHOLD).float().mean()))
    return {k: np.asarray(v) for k, v in rows.items()}


def probe(run_dir: str | Path, updates: int = 200, eval_batches: int = 8, train_batches: int = 16,
          only: list[str] | None = None, seed: int = 0, device: str = "cpu", batch_size: int | None = None,
          batch_length: int | None = None, progress: bool = False, compile: bool = False,
          thresholds: ProbeThresholds = DEFAULT_THRESHOLDS, loaded=None, lr: float | None = None) -> ProbeResult:
    """Run the interventions on ``run_dir``'s checkpoint and decide: cause, symptom or undecided.

    ``lr`` replaces the run's learning rate for the probe's actor updates: at DreamerV3's 4e-5,
    200 updates barely move σ. ``loaded`` takes a ``load_run`` result to skip loading.
    """
    import torch

    from dreamscope.agent.optim import Optimizer

    t_start = time.perf_counter()
    if updates < 1:
        raise DreamscopeError(f"--updates {updates}: expected a positive number of actor updates")
    if eval_batches < 2:
        raise DreamscopeError(f"--eval-batches {eval_batches}: expected at least 2 (an interval needs two batches)")
    if train_batches < 1:
        raise DreamscopeError(f"--train-batches {train_batches}: expected a positive number")
    if lr is not None and not (math.isfinite(lr) and lr > 0):
        raise DreamscopeError(f"--lr {lr}: expected a positive learning rate, e.g. 3e-4")
    cfg, agent, replay = loaded if loaded is not None else load_run(run_dir, device, compile)
    names = available_interventions(cfg)
    if only:
        unknown = [n for n in only if n not in INTERVENTIONS]
        if unknown:
            raise DreamscopeError(f"--only {','.join(unknown)}: unknown intervention; accepted: {', '.join(names)}")
        inapplicable = [n for n in only if n not in names]
        if inapplicable:
            raise DreamscopeError(f"--only {','.join(inapplicable)}: does not apply to this run "
                                  f"(actor.dist={cfg.actor.dist}, actor.entropy_space={cfg.actor.entropy_space}); "
                                  f"accepted: {', '.join(names)}")
        names = [n for n in names if n in only]
    B = batch_size or cfg.run.batch_size
    T = batch_length or cfg.run.batch_length
    if not replay.can_sample(T):
        raise DreamscopeError(f"{Path(run_dir) / REPLAY}: holds {len(replay)} rows, fewer than one sequence of {T} "
                              "(run.batch_length); train longer or pass a shorter --batch-length")

    ac, wm = agent.ac, agent.wm
    trained_eta = freeze(agent)
    scale = float(ac.retnorm.scale)
    entropy_space = cfg.actor.entropy_space
    trained_actor = copy.deepcopy(ac.actor.state_dict())
    actor_params = list(ac.actor.parameters())
    optim_cfg = dataclasses.replace(cfg.optim, warmup=0, lr=lr or cfg.optim.lr)

    results: dict[str, InterventionResult] = {}
    per_batch: dict[str, dict[str, np.ndarray]] = {}
    bar = progress_bar(progress, "probe")
    task = bar.add_task("probe", total=len(names) * updates, what="") if bar else None
    dev = torch.device(device)
    with torch.random.fork_rng(devices=[dev.index or 0] if dev.type == "cuda" else []):  # keep the caller's RNG
        torch.manual_seed(seed)
        replay.rng = np.random.default_rng(seed)
        train_starts = start_states(agent, replay, train_batches, B, T, device)
        eval_starts = start_states(agent, replay, eval_batches, B, T, device)
        eval_seeds = [seed * 1_000_003 + 10_000 + j for j in range(eval_batches)]
        base = evaluate(ac, wm, eval_starts, eval_seeds, entropy_space)
        base["return_norm"] = base["return"] / scale
        drift = policy_gradient_drift(ac, wm, train_starts, [seed * 1_000_003 + 20_000 + j for j in
                                                             range(len(train_starts))], trained_eta)
        try:
            if bar:
                bar.start()
            for name in names:
                iv = INTERVENTIONS[name]
                t0 = time.perf_counter()
                ac.actor.load_state_dict(trained_actor)
                opt = Optimizer(actor_params, optim_cfg)
                for k in range(updates):
                    torch.manual_seed(seed * 1_000_003 + k)  # same noise at update k in every intervention
                    start, cont = train_starts[k % len(train_starts)]
                    imag = ac.imagine(wm, start, cont)
                    out = intervention_loss(ac, imag, iv, trained_eta)
                    out.actor_loss.backward(inputs=actor_params)
                    opt.step()
                    if bar:
                        bar.update(task, advance=1, what=name)
                after = evaluate(ac, wm, eval_starts, eval_seeds, entropy_space)
                after["return_norm"] = after["return"] / scale
                per_batch[name] = after
                results[name] = InterventionResult(
                    name, iv.description, iv.eta(trained_eta), iv.adv_multiplier, iv.entropy_space or entropy_space,
                    before={k: float(v.mean()) for k, v in base.items()},
                    after={k: float(v.mean()) for k, v in after.items()},
                    delta={k: interval(after[k] - base[k], thresholds.confidence) for k in MEASURES},
                    seconds=time.perf_counter() - t0)
        finally:
            if bar:
                bar.stop()
            ac.actor.load_state_dict(trained_actor)
    gain = None
    if "eta0" in per_batch and "trained" in per_batch:
        gain = interval(per_batch["eta0"]["return_norm"] - per_batch["trained"]["return_norm"], thresholds.confidence)
    spread = float(ac.retnorm.spread)
    conclusion, statement = decide(results, gain, scale, updates, drift, thresholds, optim_cfg.lr, spread)
    holder, holder_statement = entropy_holder(results, updates, thresholds)
    settings = {
        "run_dir": str(run_dir), "updates": updates, "eval_batches": eval_batches, "train_batches": train_batches,
        "starts_per_batch": B * T, "batch_size": B, "batch_length": T, "seed": seed, "device": device,
        "dist": cfg.actor.dist, "std_bound": cfg.actor.std_bound, "entropy_space": entropy_space,
        "action_dim": agent.action_dim, "trained_eta": trained_eta, "return_scale": scale,
        "return_spread": spread, "optimizer": cfg.optim.optimizer, "lr": optim_cfg.lr,
        "imag_horizon": cfg.behavior.imag_horizon, "actor_grad": cfg.actor.grad, "compile": cfg.run.compile,
        "seconds": time.perf_counter() - t_start,
    }
    return ProbeResult(conclusion, statement, [results[n] for n in names], settings, gain, drift,
                       thresholds.to_dict(), holder, holder_statement)


# --------------------------------------------------------------------------------------
# Output: terminal, JSON, HTML fragment
# --------------------------------------------------------------------------------------



def _as_dict(result) -> dict:
    return result.to_dict() if hasattr(result, "to_dict") else result


def _answers(r: dict) -> tuple[str, str]:
    """(entropy_held_by, learning_blocked_by), also from a probe JSON saved before they were written."""
    return (r.get("entropy_held_by") or PROBE_HOLDER_HELD_BY.get(r.get("entropy_holder", "unknown"), "unknown"),
            r.get("learning_blocked_by") or PROBE_CONCLUSION_BLOCKED_BY[r["conclusion"]])


def _rows(result: dict, compact: bool = False) -> list[tuple[str, ...]]:
    """Table cells (plain text) shared by the terminal (``compact``) and the HTML output."""
    rows = []
    sep = "±" if compact else " ± "
    for iv in result["interventions"]:
        d, b, a = iv["delta"], iv["before"], iv["after"]

        def pm(key: str) -> str:
            m, h = d[key]["mean"], d[key]["half_width"]
            if m is None:
                return "n/a"
            mean = f"{m:+.2g}" if compact else f"{m:+.3g}"
            return f"{mean}{sep}{h:.1g}" if h is not None else mean

        eta = f"{iv['eta']:.3g}" + (" (action)" if iv["entropy_space"] == "action" else "")
        arrow = "→" if compact else " → "
        rows.append((iv["name"], eta, f"×{iv['adv_multiplier']:g}", pm("entropy"), pm("entropy_action"),
                     f"{b['std']:.3g}{arrow}{a['std']:.3g}", f"{b['saturation']:.0%}{arrow}{a['saturation']:.0%}",
                     pm("return")))
    return rows


HEADERS = ("intervention", "η", "adv", "Δ entropy (loss)", "Δ entropy (action)", "σ", "saturation",
           "Δ imagined return")
#: The terminal drops the η and adv columns (the intervention's name says them; η is in the title).
SHORT_HEADERS = ("intervention", "ΔH loss", "ΔH action", "σ", "sat.", "Δ return")


def render(result, console=None) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    r = _as_dict(result)
    console = console or Console()
    s = r["settings"]
    table = Table(title=Text(f"probe {s['run_dir']} (trained η = {s['trained_eta']:.3g}): {s['updates']} actor "
                             "updates per intervention, "
                             f"{s['eval_batches']} evaluation batches × {s['starts_per_batch']} starts, "
                             f"{int(r['thresholds']['confidence'] * 100)}% intervals"), box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    for h in SHORT_HEADERS:
        table.add_column(h, justify="left" if h == "intervention" else "right", overflow="fold")
    for row in _rows(r, compact=True):
        table.add_row(*(Text(c) for c in (row[0], *row[3:])))
    console.print(table)
    from dreamscope.report.terminal import two_answer_lines

    for line in two_answer_lines(*_answers(r)):
        console.print(line)
    if r.get("entropy_statement"):
        console.print(Text.assemble(("ENTROPY", "bold"), f"  {r['entropy_statement']}"))
    from dreamscope.report.style import probe_colour

    style = f"bold {probe_colour(r['conclusion'])}"
    statement = r["statement"].removeprefix("undecided: ")
    console.print(Text.assemble((r["conclusion"].upper(), style), "  ", statement))
    th = r["thresholds"]
    console.print(Text(f"Δ = policy after the updates − trained policy, same held-out starts and noise; imagined "
                       f"return = λ-return from the start states; an effect is ≥ {th['min_return_effect']:g} × return "
                       f"scale {s['return_scale']:.3g}; trained η = {s['trained_eta']:.3g}; policy-gradient drift at the "
                       f"checkpoint {_g(r['pg_drift'] if r.get('pg_drift') is not None else math.nan)} (noise ≈ 1); "
                       f"{s['seconds']:.1f} s",
                       style="dim"))


def probe_html_section(result) -> str:
    """An HTML fragment (escaped, no external resources) of the probe for the report writer to embed."""
    from dreamscope.report.html import badge_html, esc as e, table_html, two_answers_html
    from dreamscope.report.style import probe_colour

    r = _as_dict(result)
    s = r["settings"]
    th = r["thresholds"]
    holder = f'<p><b>What holds the entropy up:</b> {e(r["entropy_statement"])}</p>' if r.get("entropy_statement") else ""
    return (
        '<section class="probe">'
        '<h2>Probe: interventions from the checkpoint</h2>'
        f'{two_answers_html(*_answers(r))}'
        f'<p>{badge_html(r["conclusion"], probe_colour(r["conclusion"]))} {e(r["statement"])}</p>'
        f'{holder}'
        f'{table_html(HEADERS, ([e(c) for c in row] for row in _rows(r)))}'
        f'<p class="muted">{e(s["updates"])} actor updates per intervention from the trained actor (world model '
        f'and critic frozen, return scale {e(format(s["return_scale"], ".3g"))} held), {e(s["eval_batches"])} held-out '
        f'evaluation batches × {e(s["starts_per_batch"])} start states with common random numbers; '
        f'{e(int(th["confidence"] * 100))}% Student-t intervals over batches; an effect is ≥ '
        f'{e(th["min_return_effect"])} return scales; policy-gradient drift at the checkpoint '
        f'{e(_g(r["pg_drift"]) if r.get("pg_drift") is not None else "n/a")} (noise ≈ 1).</p>'
        '</section>'
    )


# --------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run directory with config.yaml, checkpoint.pt, replay.npz "
                        "(or the path of its checkpoint.pt)")
    parser.add_argument("--updates", metavar="K", default="200", help="actor updates per intervention (default 200)")
    parser.add_argument("--eval-batches", metavar="N", default="8",
                        help="held-out evaluation batches the intervals are over (default 8)")
    parser.add_argument("--train-batches", metavar="N", default="16",
                        help="replay batches of start states the updates cycle through (default 16)")
    parser.add_argument("--only", metavar="NAMES", help="comma-separated subset: eta0,trained,eta_x10,adv_x10,"
                        "action_entropy (default: all that apply)")
    parser.add_argument("--batch-size", metavar="B", help="sequences per batch of start states (default: the run's)")
    parser.add_argument("--batch-length", metavar="T", help="steps per sequence (default: the run's)")
    parser.add_argument("--lr", metavar="LR", help="learning rate of the probe's actor updates (default: the run's "
                        "optim.lr; DreamerV3's 4e-5 moves σ little in 200 updates)")
    parser.add_argument("--seed", metavar="S", default="0", help="seed for batches and noise (default 0)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--compile", action="store_true",
                        help="torch.compile the imagination step as run.compile does (pays off from size1m up)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    updates = int_option("--updates", args.updates, 1)
    eval_batches = int_option("--eval-batches", args.eval_batches, 2)
    train_batches = int_option("--train-batches", args.train_batches, 1)
    seed = int_option("--seed", args.seed, 0)
    batch_size = int_option("--batch-size", args.batch_size, 1) if args.batch_size is not None else None
    batch_length = int_option("--batch-length", args.batch_length, 1) if args.batch_length is not None else None
    only = [n.strip() for n in args.only.split(",") if n.strip()] if args.only else None
    lr = positive_float_option("--lr", args.lr) if args.lr is not None else None
    result = probe(args.run_dir, updates=updates, eval_batches=eval_batches, train_batches=train_batches, only=only,
                   seed=seed, device=args.device, batch_size=batch_size, batch_length=batch_length,
                   progress=not args.no_progress and not args.json, compile=args.compile, lr=lr)
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, allow_nan=False, ensure_ascii=False))
    else:
        render(result)
    return 0
