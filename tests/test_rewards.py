"""DreamSmooth kernels against hand-computed sequences, and their use in the training loop."""

import math

import numpy as np
import pytest

from dreamscope.rewards import smooth_rewards

SPARSE = np.array([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 10.0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0])


def test_uniform_window_spreads_a_spike_evenly():
    out = smooth_rewards(SPARSE, "uniform", delta=9)
    expected = np.zeros_like(SPARSE)
    expected[6:15] = 10.0 / 9
    assert np.allclose(out, expected, atol=1e-6)


def test_gaussian_kernel_values():
    out = smooth_rewards(SPARSE, "gaussian", sigma=3.0)
    weights = np.exp(-0.5 * (np.arange(-9, 10) / 3.0) ** 2)
    weights /= weights.sum()
    assert out[10] == pytest.approx(10 * weights[9], rel=1e-6)
    assert out[13] == pytest.approx(10 * weights[12], rel=1e-6)
    assert out[10] == pytest.approx(10 / (3 * math.sqrt(2 * math.pi)), rel=0.01)
    assert out.sum() == pytest.approx(10.0, rel=1e-5)  # spike far from the ends: mass conserved


def test_ema_is_causal_recursion():
    out = smooth_rewards(np.array([1.0, 0.0, 0.0, 3.0]), "ema", alpha=0.5)
    # r~0 = .5*1 + .5*1 = 1; r~1 = .5; r~2 = .25; r~3 = .5*3 + .5*.25 = 1.625
    assert np.allclose(out, [1.0, 0.5, 0.25, 1.625])


def test_edges_are_clipped_to_the_episode():
    out = smooth_rewards(np.array([0.0, 0.0, 9.0]), "uniform", delta=3)
    # last index: mean(r1, r2, r2) = 6; middle: mean(r0, r1, r2) = 3
    assert np.allclose(out, [0.0, 3.0, 6.0])


def test_unknown_kind_is_refused():
    with pytest.raises(ValueError, match="accepted: none, gaussian, uniform, ema"):
        smooth_rewards(SPARSE, "box")
