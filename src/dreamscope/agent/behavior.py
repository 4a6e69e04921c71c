"""Actor-critic learning in imagination (DreamerV3 §"Actor critic learning").

advantage = (R^λ − v) / max(limit, S), S = EMA of the P95 − P5 spread of λ-returns;
actor loss = −w·(log π(a)·sg(adv) + η·H(π)); critic: two-hot cross-entropy to R^λ plus a
regulariser towards its slow EMA copy.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn

from dreamscope.agent.entropy import EntropyControl, differentiable_entropy
from dreamscope.agent.nets import mlp, output_layer
from dreamscope.agent.world_model import Latent
from dreamscope.config import ActorConfig, BehaviorConfig, CriticConfig
from dreamscope.dists import BoundedNormal, TanhNormal, TwoHot, symexp_bins


class Actor(nn.Module):
    def __init__(self, cfg: ActorConfig, feat_dim: int, action_dim: int):
        super().__init__()
        self.cfg = cfg
        self.action_dim = action_dim
        self.net = nn.Sequential(mlp(feat_dim, cfg.units, cfg.layers), output_layer(cfg.units, 2 * action_dim, cfg.outscale))

    def forward(self, feat: torch.Tensor) -> BoundedNormal | TanhNormal:
        mean, std_raw = self.net(feat).float().chunk(2, -1)  # the distribution in float32 under autocast
        c = self.cfg
        if c.dist == "bounded_normal":
            return BoundedNormal(mean, std_raw, c.std_min, c.std_max)
        return TanhNormal(mean, std_raw, c.std_bound, c.logstd_min, c.logstd_max, c.std_min, c.std_max)


def sample_action(dist: BoundedNormal | TanhNormal) -> tuple[torch.Tensor, torch.Tensor]:
    """Returns (env action in [-1, 1], the raw sample whose log-prob the loss scores).

    BoundedNormal samples are clipped for the environment (as the official env wrapper
    does) but scored unclipped; TanhNormal is scored through its pre-tanh sample.
    """
    if isinstance(dist, TanhNormal):
        raw = dist.sample_pretanh()
        return torch.tanh(raw), raw
    raw = dist.sample()
    return raw.clamp(-1.0, 1.0), raw


def raw_log_prob(dist: BoundedNormal | TanhNormal, raw: torch.Tensor) -> torch.Tensor:
    return dist.log_prob_pretanh(raw) if isinstance(dist, TanhNormal) else dist.log_prob(raw)


class Critic(nn.Module):
    """Two-hot value head with a slow EMA copy used as a regulariser."""

    def __init__(self, cfg: CriticConfig, feat_dim: int):
        super().__init__()
        self.cfg = cfg
        self.net = nn.Sequential(mlp(feat_dim, cfg.units, cfg.layers), output_layer(cfg.units, cfg.bins, 0.0 if cfg.zero_init else 1.0))
        self.slow = copy.deepcopy(self.net).requires_grad_(False)
        self.register_buffer("bins", symexp_bins(cfg.bins), persistent=False)

    def forward(self, feat: torch.Tensor) -> TwoHot:
        return TwoHot(self.net(feat), self.bins)

    def slow_value(self, feat: torch.Tensor) -> torch.Tensor:
        return TwoHot(self.slow(feat), self.bins).mean()

    @torch.no_grad()
    def update_slow(self) -> None:
        for slow, fast in zip(self.slow.parameters(), self.net.parameters()):
            slow.lerp_(fast, self.cfg.slow_rate)


class ReturnNorm(nn.Module):
    """Return scale S: EMA of the P95 − P5 spread (``perc``), of the std (``std``), or 1 (``none``)."""

    def __init__(self, cfg: BehaviorConfig):
        super().__init__()
        self.cfg = cfg
        self.register_buffer("lo", torch.zeros(()))
        self.register_buffer("hi", torch.zeros(()))

    @torch.no_grad()
    def update(self, returns: torch.Tensor) -> None:
        c, flat = self.cfg, returns.flatten().float()
        if c.retnorm == "perc":
            q = torch.quantile(flat, torch.tensor([c.retnorm_lo / 100, c.retnorm_hi / 100], device=flat.device))
            self.lo.lerp_(q[0], c.retnorm_rate)
            self.hi.lerp_(q[1], c.retnorm_rate)
        elif c.retnorm == "std":
            self.lo.zero_()
            self.hi.lerp_(flat.std(), c.retnorm_rate)

    @property
    def spread(self) -> torch.Tensor:
        """S before the max(limit, ·): what the doctor compares with the limit."""
        return self.hi - self.lo

    @property
    def scale(self) -> torch.Tensor:
        if self.cfg.retnorm == "none":
            return torch.ones(())
        return self.spread.clamp_min(self.cfg.retnorm_limit)


def lambda_return(reward: torch.Tensor, disc: torch.Tensor, value: torch.Tensor,
                  lam: float | torch.Tensor) -> torch.Tensor:
    """R_t = r_{t+1} + γc_{t+1}((1−λ_{t+1})v_{t+1} + λ_{t+1}R_{t+1}), R_H = v_H. Inputs (H+1, N),
    ``lam`` a number or (H+1, N); output (H, N)."""
    ret = value[-1]
    out = []
    for t in reversed(range(value.shape[0] - 1)):
        lam_t = lam[t + 1] if torch.is_tensor(lam) else lam
        ret = reward[t + 1] + disc[t + 1] * ((1.0 - lam_t) * value[t + 1] + lam_t * ret)
        out.append(ret)
    return torch.stack(out[::-1])


def episode_last(is_first: torch.Tensor) -> torch.Tensor:
    """1.0 on replayed rows (T, B) followed by an episode's first row, i.e. its episode's last; the
    window's final row counts as not last, since what follows it is unknown."""
    return torch.cat([is_first[1:].float(), torch.zeros_like(is_first[:1], dtype=torch.float32)])


