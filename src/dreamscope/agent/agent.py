"""The DreamerV3 agent: acting with a carried latent state, and one training update."""

from __future__ import annotations

import time

import torch
from torch import nn

from dreamscope.agent.behavior import ActorCritic, sample_action
from dreamscope.agent.optim import Optimizer
from dreamscope.agent.precision import compute_dtype
from dreamscope.agent.world_model import Latent, WorldModel
from dreamscope.config import Config


class Agent(nn.Module):
    def __init__(self, cfg: Config, obs_dim: int, action_dim: int):
        super().__init__()
        self.cfg = cfg
        self.obs_dim, self.action_dim = obs_dim, action_dim
        self.wm = WorldModel(cfg.world_model, obs_dim, action_dim)
        self.ac = ActorCritic(cfg.behavior, cfg.actor, cfg.critic, self.wm.feat_dim, action_dim)
        self.model_params = list(self.wm.parameters()) + list(self.ac.critic.net.parameters())
        self.actor_params = list(self.ac.actor.parameters())
        self.opt = Optimizer(self.model_params + self.actor_params, cfg.optim)
        self.updates = 0
        if cfg.run.compile:  # fuse the small ops: the filter step (64 per update), the whole 15-step
            # rollout, and the actor-critic losses with their backward (1-3 minutes of compiling first)
            self.wm.rssm.filter_step = torch.compile(self.wm.rssm.filter_step, dynamic=False)
            self.ac.imagine = torch.compile(self.ac.imagine, dynamic=False)
            self.ac.loss = torch.compile(self.ac.loss, dynamic=False)

    # ----------------------------------------------------------------------------- acting
    def initial_state(self, batch: int) -> tuple[Latent, torch.Tensor]:
        device = next(self.parameters()).device
        return self.wm.rssm.initial(batch, device), torch.zeros(batch, self.action_dim, device=device)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, is_first: torch.Tensor, carry, explore: bool = True):
        """One policy step per env; ``carry`` is (latent, previous action), reset where ``is_first``."""
        latent, prev_action = carry
        latent, _ = self.wm.rssm.obs_step(latent, prev_action, self.wm.embed(obs), is_first)
        dist = self.ac.actor(latent.feat())
        action = sample_action(dist)[0] if explore else dist.mode().clamp(-1, 1)
        return action, (latent, action)

    # ----------------------------------------------------------------------------- learning
    def train_step(self, batch: dict[str, torch.Tensor], measure=None) -> dict[str, float]:
        """One update of world model, actor and critic. ``measure``, when given, is the training
        layer's measurer (:class:`dreamscope.diagnostics.signals.UpdateSignals`): it reads the
        losses before the backward pass and the update's outputs after it, so that the agent
        never imports the measurement."""
        self.train()
        device = batch["obs"].device.type
        dtype = compute_dtype(self.cfg.run.precision, device, self.cfg.world_model.deter)
        # Forward passes in ``dtype`` (matrix products; the distributions, losses, return normaliser
        # and two-hot targets stay float32); backward and the optimiser on the float32 weights.
        with torch.autocast(device, dtype=dtype, enabled=dtype != torch.float32):
            wm_loss, post, wm_metrics, reward_dist = self.wm.loss(batch)
            start = Latent(post.deter.reshape(-1, post.deter.shape[-1]),
                           post.stoch.reshape(-1, *post.stoch.shape[2:])).detach()
            start_cont = 1.0 - batch["is_terminal"].float().reshape(-1)
            imag = self.ac.imagine(self.wm, start, start_cont)
            out = self.ac.loss(imag)
            critic_loss = out.critic_loss
            replay_scale = self.cfg.critic.replay_loss
            if replay_scale > 0:
                boot = out.returns[0].reshape(batch["reward"].shape)  # the imagined return from each replayed row
                replay_critic = self.ac.replay_critic_loss(post.feat(), batch, boot)
                critic_loss = critic_loss + replay_scale * replay_critic
        metrics: dict[str, float] = {}
        signal_seconds = 0.0
        if measure is not None:
            t0 = time.perf_counter()
            metrics.update(measure.before_backward(out, self.actor_params))
            signal_seconds = time.perf_counter() - t0
        # The actor loss only updates the actor, also when it backpropagates through the dynamics.
        (wm_loss + critic_loss).backward(inputs=self.model_params)
        out.actor_loss.backward(inputs=self.actor_params)
        opt_metrics = self.opt.step()
        self.ac.critic.update_slow()
        self.updates += 1
        metrics.update(_to_host({"loss/model": wm_loss, "loss/actor": out.actor_loss, "loss/critic": out.critic_loss,
                                 "loss/policy_gradient": out.pg_loss, "loss/entropy": out.ent_loss,
                                 **({"loss/critic_replay": replay_critic} if replay_scale > 0 else {}),
                                 **wm_metrics, **opt_metrics}))
        metrics.update(self.ac.entropy_control.update(out.dist))
        if measure is not None:
            t0 = time.perf_counter()
            metrics.update(measure.after_step(out, batch, reward_dist, self.ac.retnorm))
            signal_seconds += time.perf_counter() - t0
            metrics["perf/signals_seconds"] = signal_seconds
        return metrics


def _to_host(scalars: dict[str, torch.Tensor]) -> dict[str, float]:
    """Scalar tensors as floats in one device-to-host copy: a ``float()`` each would wait on the GPU once per metric."""
    values = torch.stack([v.detach().float().reshape(()) for v in scalars.values()]).tolist()
    return dict(zip(scalars, values))
