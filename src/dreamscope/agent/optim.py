"""LaProp with adaptive gradient clipping and linear warm-up, as the official DreamerV3 optimiser."""

from __future__ import annotations

import torch

from dreamscope.config import OptimConfig


class LaProp(torch.optim.Optimizer):
    """LaProp (Ziyin et al. 2020): normalise the gradient by its RMS first, then apply momentum.

    Unlike Adam, the momentum averages already-normalised steps, which makes the update
    robust to the tiny ``eps`` (1e-20) the official config uses.
    """

    def __init__(self, params, lr: float, betas=(0.9, 0.999), eps: float = 1e-20):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps))

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            params = [p for p in group["params"] if p.grad is not None]
            if not params:
                continue
            beta1, beta2 = group["betas"]
            grads = [p.grad for p in params]
            states = [self.state[p] for p in params]
            for p, st in zip(params, states):
                if not st:
                    st["step"] = 0
                    st["nu"] = torch.zeros_like(p)
                    st["mu"] = torch.zeros_like(p)
                st["step"] += 1
            step = states[0]["step"]
            nus = [st["nu"] for st in states]
            mus = [st["mu"] for st in states]
            torch._foreach_mul_(nus, beta2)
            torch._foreach_addcmul_(nus, grads, grads, value=1 - beta2)
            denom = torch._foreach_div(nus, 1 - beta2**step)
            torch._foreach_sqrt_(denom)
            torch._foreach_add_(denom, group["eps"])
            torch._foreach_mul_(mus, beta1)
            torch._foreach_addcdiv_(mus, grads, denom, value=1 - beta1)
            torch._foreach_add_(params, mus, alpha=-group["lr"] / (1 - beta1**step))


def adaptive_clip_(params: list[torch.Tensor], ratio: float, floor: float = 1e-3) -> None:
    """Scale each gradient so that ‖g‖ ≤ ratio · max(‖p‖, floor), per parameter tensor."""
    params = [p for p in params if p.grad is not None]
    if not params:
        return
    grads = [p.grad for p in params]
    g_norms = torch._foreach_norm(grads)
    p_norms = torch._foreach_norm([p.detach() for p in params])
    for g, gn, pn in zip(grads, g_norms, p_norms):
        limit = ratio * pn.clamp_min(floor)
        g.mul_(torch.clamp(limit / gn.clamp_min(1e-30), max=1.0))


class Optimizer:
    """One optimiser over all modules, with clipping and warm-up in one place."""

    def __init__(self, params: list[torch.nn.Parameter], cfg: OptimConfig):
        self.cfg = cfg
        self.params = [p for p in params if p.requires_grad]
        betas = (cfg.beta1, cfg.beta2)
        if cfg.optimizer == "laprop":
            self.opt = LaProp(self.params, cfg.lr, betas, cfg.eps)
        else:
            self.opt = torch.optim.Adam(self.params, cfg.lr, betas, eps=max(cfg.eps, 1e-8))
        self.updates = 0

    def step(self) -> dict[str, torch.Tensor]:
        """Clip, warm up, step; returns the pre-clip global gradient norm."""
        grads = [p.grad for p in self.params if p.grad is not None]
        norm = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))) if grads else torch.zeros(())
        if self.cfg.agc > 0:
            adaptive_clip_(self.params, self.cfg.agc)
        if self.cfg.clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(self.params, self.cfg.clip_norm)
        self.updates += 1
        scale = min(1.0, self.updates / self.cfg.warmup) if self.cfg.warmup > 0 else 1.0
        for group in self.opt.param_groups:
            group["lr"] = self.cfg.lr * scale
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        return {"loss/grad_norm": norm}

    def state_dict(self) -> dict:
        return {"opt": self.opt.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.opt.load_state_dict(state["opt"])
        self.updates = int(state["updates"])