def replay_return(reward: torch.Tensor, is_first: torch.Tensor, is_terminal: torch.Tensor, boot: torch.Tensor,
                  gamma: float, lam: float) -> torch.Tensor:
    """λ-returns along replayed rows (T, B): the real rewards and terminals, bootstrapped from ``boot``
    (the imagined return from each row). From an episode's last row the return stops there (λ = 0),
    so the next episode's reward never enters. (T−1, B)."""
    return lambda_return(reward, gamma * (1.0 - is_terminal.float()), boot, lam * (1.0 - episode_last(is_first)))


def continuation(logits: torch.Tensor, mode: str) -> torch.Tensor:
    """How much of an imagined step's future counts. ``prob``: the continue head's probability,
    as the official code's ``con.prob(1)``, so that a step the model half believes to be a goal
    ends half the imagined return after it; ``threshold``: 1 where p > 0.5, else 0, which lets a
    model that puts every goal at p(continue) ~ 0.6 imagine scoring again and again."""
    return torch.sigmoid(logits) if mode == "prob" else (logits > 0).float()


@dataclass
class Imagination:
    """An imagined rollout, time-major: feat (H+1, N, F), actions (H+1, N, A)."""

    feat: torch.Tensor
    action: torch.Tensor  # what the env would receive, in [-1, 1]
    raw_action: torch.Tensor  # what the log-prob scores
    reward: torch.Tensor  # (H+1, N); reward[0] unused
    disc: torch.Tensor  # γ·continue, (H+1, N); disc[0] is the start's own continue flag
    weight: torch.Tensor  # cumulative discount weights (H+1, N)


@dataclass
class BehaviorOutput:
    """Everything the actor-critic update computed, kept for the signals."""

    actor_loss: torch.Tensor
    pg_loss: torch.Tensor
    ent_loss: torch.Tensor
    critic_loss: torch.Tensor
    dist: BoundedNormal | TanhNormal
    imag: Imagination
    returns: torch.Tensor
    value: torch.Tensor
    adv: torch.Tensor
    adv_normed: torch.Tensor
    logp: torch.Tensor
    entropy: torch.Tensor


