"""Canonical metric names: written by `train`, produced by every log reader, read by the doctor.

Keep this the single list; readers map foreign names onto these keys. The constants the metrics
are defined with live here too, free of torch, so that `dreamscope entropy` and the readers share
them with the distributions that train.
"""

import math

#: |a| above this counts as a saturated (bang-bang) action component (policy/saturation_frac).
SATURATION_THRESHOLD = 0.99
LN2 = math.log(2.0)
#: Entropy of a unit Gaussian in nats, ½·ln(2πe); add ln σ for N(μ, σ).
GAUSSIAN_ENTROPY_UNIT = 0.5 * math.log(2.0 * math.pi * math.e)


def action_entropy_bound(action_dim: int) -> float:
    """Largest differential entropy of any distribution on [-1, 1]^d (the uniform's)."""
    return action_dim * LN2

CANONICAL_METRICS: dict[str, str] = {
    # policy distribution
    "policy/entropy": "entropy as the actor loss uses it (pre-tanh for squashed policies)",
    "policy/entropy_action": "entropy of the actions the env receives (MC for squashed)",
    "policy/entropy_max": "ceiling of policy/entropy for the configured std bounds",
    "policy/entropy_min_ref": "policy/entropy at the std floor",
    "policy/std_mean": "mean policy std", "policy/std_min": "min policy std", "policy/std_max": "max policy std",
    "policy/std_at_upper_frac": "fraction of std components at the upper bound",
    "policy/std_at_lower_frac": "fraction of std components at the lower bound",
    "policy/saturation_frac": f"fraction of action components with |a| > {SATURATION_THRESHOLD}",
    "policy/logprob_mean": "mean log-prob of the imagined actions",
    # actor gradients
    "actor/grad_norm": "norm of the actor loss's whole gradient on the actor, before clipping",
    "actor/pg_grad_norm": "norm of the policy-gradient term's gradient on the actor",
    "actor/ent_grad_norm": "norm of the eta*H term's gradient on the actor",
    "actor/ent_to_pg_ratio": "ent_grad_norm / pg_grad_norm (per step)",
    "actor/grad_cos": "cosine between the two gradients (per step)",
    "actor/logstd_push_ent": "batch-mean d(entropy loss)/d(log std), per action dim",
    "actor/logstd_push_pg": "batch-mean d(policy-gradient loss)/d(log std), per action dim",
    "actor/ent_to_pg_drift_ratio": "|EMA grad of eta*H| / |EMA grad of PG| (drift, not per-step)",
    # returns and advantages
    "return/scale": "S = EMA of P95 - P5 of lambda-returns, before max(1, S)",
    "return/lo": "EMA of P5", "return/hi": "EMA of P95", "return/mean": "mean lambda-return",
    "adv/mean": "raw advantage mean", "adv/std": "raw advantage std", "adv/abs_mean": "raw |advantage| mean",
    "adv_norm/mean": "normalised advantage mean", "adv_norm/std": "normalised advantage std",
    "adv_norm/abs_mean": "normalised |advantage| mean",
    # world model
    "model/obs_explained_var": ("1 - reconstruction error / variance of symlog(obs), decoded from posterior latents "
                                "after the first 8 rows of each replayed window (dreamscope model-fit's posterior share)"),
    # critic and rewards
    "value/mean": "mean critic value", "value/explained_var": "1 - Var(R - v)/Var(R) on imagined states",
    "reward/imag_mean": "mean imagined reward", "reward/imag_nonzero_frac": "fraction of imagined |r| > 0.5·max|r_replay|",
    "reward/replay_nonzero_frac": "fraction of replay steps with non-zero reward",
    "reward/head_hit_rate": "reward-head sign hits on replay steps whose true reward is non-zero",
    # episodes
    "episode/score": "undiscounted episode return", "episode/length": "episode length",
    "episode/score_max": "the best episode return among those a log line averages",
    "episode/win": "+1 win, 0 draw, -1 loss (air hockey)",
    # entropy control
    "entropy/eta": "entropy-bonus scale in use", "entropy/target": "target entropy of the controller",
}

#: Prefixes whose members are open-ended (loss/<term>, perf/<counter>).
CANONICAL_PREFIXES = ("loss/", "perf/")


def is_canonical(name: str) -> bool:
    return name in CANONICAL_METRICS or name.startswith(CANONICAL_PREFIXES)
