"""In-training measurements: the canonical policy, gradient, advantage and reward signals.

These functions only measure; the verdict rules live in :mod:`dreamscope.diagnostics.doctor`.
They take plain tensors and distributions so that any PyTorch actor can use them.
"""

from __future__ import annotations

import torch

from dreamscope.dists import SATURATION_THRESHOLD, BoundedNormal, TanhNormal


#: Largest ratio reported; beyond it the denominator is zero for practical purposes.
RATIO_CAP = 1e6


def _f(x: torch.Tensor | float) -> float:
    return float(x.detach()) if isinstance(x, torch.Tensor) else float(x)


def policy_metrics(dist: BoundedNormal | TanhNormal, env_actions: torch.Tensor, logp: torch.Tensor,
                   entropy: torch.Tensor, action_entropy_samples: int = 16) -> dict[str, float]:
    """Entropy (as the loss uses it and of env actions), its references, std and saturation."""
    std = dist.std.detach()
    upper, lower = dist.std_at_bounds()
    return {
        "policy/entropy": _f(entropy.mean()),
        "policy/entropy_action": _f(dist.action_entropy(action_entropy_samples).mean()),
        "policy/entropy_max": dist.entropy_ceiling(),
        "policy/entropy_min_ref": dist.entropy_floor(),
        "policy/std_mean": _f(std.mean()),
        "policy/std_min": _f(std.min()),
        "policy/std_max": _f(std.max()),
        "policy/std_at_upper_frac": _f(upper),
        "policy/std_at_lower_frac": _f(lower),
        "policy/saturation_frac": _f((env_actions.abs() > SATURATION_THRESHOLD).float().mean()),
        "policy/logprob_mean": _f(logp.mean()),
    }


def _flat(grads: tuple[torch.Tensor | None, ...], params: list[torch.Tensor]) -> torch.Tensor:
    return torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in zip(grads, params)])


class GradientSignals:
    """Splits the actor gradient into its policy-gradient and entropy parts.

    Per step it reports both norms, their ratio and cosine; across steps it keeps EMAs of
    the two gradient vectors, because the entropy gradient points the same way every step
    while the policy gradient's direction is mostly noise: what moves σ is the *drift*
    (``actor/ent_to_pg_drift_ratio``). The log-σ pushes are batch-mean derivatives of each
    loss term with respect to log σ, averaged over action dims (negative = pushes σ up).
    """

    def __init__(self, drift_rate: float = 0.02):
        self.drift_rate = drift_rate
        self.ema_pg: torch.Tensor | None = None
        self.ema_ent: torch.Tensor | None = None

    def measure(self, pg_loss: torch.Tensor, ent_loss: torch.Tensor, params: list[torch.Tensor],
                std: torch.Tensor) -> dict[str, float]:
        """Gradients of both loss terms; leaves the autograd graph intact for the real backward."""
        inputs = [*params, std]
        pg = torch.autograd.grad(pg_loss, inputs, retain_graph=True, allow_unused=True)
        ent = torch.autograd.grad(ent_loss, inputs, retain_graph=True, allow_unused=True)
        g_pg, g_ent = _flat(pg[:-1], params), _flat(ent[:-1], params)
        if self.ema_pg is None:
            self.ema_pg, self.ema_ent = g_pg.clone(), g_ent.clone()
        else:
            self.ema_pg.lerp_(g_pg, self.drift_rate)
            self.ema_ent.lerp_(g_ent, self.drift_rate)
        pg_norm, ent_norm = g_pg.norm(), g_ent.norm()
        tiny = 1e-30

        def ratio(num: torch.Tensor, den: torch.Tensor) -> float:
            # Capped: a ratio >= RATIO_CAP already says "the policy gradient is absent".
            return min(_f(num / den.clamp_min(tiny)), RATIO_CAP)

        # d loss / d log σ = σ · d loss / d σ; the losses are batch means, so multiply by the
        # number of samples to get the per-sample derivative, then average over samples and dims.
        rows = std.numel() // std.shape[-1]
        per_dim = rows / std.numel()

        def push(grad_std: torch.Tensor | None) -> float:
            return 0.0 if grad_std is None else _f((grad_std * std).sum() * per_dim)

        return {
            "actor/pg_grad_norm": _f(pg_norm),
            "actor/ent_grad_norm": _f(ent_norm),
            "actor/ent_to_pg_ratio": ratio(ent_norm, pg_norm),
            "actor/grad_cos": _f(torch.dot(g_pg, g_ent) / (pg_norm * ent_norm).clamp_min(tiny)),
            "actor/logstd_push_pg": push(pg[-1]),
            "actor/logstd_push_ent": push(ent[-1]),
            "actor/ent_to_pg_drift_ratio": ratio(self.ema_ent.norm(), self.ema_pg.norm()),
        }


