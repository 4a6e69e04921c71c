"""Distributions used by DreamerV3 heads, and the entropy reference values dreamscope reasons with.

Two entropies matter for a continuous policy and they are easy to confuse:

* ``entropy()`` is the value the actor *loss* uses. For :class:`BoundedNormal` (official
  DreamerV3) it is the Gaussian closed form; for :class:`TanhNormal` it is the entropy of
  the *pre-tanh* Gaussian, which is what most PyTorch ports put in their loss.
* ``action_entropy()`` is the entropy of the actions the environment receives. Any
  distribution on [-1, 1]^d has at most d·ln 2 nats (:func:`action_entropy_bound`), so a
  logged 13.68 for a 4-D squashed policy cannot be an action entropy.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from dreamscope.metrics import (  # noqa: F401 (re-exported)
    GAUSSIAN_ENTROPY_UNIT, LN2, SATURATION_THRESHOLD, action_entropy_bound)


def symlog(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.log1p(x.abs())


def symexp(x: torch.Tensor) -> torch.Tensor:
    return torch.sign(x) * torch.expm1(x.abs())


def gaussian_entropy(std: torch.Tensor | float) -> torch.Tensor:
    """Per-dimension differential entropy of N(μ, std) in nats."""
    return GAUSSIAN_ENTROPY_UNIT + torch.log(torch.as_tensor(std, dtype=torch.float64))


def log1m_tanh_sq(x: torch.Tensor) -> torch.Tensor:
    """log(1 - tanh(x)^2) without cancellation: 2·(ln 2 − x − softplus(−2x))."""
    return 2.0 * (LN2 - x - F.softplus(-2.0 * x))


def _normal_cdf(x: torch.Tensor) -> torch.Tensor:
    return 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))


def _two_sided_tail(mean: torch.Tensor, std: torch.Tensor, bound: float) -> torch.Tensor:
    """P(|x| > bound) for x ~ N(mean, std), elementwise."""
    return _normal_cdf((-bound - mean) / std) + 1.0 - _normal_cdf((bound - mean) / std)


# --------------------------------------------------------------------------------------
# Two-hot regression over symexp-spaced bins (reward and critic heads)
# --------------------------------------------------------------------------------------


def symexp_bins(num_bins: int = 255, limit: float = 20.0) -> torch.Tensor:
    """Bin centres symexp(linspace(-limit, limit)); exactly symmetric around zero."""
    if num_bins < 3 or num_bins % 2 == 0:
        raise ValueError(f"num_bins must be odd and >= 3, got {num_bins}")
    half = symexp(torch.linspace(-limit, 0.0, (num_bins + 1) // 2, dtype=torch.float64))
    return torch.cat([half, -half[:-1].flip(0)]).float()


def _twohot_neighbours(y: torch.Tensor, bins: torch.Tensor):
    """Indices of the two bins around each target and the weight of the upper one."""
    y = y.detach().to(bins.dtype)
    k = torch.searchsorted(bins, y.unsqueeze(-1), right=True).squeeze(-1)  # bins[k-1] <= y < bins[k]
    below = (k - 1).clamp(0, len(bins) - 1)
    above = k.clamp(0, len(bins) - 1)
    lo, hi = bins[below], bins[above]
    span = hi - lo
    w_above = torch.where(span > 0, (y - lo) / torch.where(span > 0, span, 1.0), 0.5).clamp(0.0, 1.0)
    w_above = torch.where(torch.isnan(y), y, w_above)  # a NaN target gives a NaN loss, not the top bin
    return below, above, w_above


def twohot_encode(y: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
    """Spread each scalar target over its two neighbouring bins, linearly in value.

    Targets outside the bin range put all weight on the nearest end bin.
    """
    below, above, w_above = _twohot_neighbours(y, bins)
    out = torch.zeros(*y.shape, len(bins), dtype=bins.dtype, device=bins.device)
    out.scatter_add_(-1, below.unsqueeze(-1), (1.0 - w_above).unsqueeze(-1))
    out.scatter_add_(-1, above.unsqueeze(-1), w_above.unsqueeze(-1))
    return out


class TwoHot:
    """Categorical over fixed bins, decoded by its expectation, trained by cross-entropy."""

    def __init__(self, logits: torch.Tensor, bins: torch.Tensor):
        self.logits = logits
        self.bins = bins.to(logits.device)

    # Both computed on first use and kept: the critic's loss scores two targets against one
    # log-softmax, and a head that is only trained never needs its probabilities.
    @functools.cached_property
    def probs(self) -> torch.Tensor:
        return torch.softmax(self.logits.float(), -1)

    @functools.cached_property
    def log_probs(self) -> torch.Tensor:
        return torch.log_softmax(self.logits.float(), -1)

    def mean(self) -> torch.Tensor:
        # Pair each positive bin with its mirror: uniform probabilities over the symmetric
        # bins then decode to exactly zero (a zero-initialised head predicts 0).
        mid = len(self.bins) // 2
        paired = self.probs[..., mid + 1 :] - self.probs[..., :mid].flip(-1)
        return paired @ self.bins[mid + 1 :]

    def loss(self, target: torch.Tensor) -> torch.Tensor:
        """Cross-entropy to the two-hot encoding of ``target`` (same shape as ``mean()``)."""
        below, above, w_above = _twohot_neighbours(target, self.bins)
        logp = self.log_probs
        lp_below = logp.gather(-1, below.unsqueeze(-1)).squeeze(-1)
        lp_above = logp.gather(-1, above.unsqueeze(-1)).squeeze(-1)
        return -((1.0 - w_above) * lp_below + w_above * lp_above)


# --------------------------------------------------------------------------------------
# Categorical with unimix (latents) and straight-through samples
# --------------------------------------------------------------------------------------


class UnimixCategorical:
    """Categorical over the last axis mixed with a uniform: p = (1−u)·softmax + u/K.

    The floor probability u/K keeps the KL between posterior and prior finite and bounded.
    """

    def __init__(self, logits: torch.Tensor, unimix: float = 0.01):
        if not 0.0 <= unimix < 1.0:
            raise ValueError(f"unimix must be in [0, 1), got {unimix}")
        logits = logits.float()
        # Written out: torch.softmax over a last axis of a few classes is ~6x slower on CPU.
        exp = (logits - logits.amax(-1, keepdim=True).detach()).exp()
        probs = exp / exp.sum(-1, keepdim=True)
        if unimix > 0:
            probs = (1.0 - unimix) * probs + unimix / logits.shape[-1]
        self.probs = probs

    @property
    def logits(self) -> torch.Tensor:
        """Log-probabilities (after unimix); computed on demand since sampling needs only probs."""
        return torch.log(self.probs)

    def sample(self) -> torch.Tensor:
        """One-hot sample whose gradient flows to the probabilities (straight-through).

        Sampled by inverting the CDF: much cheaper than ``torch.multinomial`` for many
        small categoricals.
        """
        probs = self.probs.detach()
        u = torch.rand(probs.shape[:-1] + (1,), device=probs.device)
        index = (probs.cumsum(-1) < u).sum(-1, keepdim=True).clamp_max(probs.shape[-1] - 1)
        onehot = (index == torch.arange(probs.shape[-1], device=probs.device)).to(probs.dtype)  # no range check
        return onehot + self.probs - probs

    def mode(self) -> torch.Tensor:
        onehot = F.one_hot(self.probs.argmax(-1), self.probs.shape[-1]).to(self.probs.dtype)
        return onehot + self.probs - self.probs.detach()

    def entropy(self) -> torch.Tensor:
        return -(self.probs * self.logits).sum(-1)

    def kl(self, other: "UnimixCategorical") -> torch.Tensor:
        return (self.probs * (self.logits - other.logits)).sum(-1)


# --------------------------------------------------------------------------------------
# Continuous policies
# --------------------------------------------------------------------------------------


class ContinuousPolicy:
    """Common interface of the continuous action heads (diagonal, batch shape + (d,))."""

    mean: torch.Tensor
    std: torch.Tensor
    std_min: float
    std_max: float

    @property
    def action_dim(self) -> int:
        return self.mean.shape[-1]

    def entropy_ceiling(self) -> float:
        """Largest value ``entropy()`` can take with the configured std bounds."""
        return self.action_dim * float(gaussian_entropy(self.std_max))

    def entropy_floor(self) -> float:
        return self.action_dim * float(gaussian_entropy(self.std_min))

    def action_entropy_bound(self) -> float:
        return action_entropy_bound(self.action_dim)

    def std_at_bounds(self, rel_tol: float = 0.02) -> tuple[torch.Tensor, torch.Tensor]:
        """Fractions of std components within ``rel_tol`` (in log space) of each bound."""
        log_std = torch.log(self.std)
        tol = rel_tol * (math.log(self.std_max) - math.log(self.std_min))
        upper = (log_std >= math.log(self.std_max) - tol).float().mean()
        lower = (log_std <= math.log(self.std_min) + tol).float().mean()
        return upper, lower


class BoundedNormal(ContinuousPolicy):
    """Official DreamerV3 continuous head: N(tanh μ_raw, σ), σ = (max−min)·sigmoid(s+2)+min.

    Samples are not squashed; the environment (or the caller) clips them to [-1, 1].
    """

    def __init__(self, mean_raw: torch.Tensor, std_raw: torch.Tensor, std_min: float = 0.1, std_max: float = 1.0):
        if not 0 < std_min < std_max:
            raise ValueError(f"need 0 < std_min < std_max, got std_min={std_min}, std_max={std_max}")
        self.std_min, self.std_max = float(std_min), float(std_max)
        self.mean = torch.tanh(mean_raw)
        self.std = (std_max - std_min) * torch.sigmoid(std_raw + 2.0) + std_min

    @classmethod
    def from_moments(cls, mean: torch.Tensor, std: torch.Tensor, std_min: float = 0.1,
                     std_max: float = 1.0) -> "BoundedNormal":
        """The head whose mean and σ are these (for code that holds the moments, not the raw outputs):
        the mean is kept inside (−1, 1) and σ inside [std_min, std_max], as the head keeps them."""
        if not 0 < std_min < std_max:
            raise ValueError(f"need 0 < std_min < std_max, got std_min={std_min}, std_max={std_max}")
        edge = 1.0 - torch.finfo(mean.dtype).eps
        frac = ((std - std_min) / (std_max - std_min)).clamp(0.0, 1.0)
        return cls(torch.atanh(mean.clamp(-edge, edge)), torch.logit(frac) - 2.0, std_min, std_max)

    def sample(self) -> torch.Tensor:
        return self.mean + self.std * torch.randn_like(self.mean)

    def mode(self) -> torch.Tensor:
        return self.mean

    def log_prob(self, x: torch.Tensor) -> torch.Tensor:
        z = (x - self.mean) / self.std
        return (-0.5 * z**2 - torch.log(self.std) - 0.5 * math.log(2 * math.pi)).sum(-1)

    def entropy(self) -> torch.Tensor:
        """Gaussian closed form summed over dims: what the official actor loss uses."""
        return (GAUSSIAN_ENTROPY_UNIT + torch.log(self.std)).sum(-1)

    def saturation(self) -> torch.Tensor:
        """Expected fraction of clipped action components with |a| > 0.99 (closed form)."""
        return _two_sided_tail(self.mean, self.std, SATURATION_THRESHOLD).mean()

    def action_entropy(self, samples: int = 256, atom_width: float = 1.0 - SATURATION_THRESHOLD) -> torch.Tensor:
        """Monte-Carlo entropy of the clipped actions, summed over dims, per batch element.

        Clipping puts point masses at ±1; each is counted as spread uniformly over a band of
        ``atom_width`` at the bound (the saturation band), so the value stays finite and
        comparable with a squashed policy's.
        """
        with torch.no_grad():
            x = self.mean + self.std * torch.randn((samples, *self.mean.shape), device=self.mean.device)
            z = (x - self.mean) / self.std
            interior = 0.5 * z**2 + torch.log(self.std) + 0.5 * math.log(2 * math.pi)
            mass_hi = 1.0 - _normal_cdf((1.0 - self.mean) / self.std)
            mass_lo = _normal_cdf((-1.0 - self.mean) / self.std)
            atom_hi = -torch.log(mass_hi.clamp_min(1e-30) / atom_width)
            atom_lo = -torch.log(mass_lo.clamp_min(1e-30) / atom_width)
            surprise = torch.where(x >= 1.0, atom_hi, torch.where(x <= -1.0, atom_lo, interior))
            return surprise.mean(0).sum(-1)


class TanhNormal(ContinuousPolicy):
    """x ~ N(μ, σ), a = tanh(x): the squashed Gaussian of SAC-style ports.

    ``std_bound`` picks how σ is kept in its bounds, as the ports do:
      * ``"logstd_squash"``: log σ = lo + (hi − lo)·(tanh(s) + 1)/2 (NaturalDreamer, SAC code);
      * ``"logstd_clamp"``: log σ = clamp(s, lo, hi);
      * ``"minmax"``: σ = (max − min)·sigmoid(s + 2) + min, as :class:`BoundedNormal`.
    ``entropy()`` is the *pre-tanh* Gaussian entropy; ``action_entropy()`` adds the Jacobian.
    """

    STD_BOUNDS = ("logstd_squash", "logstd_clamp", "minmax")

    def __init__(
        self,
        mean: torch.Tensor,
        std_raw: torch.Tensor,
        std_bound: str = "logstd_squash",
        logstd_min: float = -5.0,
        logstd_max: float = 2.0,
        std_min: float = 0.1,
        std_max: float = 1.0,
    ):
        if std_bound not in self.STD_BOUNDS:
            raise ValueError(f"std_bound must be one of {self.STD_BOUNDS}, got {std_bound!r}")
        if std_bound == "minmax":
            lo, hi = math.log(std_min), math.log(std_max)
        else:
            lo, hi = float(logstd_min), float(logstd_max)
        if not lo < hi:
            raise ValueError(f"need a lower std bound below the upper one, got log-std bounds ({lo}, {hi})")
        self.std_min, self.std_max = math.exp(lo), math.exp(hi)
        self.std_bound = std_bound
        self.mean = mean
        if std_bound == "logstd_squash":
            self.std = torch.exp(lo + (hi - lo) * 0.5 * (torch.tanh(std_raw) + 1.0))
        elif std_bound == "logstd_clamp":
            self.std = torch.exp(std_raw.clamp(lo, hi))
        else:
            self.std = (self.std_max - self.std_min) * torch.sigmoid(std_raw + 2.0) + self.std_min

    @classmethod
    def from_moments(cls, mean: torch.Tensor, std: torch.Tensor, logstd_min: float = -5.0,
                     logstd_max: float = 2.0) -> "TanhNormal":
        """The policy with this pre-tanh mean and σ (for code that holds the moments, not the raw
        outputs), σ clamped into [e^logstd_min, e^logstd_max] as ``logstd_clamp`` keeps it."""
        return cls(mean, torch.log(std), "logstd_clamp", logstd_min, logstd_max)

    def sample_pretanh(self) -> torch.Tensor:
        """Reparameterised pre-tanh sample x; the action is tanh(x)."""
        return self.mean + self.std * torch.randn_like(self.mean)

    def sample(self) -> torch.Tensor:
        return torch.tanh(self.sample_pretanh())

    def mode(self) -> torch.Tensor:
        return torch.tanh(self.mean)

    def log_prob_pretanh(self, x: torch.Tensor) -> torch.Tensor:
        """log p(tanh x) from the pre-tanh sample; exact even where tanh(x) rounds to ±1."""
        z = (x - self.mean) / self.std
        gauss = -0.5 * z**2 - torch.log(self.std) - 0.5 * math.log(2 * math.pi)
        return (gauss - log1m_tanh_sq(x)).sum(-1)

    def log_prob(self, action: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
        x = torch.atanh(action.clamp(-1.0 + eps, 1.0 - eps))
        return self.log_prob_pretanh(x)

    def entropy(self) -> torch.Tensor:
        """Entropy of the pre-tanh Gaussian (what the ports' loss uses), summed over dims."""
        return (GAUSSIAN_ENTROPY_UNIT + torch.log(self.std)).sum(-1)

    def action_entropy(self, samples: int = 256) -> torch.Tensor:
        """Monte-Carlo entropy of a = tanh(x): H(x) + E[log(1 − tanh² x)], summed over dims."""
        with torch.no_grad():
            eps = torch.randn((samples, *self.mean.shape), device=self.mean.device)
            x = self.mean + self.std * eps
            return self.entropy() + log1m_tanh_sq(x).mean(0).sum(-1)

    def saturation(self) -> torch.Tensor:
        """Expected fraction of action components with |tanh x| > 0.99 (closed form)."""
        return _two_sided_tail(self.mean, self.std, math.atanh(SATURATION_THRESHOLD)).mean()
