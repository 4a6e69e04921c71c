"""Entropy schedules and the target-entropy controller."""

import math

import pytest
import torch

from dreamscope.agent.entropy import EntropyControl, differentiable_entropy, schedule_value
from dreamscope.config import ActorConfig
from dreamscope.dists import TanhNormal
from dreamscope.errors import DreamscopeError


@pytest.mark.parametrize("kind,step,expected", [
    ("linear", 0, 1e-2), ("linear", 50, 5.05e-3), ("linear", 100, 1e-4), ("linear", 500, 1e-4),
    ("exp", 50, 1e-3), ("exp", 25, 1e-2 * 0.01 ** 0.25),
    ("cosine", 50, 5.05e-3), ("cosine", 25, 1e-4 + (1e-2 - 1e-4) * 0.5 * (1 + math.cos(math.pi / 4))),
])
def test_schedules_at_chosen_steps(kind, step, expected):
    assert schedule_value(kind, 1e-2, 1e-4, 100, step) == pytest.approx(expected, rel=1e-9)


def test_schedule_is_applied_per_update():
    control = EntropyControl(ActorConfig(entropy_control="linear", entropy_scale=1e-2, entropy_scale_end=0.0,
                                         entropy_schedule_updates=10), action_dim=2)
    dist = TanhNormal(torch.zeros(3, 2), torch.zeros(3, 2))
    etas = [control.update(dist)["entropy/eta"] for _ in range(12)]
    assert etas[0] == pytest.approx(1e-2) and etas[5] == pytest.approx(5e-3) and etas[-1] == 0.0


def test_bad_schedule_settings_are_refused():
    with pytest.raises(DreamscopeError, match="entropy_scale_end > 0"):
        EntropyControl(ActorConfig(entropy_control="exp", entropy_scale_end=0.0), action_dim=2)


def test_action_space_entropy_gradient_matches_its_monte_carlo_value():
    torch.manual_seed(0)
    dist = TanhNormal(torch.full((20000, 1), 0.3), torch.full((20000, 1), 0.4), std_bound="logstd_clamp")
    one_sample = differentiable_entropy(dist, "action").mean()
    assert float(one_sample) == pytest.approx(float(dist.action_entropy(64).mean()), abs=0.02)
    assert float(differentiable_entropy(dist, "distribution").mean()) == pytest.approx(float(dist.entropy().mean()))


@pytest.mark.parametrize("level", [0.5, 0.8])
def test_target_controller_drives_action_entropy_to_its_target(level):
    """A task loss pulls σ to zero, the bonus pushes it up; the controller finds the η that balances them."""
    torch.manual_seed(0)
    cfg = ActorConfig(dist="tanh_normal", std_bound="logstd_clamp", entropy_control="target", entropy_space="action",
                      entropy_scale=0.1, entropy_target_level=level, entropy_controller_lr=0.05)
    control = EntropyControl(cfg, action_dim=2)
    mean = torch.zeros(2, requires_grad=True)
    std_raw = torch.zeros(2, requires_grad=True)
    opt = torch.optim.Adam([mean, std_raw], lr=0.02)
    for _ in range(3000):
        dist = TanhNormal(mean.expand(256, 2), std_raw.expand(256, 2), "logstd_clamp", cfg.logstd_min, cfg.logstd_max)
        x = dist.mean + dist.std * torch.randn(256, 2)
        task = ((torch.tanh(x) - 0.2) ** 2).sum(-1).mean()
        loss = task - control.eta * differentiable_entropy(dist, "action").mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        logged = control.update(dist)
    final = float(TanhNormal(mean.detach().expand(1, 2), std_raw.detach().expand(1, 2), "logstd_clamp").action_entropy(100000))
    assert final == pytest.approx(logged["entropy/target"], abs=0.1)