def explained_variance(target: torch.Tensor, prediction: torch.Tensor) -> float:
    """1 − Var(target − prediction) / Var(target); 0 when the target is constant."""
    var = target.var()
    if var <= 1e-12:
        return 0.0
    return _f(1.0 - (target - prediction).var() / var)


def return_metrics(returns: torch.Tensor, value: torch.Tensor, adv: torch.Tensor, adv_normed: torch.Tensor,
                   lo: torch.Tensor, hi: torch.Tensor) -> dict[str, float]:
    """Return scale, raw and normalised advantages, and how well the critic fits R^λ."""
    out = {
        "return/scale": _f(hi - lo), "return/lo": _f(lo), "return/hi": _f(hi), "return/mean": _f(returns.mean()),
        "value/mean": _f(value.mean()), "value/explained_var": explained_variance(returns, value),
    }
    for prefix, a in (("adv", adv), ("adv_norm", adv_normed)):
        out.update({f"{prefix}/mean": _f(a.mean()), f"{prefix}/std": _f(a.std()), f"{prefix}/abs_mean": _f(a.abs().mean())})
    return out


def reward_metrics(imag_reward: torch.Tensor, replay_reward: torch.Tensor, predicted_replay_reward: torch.Tensor) -> dict[str, float]:
    """Do imagined rollouts contain the sparse rewards the replay holds, and does the head predict them?

    A hit is a replay step with non-zero true reward whose prediction has the same sign
    and at least half its magnitude.
    """
    nonzero = replay_reward.abs() > 1e-6
    scale = replay_reward.abs().max()
    out = {
        "reward/imag_mean": _f(imag_reward.mean()),
        "reward/imag_nonzero_frac": _f((imag_reward.abs() > 0.5 * scale).float().mean()) if scale > 0 else 0.0,
        "reward/replay_nonzero_frac": _f(nonzero.float().mean()),
    }
    if nonzero.any():
        true, pred = replay_reward[nonzero], predicted_replay_reward[nonzero]
        hits = (torch.sign(pred) == torch.sign(true)) & (pred.abs() >= 0.5 * true.abs())
        out["reward/head_hit_rate"] = _f(hits.float().mean())
    return out


class UpdateSignals:
    """Everything one DreamerV3 update is measured by, handed to ``Agent.train_step(measure=...)``
    by the trainer (the agent never imports the measurement). Keeps the gradient EMAs of
    :class:`GradientSignals` across the updates it measures."""

    def __init__(self, drift_rate: float = 0.02):
        self.gradients = GradientSignals(drift_rate)

    def before_backward(self, out, actor_params: list[torch.Tensor]) -> dict[str, float]:
        """The two loss terms' gradients on the actor (needs the graph: before the backward pass)."""
        return self.gradients.measure(out.pg_loss, out.ent_loss, actor_params, out.dist.std)

    @torch.no_grad()
    def after_step(self, out, batch: dict[str, torch.Tensor], reward_dist, retnorm) -> dict[str, float]:
        """Policy, return and reward signals of the update's outputs (``out``: the actor-critic's)."""
        metrics = policy_metrics(out.dist, out.imag.action[:-1], out.logp, out.entropy)
        metrics.update(return_metrics(out.returns, out.value[:-1], out.adv, out.adv_normed, retnorm.lo, retnorm.hi))
        metrics.update(reward_metrics(out.imag.reward[1:], batch["reward"], reward_dist.mean()))
        return metrics