class ActorCritic(nn.Module):
    def __init__(self, cfg: BehaviorConfig, actor_cfg: ActorConfig, critic_cfg: CriticConfig, feat_dim: int,
                 action_dim: int):
        super().__init__()
        self.cfg = cfg
        self.actor = Actor(actor_cfg, feat_dim, action_dim)
        self.critic = Critic(critic_cfg, feat_dim)
        self.retnorm = ReturnNorm(cfg)
        self.entropy_control = EntropyControl(actor_cfg, action_dim)

    @property
    def gamma(self) -> float:
        return 1.0 - 1.0 / self.cfg.horizon

    def policy_step(self, rssm, actor: Actor, deter: torch.Tensor, stoch: torch.Tensor):
        """One imagination step: act from the state, then predict the next state.

        Returns (feat, env action, raw action, next deter, next stoch) as plain tensors.
        """
        state = Latent(deter, stoch)
        feat = state.feat()
        action, raw = sample_action(actor(feat))
        nxt = rssm.img_step(state, action)
        return feat, action, raw, nxt.deter, nxt.stoch

    def imagine(self, wm, start: Latent, start_cont: torch.Tensor) -> Imagination:
        """Roll the policy out in the world model for ``imag_horizon`` steps from ``start``.

        With REINFORCE no gradient flows through the dynamics, so the rollout runs without
        autograd and the actor is re-evaluated on the detached states in one batched call;
        with ``actor.grad=backprop`` the reparameterised samples carry the gradient.
        """
        backprop = self.actor.cfg.grad == "backprop"
        with torch.set_grad_enabled(backprop and torch.is_grad_enabled()):
            deter, stoch = start.deter, start.stoch
            if torch.is_autocast_enabled(deter.device.type):  # the state in the compute dtype, as the official
                deter = deter.to(torch.get_autocast_dtype(deter.device.type))
            feats, actions, raws = [], [], []
            for _ in range(self.cfg.imag_horizon):
                feat, action, raw, deter, stoch = self.policy_step(wm.rssm, self.actor, deter, stoch)
                feats.append(feat)
                actions.append(action)
                raws.append(raw)
            last = Latent(deter, stoch).feat()
            action, raw = sample_action(self.actor(last))
            feat = torch.stack([*feats, last])
            reward = wm.reward(feat).mean()
            cont = continuation(wm.cont_logits(feat), self.cfg.continuation)
            actions.append(action)
            raws.append(raw)
        cont = torch.cat([start_cont.unsqueeze(0), cont[1:]], 0)
        disc = self.gamma * cont
        disc = torch.cat([cont[:1], disc[1:]], 0)
        weight = torch.cumprod(disc, 0).detach()
        return Imagination(feat, torch.stack(actions).float(), torch.stack(raws).float(), reward, disc, weight)

    def loss(self, imag: Imagination, eta: float | None = None, adv_multiplier: float = 1.0,
             entropy_space: str | None = None) -> BehaviorOutput:
        """Actor and critic losses; ``eta``, ``adv_multiplier`` and ``entropy_space`` override the
        configured values (the probe's interventions)."""
        cfg = self.cfg
        eta = self.entropy_control.eta if eta is None else eta
        backprop = self.actor.cfg.grad == "backprop"
        feat = imag.feat if backprop else imag.feat.detach()
        value_dist = self.critic(feat.detach())
        value = value_dist.mean()
        returns = lambda_return(imag.reward, imag.disc, value if backprop else value.detach(), cfg.return_lambda)
        self.retnorm.update(returns)
        adv = returns - value[:-1].detach()
        adv_normed = adv_multiplier * adv / self.retnorm.scale
        dist = self.actor(feat[:-1])
        weight = imag.weight[:-1]
        logp = raw_log_prob(dist, imag.raw_action[:-1].detach())
        entropy = differentiable_entropy(dist, entropy_space or self.actor.cfg.entropy_space)
        if backprop:
            pg_loss = -(weight * adv_normed).mean()
        else:
            pg_loss = -(weight * logp * adv_normed.detach()).mean()
        ent_loss = -(weight * eta * entropy).mean()
        critic_loss = (weight * self.critic_loss(value_dist, feat[:-1].detach(), returns.detach())).mean()
        return BehaviorOutput(pg_loss + ent_loss, pg_loss, ent_loss, critic_loss, dist, imag, returns.detach(),
                              value.detach(), adv.detach(), adv_normed.detach(), logp.detach(), entropy.detach())

    def replay_critic_loss(self, feat: torch.Tensor, batch: dict[str, torch.Tensor], boot: torch.Tensor) -> torch.Tensor:
        """The official ``repval`` loss: the critic also regresses the returns of the replayed
        sequences (B, T), so that its values answer to the real rewards and terminals and not only
        to what the world model imagines. Rows that end an episode carry no target (weight 0)."""
        tm = lambda x: x.transpose(0, 1)  # noqa: E731 - batch-major to time-major
        first = tm(batch["is_first"])
        returns = replay_return(tm(batch["reward"]), first, tm(batch["is_terminal"]), tm(boot), self.gamma,
                                self.cfg.return_lambda)
        feat = tm(feat)
        weight = 1.0 - episode_last(first)[:-1]
        return (weight * self.critic_loss(self.critic(feat), feat[:-1], returns.detach())).mean()

    def critic_loss(self, value_dist: TwoHot, feat: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Two-hot cross-entropy to R^λ plus ``slow_reg`` × cross-entropy to the slow critic's value."""
        online = TwoHot(value_dist.logits[:-1], value_dist.bins)
        with torch.no_grad():
            slow = self.critic.slow_value(feat)
        return online.loss(target) + self.critic.cfg.slow_reg * online.loss(slow)
