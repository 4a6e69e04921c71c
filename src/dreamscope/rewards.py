"""DreamSmooth (Lee et al., ICLR 2024): smooth each finished episode's rewards before replay.

A sparse reward whose exact step is hard to predict becomes a bump the reward head can
fit; the return over the episode is (almost) unchanged. Each kernel is a weighted sum over
nearby steps with weights summing to 1; indices beyond the episode are clipped to its ends:
  * gaussian: weights ∝ exp(−k²/2σ²) for |k| ≤ 3σ (σ = 3 by default);
  * uniform:  equal weights over a centred window of δ steps (δ = 9);
  * ema:      r̃_t = α·r_t + (1 − α)·r̃_{t−1}, r̃ before the start = r_0 (α = 0.33; causal).
The scores dreamscope logs are always the raw rewards.
"""

from __future__ import annotations

import numpy as np

KINDS = ("none", "gaussian", "uniform", "ema")


def _clipped_convolution(rewards: np.ndarray, offsets: np.ndarray, weights: np.ndarray) -> np.ndarray:
    t = np.arange(len(rewards))
    index = np.clip(t[:, None] + offsets[None, :], 0, len(rewards) - 1)
    return (rewards[index] * weights[None, :]).sum(1)


def smooth_rewards(rewards: np.ndarray, kind: str, sigma: float = 3.0, delta: int = 9, alpha: float = 0.33) -> np.ndarray:
    rewards = np.asarray(rewards, dtype=np.float64)
    if kind == "none" or len(rewards) == 0:
        return rewards.astype(np.float32)
    if kind == "gaussian":
        reach = int(np.ceil(3 * sigma))
        offsets = np.arange(-reach, reach + 1)
        weights = np.exp(-0.5 * (offsets / sigma) ** 2)
        out = _clipped_convolution(rewards, offsets, weights / weights.sum())
    elif kind == "uniform":
        offsets = np.arange(delta) - (delta - 1) // 2
        out = _clipped_convolution(rewards, offsets, np.full(delta, 1.0 / delta))
    elif kind == "ema":
        out = np.empty_like(rewards)
        previous = rewards[0]
        for t, r in enumerate(rewards):
            previous = alpha * r + (1 - alpha) * previous
            out[t] = previous
    else:
        raise ValueError(f"unknown reward smoothing {kind!r}; accepted: {', '.join(KINDS)}")
    return out.astype(np.float32)
