"""Foreign metric names → canonical ones, per implementation, and what can be derived from them.

Every table entry was read off the implementation's own logging code; the comment says what
the foreign value is where that is not obvious, because several names that look alike mean
different things (official ``train/ret`` is a *normalised* return, ``train/tar`` the raw one).
A foreign key that no table maps, and that is not already canonical, is kept as
``raw/<key>`` so that nothing in the log is lost.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

import numpy as np

from dreamscope.errors import DreamscopeError
from dreamscope.logs.schema import Run, Series
from dreamscope.metrics import CANONICAL_METRICS, is_canonical

RAW = "raw/"


@dataclass(frozen=True)
class NameTable:
    """How one implementation names things: exact names first (in priority order), then patterns."""

    implementation: str
    exact: dict[str, str]
    patterns: tuple[tuple[str, str], ...] = ()
    #: Keys whose presence identifies the implementation (format detection).
    markers: frozenset[str] = field(default_factory=frozenset)
    #: Key prefixes that identify it too.
    marker_prefixes: tuple[str, ...] = ()
    #: The policy its code builds by default (dist, std bounds, eta), with where that is written.
    #: Recorded as Run.meta["implementation_defaults"], never as meta["dist"] etc.: a run may
    #: have changed them, and only its saved config (see sidecar) says so.
    defaults: dict = field(default_factory=dict)

    def target(self, key: str) -> tuple[int, str] | None:
        """(priority, canonical name) for ``key``; lower priority wins a conflict."""
        if key in self.exact:
            return list(self.exact).index(key), self.exact[key]
        for rank, (pattern, template) in enumerate(self.patterns):
            match = re.fullmatch(pattern, key)
            if match:
                return len(self.exact) + rank, match.expand(template)
        return None

    def score(self, keys) -> int:
        """How many of ``keys`` are characteristic of this implementation."""
        return sum(1 for k in keys if k in self.markers or k.startswith(self.marker_prefixes))


# Official danijar/dreamerv3. 2024+ (agent.py imag_loss): adv = (R - v) / max(1, S) is the
# advantage after return normalisation; ret = (R - P5) / max(1, S); tar = R / valnorm, and
# valnorm's default impl is "none", so tar is the raw lambda-return mean; val is de-normalised.
# 2023 (ImagActorCritic): tensorstats names (<name>_mean, _std, ...), adv again normalised.
DREAMERV3 = NameTable(
    implementation="dreamerv3",
    exact={
        "train/ent/action": "policy/entropy",
        "train/policy_entropy_mean": "policy/entropy",
        "train/policy_logprob_mean": "policy/logprob_mean",
        "train/adv": "adv_norm/mean",
        "train/adv_mean": "adv_norm/mean",
        "train/adv_std": "adv_norm/std",
        "train/adv_mag": "adv_norm/abs_mean",
        "train/val": "value/mean",
        "train/extr_critic_mean": "value/mean",
        "train/tar": "return/mean",
        "train/extr_return_raw_mean": "return/mean",
        "train/rew": "reward/imag_mean",
        "train/extr_reward_mean": "reward/imag_mean",
        "episode/score": "episode/score",
        "episode/length": "episode/length",
        "train/loss/policy": "loss/policy",
        "train/loss/value": "loss/value",
        "train/loss/rew": "loss/reward",
        "train/loss/con": "loss/cont",
        "train/actor_opt_loss": "loss/policy",
        # 2023: one optimizer per module, so the actor's gradient norm is logged on its own. 2024+ has
        # one optimizer for all (train/opt/grad_norm, kept raw); with report_gradnorms the report's
        # policy-loss gradient norm is the actor's (the actor sees stop-gradient features).
        "train/actor_opt_grad_norm": "actor/grad_norm",
        "report/gradnorm/policy": "actor/grad_norm",
        "train/extr_critic_critic_opt_loss": "loss/value",
        "train/model_opt_loss": "loss/model",
        "fps/train": "perf/fps_train",
        "fps/policy": "perf/fps_policy",
    },
    patterns=(
        (r"train/loss/(\w+)", r"loss/\1"),
        (r"train/(\w+)_loss_mean", r"loss/\1"),
    ),
    markers=frozenset({"train/ent/action", "train/adv_mag", "train/policy_entropy_mean", "train/dyn_ent",
                       "fps/policy", "fps/train", "train/extr_return_raw_mean", "train/model_loss_mean"}),
    marker_prefixes=("train/ent/", "train/rand/", "epstats/", "replay/", "usage/"),
    defaults={"dist": "bounded_normal", "std_min": 0.1, "std_max": 1.0, "eta": 3e-4,
              "source": "danijar/dreamerv3 e3f0224 dreamerv3/configs.yaml: policy_dist_cont, policy.minstd/maxstd, "
                        "imag_loss.actent"},
)

# NM512/dreamerv3-torch (models.py ImagBehavior, tools.Optimizer "<name>_loss"): the actor's
# entropy as its loss uses it; EMA_005/EMA_095 are the RewardEMA percentiles whose difference,
# before clipping at 1, is S. target_* is the raw lambda-return. Look-alike code bases (same
# names, e.g. world_model_loss, frames_per_second) read the same way.
DREAMERV3_TORCH = NameTable(
    implementation="dreamerv3-torch",
    exact={
        "actor_entropy": "policy/entropy",
        "actor_ent": "policy/entropy",
        "EMA_005": "return/lo",
        "EMA_095": "return/hi",
        "value_mean": "value/mean",
        "target_mean": "return/mean",
        "imag_reward_mean": "reward/imag_mean",
        "train_return": "episode/score",
        "train_length": "episode/length",
        "actor_loss": "loss/policy",
        "value_loss": "loss/value",
        "model_loss": "loss/model",
        "world_model_loss": "loss/model",
        "actor_grad_norm": "actor/grad_norm",  # tools.Optimizer: clip_grad_norm_'s return, before clipping
        "fps": "perf/fps",
        "frames_per_second": "perf/fps",
    },
    patterns=((r"(\w+)_loss", r"loss/\1"),),
    markers=frozenset({"actor_entropy", "actor_ent", "EMA_005", "EMA_095", "train_return", "train_length",
                       "dataset_size", "model_loss", "value_mean", "target_mean", "imag_reward_mean",
                       "frames_per_second", "world_model_loss", "kl_free", "eval_return", "train_episodes"}),
    defaults={"dist": "bounded_normal", "std_min": 0.1, "std_max": 1.0, "eta": 3e-4,
              "source": "NM512/dreamerv3-torch 6ef8646 configs.yaml: actor.dist normal (tanh mean, sigmoid std), "
                        "min_std, max_std, entropy"},
)
#: Keys only NM512's own dreamerv3-torch writes (look-alikes lack them).
NM512_KEYS = frozenset({"EMA_005", "EMA_095", "imag_reward_mean", "train_return", "dataset_size", "kl_free"})

# NM512/r2dreamer (dreamer.py _cal_grad, trainer.py "train/" prefix): ret_005/ret_095 are the
# ReturnEMA percentiles; adv = (R - v) / max(1, S); tar the raw lambda-return; ret normalised.
R2DREAMER = NameTable(
    implementation="r2dreamer",
    exact={
        "train/action_entropy": "policy/entropy",
        "train/ret_005": "return/lo",
        "train/ret_095": "return/hi",
        "train/adv": "adv_norm/mean",
        "train/adv_std": "adv_norm/std",
        "train/val": "value/mean",
        "train/tar": "return/mean",
        "train/rew": "reward/imag_mean",
        "episode/score": "episode/score",
        "episode/length": "episode/length",
        "fps/fps": "perf/fps",
    },
    patterns=((r"train/loss/(\w+)", r"loss/\1"),),
    markers=frozenset({"train/action_entropy", "train/ret_005", "train/ret_095", "fps/fps", "train/dyn_entropy",
                       "train/rep_entropy", "episode/eval_score"}),
    marker_prefixes=("train/ret_replay_", "train/value_replay_"),
    defaults={"dist": "bounded_normal", "std_min": 0.1, "std_max": 1.0, "eta": 3e-4,
              "source": "NM512/r2dreamer 546e4fa configs/model/_base_.yaml: actor.dist.cont, act_entropy"},
)

# NaturalDreamer (dreamer.py metrics, main.py saveLossesToCSV): advantages are divided by
# max(1, S) (valueMoments); entropies are the pre-tanh Gaussian's; totalReward the mean score
# of the latest interaction episodes.
NATURALDREAMER = NameTable(
    implementation="naturaldreamer",
    exact={
        "entropies": "policy/entropy",
        "logprobs": "policy/logprob_mean",
        "advantages": "adv_norm/mean",
        "criticValues": "value/mean",
        "totalReward": "episode/score",
        "actorLoss": "loss/policy",
        "criticLoss": "loss/value",
        "worldModelLoss": "loss/model",
        "reconstructionLoss": "loss/recon",
        "rewardPredictorLoss": "loss/reward",
        "klLoss": "loss/kl",
    },
    markers=frozenset({"envSteps", "gradientSteps", "totalReward", "entropies", "criticValues"}),
    defaults={"dist": "tanh_normal", "logstd_min": -5.0, "logstd_max": 2.0, "eta": 3e-4,
              "source": "InexperiencedMe/NaturalDreamer 3a68353 networks.py Actor (log std squashed into (-5, 2), "
                        "a constant), configs/*.yml entropyScale"},
)

# sheeprl dreamer_v3 (Eclectic-Sheep/sheeprl 33b6366, algos/dreamer_v3/dreamer_v3.py: aggregator names,
# written by Fabric's TensorBoard logger, or its CSVLogger's metrics.csv). sheeprl logs no policy
# entropy; Grads/actor is fabric.clip_gradients' return (the norm before clipping), and is left out
# of the log when it is exactly 0 (`if actor_grads:`). State/* (latent KL and entropies) and
# Params/* (replay ratio, Dreamer-V1's exploration amount) have no canonical counterpart.
SHEEPRL = NameTable(
    implementation="sheeprl",
    exact={
        "Loss/policy_loss": "loss/policy",
        "Loss/value_loss": "loss/value",
        "Loss/world_model_loss": "loss/model",
        "Loss/observation_loss": "loss/observation",
        "Loss/reward_loss": "loss/reward",
        "Loss/state_loss": "loss/kl",
        "Loss/continue_loss": "loss/cont",
        "Rewards/rew_avg": "episode/score",
        "Game/ep_len_avg": "episode/length",
        "Grads/actor": "actor/grad_norm",
        "Time/sps_train": "perf/sps_train",
        "Time/sps_env_interaction": "perf/sps_env",
    },
    patterns=((r"Loss/(\w+)_loss", r"loss/\1"),),
    markers=frozenset({"Rewards/rew_avg", "Game/ep_len_avg", "Loss/world_model_loss", "Time/sps_train",
                       "Grads/actor", "Grads/world_model", "State/kl", "Params/replay_ratio"}),
    marker_prefixes=("Loss/", "State/", "Grads/", "Params/"),
    defaults={"dist": "bounded_normal", "std_min": 0.1, "std_max": 1.0, "eta": 3e-4,
              "source": "Eclectic-Sheep/sheeprl 33b6366 configs/algo/dreamer_v3.yaml: actor.min_std/max_std/ent_coef; "
                        "distribution.type auto = scaled_normal for continuous actions"},
)

# Names that many hand-written Dreamer variants and W&B dashboards use; read after the
# implementation's own table and after canonical names, so neither is overridden. The
# behavior/* ... stats/* block is the seed question's NaturalDreamer fork (W&B keys of its
# dreamer.py and train script): its advantages are divided by max(1, S), its values/norm_* are
# the percentile EMAs, and stats/mean_reward is the mean score of the last 100 episodes.
LOOKALIKES = NameTable(
    implementation="unknown",
    exact={
        "behavior/entropy_mean": "policy/entropy",
        "behavior/entropy": "policy/entropy",
        "actor_entropy": "policy/entropy",
        "policy_entropy": "policy/entropy",
        "actor/entropy": "policy/entropy",
        "policy/entropy_mean": "policy/entropy",
        "entropy_mean": "policy/entropy",
        "mean_entropy": "policy/entropy",
        "train/entropy": "policy/entropy",
        "train/actor_entropy": "policy/entropy",
        "Stats/Mean_Entropy": "policy/entropy",
        "entropy": "policy/entropy",
        "entropies": "policy/entropy",
        "behavior/logprobs_mean": "policy/logprob_mean",
        "actor/min_std": "policy/std_min",
        "actor/max_std": "policy/std_max",
        "actor/std": "policy/std_mean",
        "actor/std_mean": "policy/std_mean",
        "policy_std": "policy/std_mean",
        "action_std": "policy/std_mean",
        "behavior/advantages_mean": "adv_norm/mean",
        "behavior/advantages_std": "adv_norm/std",
        "behavior/advantages_abs_mean": "adv_norm/abs_mean",
        "advantages_abs_mean": "adv_norm/abs_mean",
        "values/mean": "value/mean",
        "values/lambda_returns_mean": "return/mean",
        "values/norm_low": "return/lo",
        "values/norm_high": "return/hi",
        "values/norm_scale": "return/scale",
        "imagination/reward_mean": "reward/imag_mean",
        "gradients/actor_norm": "actor/grad_norm",
        "actor_grad_norm": "actor/grad_norm",
        "actor/grad_norm": "actor/grad_norm",
        "grad_norm/actor": "actor/grad_norm",
        "Grads/actor": "actor/grad_norm",
        "stats/mean_reward": "episode/score",
        "episode/reward_mean": "episode/score",
        "episode/return": "episode/score",
        "episode_return": "episode/score",
        "train/episode_return": "episode/score",
        "charts/episodic_return": "episode/score",
        "rollout/ep_rew_mean": "episode/score",
        "Rewards/rew_avg": "episode/score",
        "train_return": "episode/score",
        "totalReward": "episode/score",
        "meanReward": "episode/score",
        "episode/length_mean": "episode/length",
        "episode_length": "episode/length",
        "charts/episodic_length": "episode/length",
        "rollout/ep_len_mean": "episode/length",
        "behavior/actor_loss": "loss/policy",
        "behavior/critic_loss": "loss/value",
        "world/loss": "loss/model",
        "actor_loss": "loss/policy",
        "policy_loss": "loss/policy",
        "critic_loss": "loss/value",
        "value_loss": "loss/value",
        "entropy_coef": "entropy/eta",
        "ent_coef": "entropy/eta",
        "entropy_scale": "entropy/eta",
    },
)

#: dreamscope writes canonical names; only pass-through applies.
DREAMSCOPE = NameTable(implementation="dreamscope", exact={})
#: For generic CSV and unrecognised TensorBoard logs: pass-through and the user's mapping only.
GENERIC = NameTable(implementation="unknown", exact={})

TABLES = {"dreamscope": DREAMSCOPE, "dreamerv3": DREAMERV3, "dreamerv3-torch": DREAMERV3_TORCH, "r2dreamer": R2DREAMER,
          "naturaldreamer": NATURALDREAMER, "sheeprl": SHEEPRL}

#: Keys that several implementations write with the same meaning; they identify none of them.
SHARED_KEYS = frozenset({"step", "episode/score", "episode/length"})


def identify(keys) -> str | None:
    """The implementation whose characteristic keys are most frequent among ``keys``.

    r2dreamer shares ``train/adv`` etc. with the official code, so ties go to the more
    specific table (r2dreamer before dreamerv3). ``None`` when no table claims any key.
    """
    keys = [k for k in keys if k not in SHARED_KEYS]
    scores = {name: table.score(keys) for name, table in TABLES.items()}
    canonical = sum(1 for k in keys if k in CANONICAL_METRICS)
    best = max(["r2dreamer", "dreamerv3", "dreamerv3-torch", "naturaldreamer", "sheeprl"], key=lambda n: scores[n])
    if scores[best] > 0 and scores[best] >= canonical:
        return best
    if canonical:
        return "dreamscope"
    return "lookalike" if any(k in LOOKALIKES.exact for k in keys) else None


def check_mapping(mapping: dict[str, str] | None) -> dict[str, str]:
    """Validate a user mapping {foreign: canonical}; the target must be a canonical name."""
    mapping = dict(mapping or {})
    for source, target in mapping.items():
        if not is_canonical(target):
            close = [n for n in CANONICAL_METRICS if n.split("/")[-1] in target or target in n][:5]
            hint = f" (close: {', '.join(close)})" if close else ""
            raise DreamscopeError(
                f"--map {source}={target}: '{target}' is not a canonical metric name{hint}; accepted: "
                f"{', '.join(CANONICAL_METRICS)}, or loss/<term>, perf/<counter>"
            )
    return mapping


def build_run(path, fmt: str, columns: dict[str, Series], table: NameTable, mapping: dict[str, str],
              warnings: list[str], meta: dict) -> Run:
    """Assign every foreign column a canonical name (or ``raw/<key>``), then derive what follows."""
    claims: list[tuple[int, int, str, str]] = []
    for order, key in enumerate(columns):
        if key in mapping:
            claims.append((0, order, key, mapping[key]))
            continue
        hit = table.target(key)
        after_table = 1 + len(table.exact) + len(table.patterns)
        if hit is not None:
            claims.append((1 + hit[0], order, key, hit[1]))
        elif is_canonical(key):
            claims.append((after_table, order, key, key))
        elif key in LOOKALIKES.exact:
            claims.append((after_table + 1 + list(LOOKALIKES.exact).index(key), order, key, LOOKALIKES.exact[key]))
    run = Run(path=str(path), format=fmt, meta=dict(meta), warnings=list(warnings))
    taken: set[str] = set()
    for _, _, key, target in sorted(claims):
        if target in run.series:
            run.warnings.append(
                f"{path}: '{key}' and '{run.sources[target]}' both map to {target}; "
                f"kept '{run.sources[target]}', '{key}' stays as {RAW}{key}"
            )
            continue
        run.series[target] = columns[key]
        run.sources[target] = key
        taken.add(key)
    for key, series in columns.items():
        if key not in taken:
            run.series[RAW + key] = series
    missing = [k for k in mapping if k not in columns]
    if missing:
        run.warnings.append(
            f"{path}: --map source(s) {', '.join(missing)} not found; keys there include "
            f"{', '.join(list(columns)[:12])}"
        )
    run.meta.setdefault("implementation", table.implementation)
    if table.defaults:
        run.meta["implementation_defaults"] = dict(table.defaults)
    _derive_return_scale(run)
    _infer_from_randomness(run)
    _infer_action_dim(run)
    return run


def _derive_return_scale(run: Run) -> None:
    """S = hi - lo (before max(1, S)) where the log has both percentile EMAs at the same steps."""
    lo, hi = run.series.get("return/lo"), run.series.get("return/hi")
    if lo is None or hi is None or "return/scale" in run.series:
        return
    if not np.array_equal(lo.steps, hi.steps):
        run.warnings.append(f"{run.path}: return/lo and return/hi are logged at different steps; "
                            f"return/scale not derived")
        return
    run.series["return/scale"] = Series(hi.steps.copy(), hi.values - lo.values)
    run.sources["return/scale"] = f"derived: {run.sources['return/hi']} - {run.sources['return/lo']}"


def _infer_from_randomness(run: Run) -> None:
    """Official dreamerv3 logs rand = (H - minent) / (maxent - minent) beside H: fit both bounds.

    The relation is exactly linear, so a least-squares line through (rand, H) gives the
    policy's entropy floor and ceiling; a floor of 0 with ceiling ln K is a categorical
    policy over K actions (recorded as dist "discrete", action_dim K). Only an exact fit is
    accepted: anything else is not this relation.
    """
    ent = run.series.get("policy/entropy")
    rand_key = next((k for k in ("train/rand/action", "train/policy_randomness_mean") if RAW + k in run.series),
                    None)
    if ent is None or rand_key is None:
        return
    rand = run.series[RAW + rand_key]
    if not np.array_equal(ent.steps, rand.steps):
        return
    # Entropies and randomness of any real policy are small numbers; a log's 1e308 is no evidence.
    ok = (np.abs(ent.values) < 1e6) & (np.abs(rand.values) < 1e6)
    r, h = rand.values[ok], ent.values[ok]
    if len(r) < 2 or np.ptp(r) < 1e-3:
        return
    dr, dh = r - r.mean(), h - h.mean()
    slope = float(dr @ dh / (dr @ dr))  # least squares line h = lo + slope * r
    lo = float(h.mean() - slope * r.mean())
    hi = lo + slope
    residual = float(np.max(np.abs(lo + slope * r - h)))
    if not residual <= 1e-5 * max(1.0, abs(lo), abs(hi)):
        return
    ent_key = run.sources["policy/entropy"]
    evidence = f"{ent_key} = {lo:.6g} + {slope:.6g} * {rand_key} on all {len(r)} records (max residual {residual:.1e})"
    run.series["policy/entropy_max"] = Series(ent.steps.copy(), np.full(len(ent), hi))
    run.series["policy/entropy_min_ref"] = Series(ent.steps.copy(), np.full(len(ent), lo))
    run.sources["policy/entropy_max"] = f"derived: value of the line {ent_key} vs {rand_key} at rand = 1"
    run.sources["policy/entropy_min_ref"] = f"derived: value of the line {ent_key} vs {rand_key} at rand = 0"
    inferred = run.meta.setdefault("inferred", {})
    inferred["entropy_bounds"] = evidence
    classes = math.exp(min(hi, 20.0))  # a ceiling ln K; K beyond e^20 would be no action space
    k = round(classes)
    if abs(lo) < 1e-5 and hi < 20.0 and k >= 2 and abs(classes - k) < 1e-4 * classes:
        # For a discrete policy action_dim counts the choices of its one categorical (the doctor's reading).
        run.meta.setdefault("dist", "discrete")
        run.meta.setdefault("action_dim", k)
        inferred["action_dim"] = f"a categorical over {k} actions: entropy floor 0, ceiling ln {k}"
    elif lo < hi:
        _bounded_normal_from_bounds(run, lo, hi, inferred)


#: ½ ln(2πe): a 1-D Gaussian's entropy at σ = 1.
GAUSS_1D = 0.5 * math.log(2 * math.pi * math.e)


def _bounded_normal_from_bounds(run: Run, lo: float, hi: float, inferred: dict) -> None:
    """A d-D Gaussian with σ in [σmin, σmax] has entropy floor d(½ln 2πe + ln σmin), ceiling d(… + ln σmax).

    Two equations, three unknowns: σ bounds from meta (a saved config) fix d, else the
    official defaults (0.1, 1) do. d is accepted only if it is an integer to 1e-4 and both
    bounds agree; anything else leaves the meta as it was.
    """
    std_min, std_max = run.meta.get("std_min", 0.1), run.meta.get("std_max", 1.0)
    if not (isinstance(std_min, (int, float)) and isinstance(std_max, (int, float)) and 0 < std_min < std_max):
        return
    d = (hi - lo) / math.log(std_max / std_min)
    k = round(d)
    if k < 1 or abs(d - k) > 1e-4 * d:
        return
    ceiling, floor = GAUSS_1D + math.log(std_max), GAUSS_1D + math.log(std_min)
    if abs(hi - k * ceiling) > 1e-4 * max(1.0, abs(hi)) or abs(lo - k * floor) > 1e-4 * max(1.0, abs(lo)):
        return
    for key, value in (("dist", "bounded_normal"), ("action_dim", k), ("std_min", std_min), ("std_max", std_max)):
        run.meta.setdefault(key, value)
    inferred.setdefault("action_dim", f"a {k}-D Gaussian with σ in [{std_min:g}, {std_max:g}]: entropy floor "
                                      f"{lo:.6g} = {k} × {floor:.6g}, ceiling {hi:.6g} = {k} × {ceiling:.6g}")


_PER_DIM = re.compile(r"(?P<base>.*?(?:action|act|std|logstd|log_std))[/_.](?P<dim>\d+)", re.IGNORECASE)


def _infer_action_dim(run: Run) -> None:
    """Per-dimension keys (``.../action_0`` … ``action_{d-1}``) reveal the action dimension."""
    dims: dict[str, set[int]] = {}
    for name in run.series:
        match = _PER_DIM.fullmatch(name)
        if match:
            dims.setdefault(match["base"], set()).add(int(match["dim"]))
    sizes = {base: len(d) for base, d in dims.items() if d == set(range(len(d)))}
    if not sizes or "action_dim" in run.meta:
        return
    if len(set(sizes.values())) > 1:
        run.warnings.append(f"{run.path}: per-dimension keys disagree on the action dimension: {sizes}; not inferred")
        return
    base, size = next(iter(sizes.items()))
    run.meta["action_dim"] = size
    run.meta.setdefault("inferred", {})["action_dim"] = f"per-dimension keys {base}<0..{size - 1}>"
