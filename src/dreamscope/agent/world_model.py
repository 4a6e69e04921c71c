"""DreamerV3 world model for vector observations: RSSM with block GRU, encoder, decoder, heads."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from dreamscope.agent.nets import BlockLinear, Dense, RMSNorm, mlp, output_layer
from dreamscope.config import WorldModelConfig
from dreamscope.dists import TwoHot, UnimixCategorical, symexp_bins, symlog


@dataclass
class Latent:
    """RSSM state: deterministic ``deter`` (..., D) and one-hot ``stoch`` (..., S, C)."""

    deter: torch.Tensor
    stoch: torch.Tensor

    def feat(self) -> torch.Tensor:
        return torch.cat([self.deter, self.stoch.flatten(-2).to(self.deter.dtype)], -1)

    def detach(self) -> "Latent":
        return Latent(self.deter.detach(), self.stoch.detach())


class RSSM(nn.Module):
    """Recurrent state-space model with discrete latents, as in the official DreamerV3.

    The deterministic path is a GRU whose matrices are block-diagonal over ``blocks`` groups;
    each group sees its own slice of the state plus the embedded (state, stoch, action).
    """

    def __init__(self, cfg: WorldModelConfig, action_dim: int, embed_dim: int):
        super().__init__()
        self.cfg = cfg
        d, h, g = cfg.deter, cfg.hidden, cfg.blocks
        self.stoch_flat = cfg.stoch * cfg.classes
        self.in_deter = Dense(d, h)
        self.in_stoch = Dense(self.stoch_flat, h)
        self.in_action = Dense(action_dim, h)
        # Each group's input is [its slice of deter, the shared embedding x]; the shared part
        # of the block matrix is one dense map, the per-group part a block-diagonal one.
        self.hid_shared = nn.Linear(3 * h, d, bias=False)
        self.hid_block = BlockLinear(d, d, g)
        self.hid_norm = nn.Sequential(RMSNorm(d, eps=1e-4), nn.SiLU())
        self.gru = BlockLinear(d, 3 * d, g)
        self.prior_net = nn.Sequential(mlp(d, h, 2), nn.Linear(h, self.stoch_flat))
        self.post_net = nn.Sequential(mlp(d + embed_dim, h, 1), nn.Linear(h, self.stoch_flat))

    def initial(self, batch: int, device: torch.device) -> Latent:
        return Latent(torch.zeros(batch, self.cfg.deter, device=device),
                      torch.zeros(batch, self.cfg.stoch, self.cfg.classes, device=device))

    def _dist(self, logits: torch.Tensor) -> UnimixCategorical:
        return UnimixCategorical(logits.reshape(*logits.shape[:-1], self.cfg.stoch, self.cfg.classes), self.cfg.unimix)

    def embed_action(self, action: torch.Tensor) -> torch.Tensor:
        """The action's input to the core (scaled into the unit box first); it depends on nothing
        recurrent, so ``observe`` computes it for a whole sequence in one call."""
        return self.in_action(action / action.abs().clamp_min(1.0).detach())

    def embed_obs(self, embed: torch.Tensor) -> torch.Tensor:
        """The observation's share of the posterior's first layer, whose input is [deter, embed]:
        that layer's matrix split in two, so that a sequence's share is one matrix product."""
        return F.linear(embed, self.post_net[0][0][0].weight[:, self.cfg.deter:])

    def core(self, deter: torch.Tensor, stoch: torch.Tensor, action_in: torch.Tensor) -> torch.Tensor:
        """One deterministic step: deter_t = GRU(deter_{t-1}, stoch_{t-1}, action_{t-1}), the action
        as ``embed_action`` gives it."""
        g = self.cfg.blocks
        stoch = stoch.flatten(-2).to(deter.dtype)  # sampled in float32
        x = torch.cat([self.in_deter(deter), self.in_stoch(stoch), action_in.to(deter.dtype)], -1)
        x = self.hid_norm(self.hid_block(deter) + self.hid_shared(x))
        # The gates in the block layout (g, N, 3·d/g), each group's [reset, cand, update]: the
        # state joins them there and only the new state is laid out back to (N, d).
        reset, cand, update = self.gru.grouped(x).chunk(3, -1)
        cand = torch.tanh(torch.sigmoid(reset) * cand)
        update = torch.sigmoid(update - 1.0)
        prev = deter.reshape(-1, g, deter.shape[-1] // g).transpose(0, 1)
        new = update * cand + (1.0 - update) * prev
        return new.transpose(0, 1).reshape(deter.shape).to(deter.dtype)

    def prior(self, deter: torch.Tensor) -> UnimixCategorical:
        return self._dist(self.prior_net(deter))

    def img_step(self, state: Latent, action: torch.Tensor) -> Latent:
        deter = self.core(state.deter, state.stoch, self.embed_action(action))
        return Latent(deter, self.prior(deter).sample())

    def filter_step(self, state: Latent, keep: torch.Tensor, action_in: torch.Tensor, obs_in: torch.Tensor):
        """Posterior step: the state is zeroed where ``keep`` (N, 1) is 0 (an episode's first step);
        ``action_in`` and ``obs_in`` come from ``embed_action`` and ``embed_obs``."""
        deter = self.core(state.deter * keep, state.stoch * keep.unsqueeze(-1), action_in)
        first = self.post_net[0][0]  # Linear -> RMSNorm -> SiLU on [deter, embed]
        hidden = F.linear(deter, first[0].weight[:, : self.cfg.deter]) + obs_in
        post = self._dist(self.post_net[1](first[2](first[1](hidden))))
        return Latent(deter, post.sample()), post

    def obs_step(self, state: Latent, action: torch.Tensor, embed: torch.Tensor, is_first: torch.Tensor):
        """Posterior step for acting: resets the state where ``is_first``."""
        keep = (~is_first).float().unsqueeze(-1)
        return self.filter_step(state, keep, self.embed_action(action * keep), self.embed_obs(embed))

    def observe(self, embed: torch.Tensor, prev_action: torch.Tensor, is_first: torch.Tensor, state: Latent):
        """Filter a (B, T) sequence; returns posterior latents (B, T, ...) and both logits. What
        does not depend on the recurrent state (the action and observation inputs) is computed
        for all T steps at once."""
        keep = (~is_first).float().unsqueeze(-1)
        action_in, obs_in = self.embed_action(prev_action * keep), self.embed_obs(embed)
        deters, stochs, post_logits = [], [], []
        for t in range(embed.shape[1]):
            state, post = self.filter_step(state, keep[:, t], action_in[:, t], obs_in[:, t])
            deters.append(state.deter)
            stochs.append(state.stoch)
            post_logits.append(post.logits)
        deter = torch.stack(deters, 1)
        post = Latent(deter, torch.stack(stochs, 1))
        prior_logits = self.prior(deter).logits  # prior depends on deter only: one batched call
        return post, torch.stack(post_logits, 1), prior_logits


def kl_categorical(logits_p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
    """KL(p || q) summed over latents; inputs are log-probabilities (..., S, C)."""
    return (logits_p.exp() * (logits_p - logits_q)).sum((-2, -1))


#: Rows of a replayed window the posterior filters before its fit is measured: the window starts
#: from a zero state, and its first rows say how fast the model locks on, not what it can see.
#: A window shorter than four times this skips a quarter of its rows instead.
POSTERIOR_BURN_IN = 8


def _dim_variance(target: torch.Tensor) -> torch.Tensor:
    """Each observation dimension's variance over every row of a (B, T, D) batch."""
    return target.detach().flatten(0, -2).var(0, correction=0)


def obs_explained_variance(rec: torch.Tensor, batch_var: torch.Tensor) -> torch.Tensor:
    """1 − (mean summed squared reconstruction error) / (summed per-dimension variance of the
    target over the batch): the share of what the observations vary by that the latent carries.
    0 is a decoder that predicts the batch mean, 1 a perfect one; a policy can only learn from
    what is above 0."""
    return 1.0 - rec.mean() / batch_var.sum().clamp_min(1e-12)


class WorldModel(nn.Module):
    def __init__(self, cfg: WorldModelConfig, obs_dim: int, action_dim: int):
        super().__init__()
        self.cfg = cfg
        self.encoder = mlp(obs_dim, cfg.units, cfg.enc_layers)
        self.rssm = RSSM(cfg, action_dim, cfg.units)
        feat = cfg.deter + cfg.stoch * cfg.classes
        self.feat_dim = feat
        self.decoder = nn.Sequential(mlp(feat, cfg.units, cfg.dec_layers), nn.Linear(cfg.units, obs_dim))
        self.reward_head = nn.Sequential(
            mlp(feat, cfg.units, cfg.head_layers),
            output_layer(cfg.units, cfg.reward_bins, 0.0 if cfg.zero_init_heads else 1.0))
        self.cont_head = nn.Sequential(mlp(feat, cfg.units, cfg.head_layers), nn.Linear(cfg.units, 1))
        self.register_buffer("reward_bins", symexp_bins(cfg.reward_bins), persistent=False)
        if cfg.rec_norm == "std":  # only then, so that checkpoints of the official loss load as before
            self.register_buffer("obs_var", torch.zeros(obs_dim))

    def embed(self, obs: torch.Tensor) -> torch.Tensor:
        return self.encoder(symlog(obs))

    def reward(self, feat: torch.Tensor) -> TwoHot:
        return TwoHot(self.reward_head(feat), self.reward_bins)

    def cont_logits(self, feat: torch.Tensor) -> torch.Tensor:
        return self.cont_head(feat).squeeze(-1).float()

    @torch.no_grad()
    def rec_weights(self, batch_var: torch.Tensor) -> torch.Tensor:
        """``rec_norm=std``: each observation dimension's squared error weighed by 1 / its running
        (EMA 0.01) variance in symlog space, floored at 0.01, the weights scaled to average 1. The
        official unit weights let a dimension that varies little (air hockey's y coordinates, 0.04)
        stay blurred at almost no cost; these keep the loss's total weight and spread it evenly.
        The first batch sets the variances (chosen on the device: no host sync in the train step)."""
        self.obs_var.copy_(torch.where(self.obs_var.any(), self.obs_var.lerp(batch_var, 0.01), batch_var))
        weights = 1.0 / self.obs_var.clamp_min(0.01)
        return weights / weights.mean()

    def loss(self, batch: dict[str, torch.Tensor]):
        """World-model loss on a replay batch (B, T); returns (scalar loss, posterior, metrics, reward preds)."""
        obs = batch["obs"]
        start = self.rssm.initial(obs.shape[0], obs.device)
        post, post_logits, prior_logits = self.rssm.observe(self.embed(obs), batch["prev_action"], batch["is_first"], start)
        feat = post.feat()
        target = symlog(obs)
        sq_err = (self.decoder(feat) - target) ** 2
        rec = sq_err.sum(-1)
        reward_dist = self.reward(feat)
        rew = reward_dist.loss(batch["reward"])
        terminal = batch["is_terminal"].float()
        con = F.binary_cross_entropy_with_logits(self.cont_logits(feat), 1.0 - terminal, reduction="none")
        # Terminal rows can be 1 in 250 (a goal ends an air-hockey episode): weighting them up
        # makes the latent carry what ends an episode, which the official unweighted loss may not.
        con = con * (1.0 + (self.cfg.terminal_weight - 1.0) * terminal)
        free = self.cfg.free_nats
        dyn = kl_categorical(post_logits.detach(), prior_logits).clamp_min(free)
        rep = kl_categorical(post_logits, prior_logits.detach()).clamp_min(free)
        fit = rec if self.cfg.rec_norm == "none" else (sq_err * self.rec_weights(_dim_variance(target))).sum(-1)
        total = fit + rew + con + self.cfg.kl_dyn_scale * dyn + self.cfg.kl_rep_scale * rep
        burn_in = min(POSTERIOR_BURN_IN, obs.shape[1] // 4)
        fit_var = _dim_variance(target[:, burn_in:])
        metrics = {"loss/rec": rec.mean(), "loss/rew": rew.mean(), "loss/con": con.mean(),
                   "loss/dyn": dyn.mean(), "loss/rep": rep.mean(),
                   "model/obs_explained_var": obs_explained_variance(rec[:, burn_in:].detach(), fit_var)}
        return total.mean(), post, metrics, reward_dist
