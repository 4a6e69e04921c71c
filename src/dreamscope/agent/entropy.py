"""Entropy-bonus control: fixed η, schedules, or a target-entropy controller.

The controller is SAC's temperature adjustment applied to log η, but on the entropy that
matters: for a tanh-squashed policy the entropy of the *actions* (its pre-tanh entropy can
grow without bound while the actions saturate). The target is given in nats per action
dimension, or as a level between the entropy's floor (0) and ceiling (1).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from dreamscope.config import ActorConfig
from dreamscope.dists import BoundedNormal, TanhNormal, log1m_tanh_sq
from dreamscope.errors import DreamscopeError


def differentiable_entropy(dist: BoundedNormal | TanhNormal, space: str) -> torch.Tensor:
    """Per-sample entropy for the loss: the distribution's own, or (TanhNormal) of the actions.

    The action-space entropy H(x) + E[log(1 − tanh² x)] is estimated with one
    reparameterised sample per state, so its gradient reaches both μ and σ.
    """
    if space == "action" and isinstance(dist, TanhNormal):
        x = dist.mean + dist.std * torch.randn_like(dist.mean)
        return dist.entropy() + log1m_tanh_sq(x).sum(-1)
    return dist.entropy()


def schedule_value(kind: str, start: float, end: float, updates: int, step: int) -> float:
    """η at update ``step`` going from ``start`` to ``end`` over ``updates`` updates, then held."""
    frac = min(1.0, step / updates) if updates > 0 else 1.0
    if kind == "linear":
        return start + (end - start) * frac
    if kind == "exp":
        if start <= 0 or end <= 0:
            raise ValueError(f"an exponential schedule needs positive endpoints, got {start} -> {end}")
        return start * (end / start) ** frac
    if kind == "cosine":
        return end + (start - end) * 0.5 * (1.0 + math.cos(math.pi * frac))
    raise ValueError(f"unknown schedule {kind!r}; accepted: linear, exp, cosine")


class EntropyControl(nn.Module):
    """Holds η; ``update`` moves it once per training update according to the configured rule."""

    def __init__(self, cfg: ActorConfig, action_dim: int):
        super().__init__()
        self.cfg = cfg
        self.action_dim = action_dim
        self.register_buffer("log_eta", torch.tensor(math.log(max(cfg.entropy_scale, 1e-30))))
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))
        self._range_cache: tuple[float, float] | None = None
        if cfg.entropy_control in ("target", "exp") and cfg.entropy_scale <= 0:
            raise DreamscopeError(f"actor.entropy_control={cfg.entropy_control} needs actor.entropy_scale > 0 "
                                  f"(got {cfg.entropy_scale}): it is the initial eta")
        if cfg.entropy_control == "exp" and cfg.entropy_scale_end <= 0:
            raise DreamscopeError(f"actor.entropy_control=exp needs actor.entropy_scale_end > 0 (got {cfg.entropy_scale_end})")

    @property
    def eta(self) -> float:
        c = self.cfg
        if c.entropy_control == "fixed":
            return c.entropy_scale
        if c.entropy_control == "target":
            return float(self.log_eta.exp())
        return schedule_value(c.entropy_control, c.entropy_scale, c.entropy_scale_end, c.entropy_schedule_updates, int(self.updates))

    def target(self, dist: BoundedNormal | TanhNormal) -> float:
        """The controller's target in nats (summed over action dims)."""
        c = self.cfg
        if c.entropy_target_level >= 0:
            lo, hi = self._range(dist)
            return lo + c.entropy_target_level * (hi - lo)
        return c.entropy_target * self.action_dim

    def _range(self, dist: BoundedNormal | TanhNormal) -> tuple[float, float]:
        """Floor and ceiling of the entropy the controller measures (fixed by the config: cached)."""
        if self._range_cache is None:
            self._range_cache = self._compute_range(dist)
        return self._range_cache

    def _compute_range(self, dist: BoundedNormal | TanhNormal) -> tuple[float, float]:
        if self.cfg.entropy_space == "action" and isinstance(dist, TanhNormal):
            # Action entropy at the std floor, and the uniform's d·ln 2 as the ceiling.
            floor = TanhNormal(torch.zeros(1, self.action_dim), torch.full((1, self.action_dim), -1e4),
                               "logstd_clamp", math.log(dist.std_min), math.log(dist.std_max))
            return float(floor.action_entropy(4096).mean()), dist.action_entropy_bound()
        return dist.entropy_floor(), dist.entropy_ceiling()

    def measured(self, dist: BoundedNormal | TanhNormal) -> float:
        space = self.cfg.entropy_space
        value = dist.action_entropy(16) if space == "action" and isinstance(dist, TanhNormal) else dist.entropy()
        return float(value.mean())

    @torch.no_grad()
    def update(self, dist: BoundedNormal | TanhNormal) -> dict[str, float]:
        """Step the schedule or the dual variable; returns what to log (the η this update used)."""
        out = {"entropy/eta": self.eta}
        self.updates += 1
        if self.cfg.entropy_control == "target":
            target = self.target(dist)
            # Gradient descent on log η · (H − target): η grows while the entropy is under target.
            self.log_eta += self.cfg.entropy_controller_lr * (target - self.measured(dist)) / self.action_dim
            self.log_eta.clamp_(math.log(1e-8), math.log(1.0))
            out["entropy/target"] = target
        return out
