"""ActorSignals: the same numbers as the agent's own signals, on the same batch, without touching the backward."""

import json
import math
import textwrap

import pytest
import torch

import dreamscope.instrument as instrument
from dreamscope.agent.agent import Agent
from dreamscope.agent.world_model import Latent
from dreamscope.config import Config, apply_preset
from dreamscope.diagnostics.signals import GradientSignals, policy_metrics, return_metrics
from dreamscope.errors import DreamscopeError
from dreamscope.instrument import ActorSignals
from dreamscope.metrics import GAUSSIAN_ENTROPY_UNIT


def batch(B=3, T=8, obs_dim=5, action_dim=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = {"obs": torch.randn(B, T, obs_dim, generator=g), "prev_action": torch.rand(B, T, action_dim, generator=g) * 2 - 1,
           "reward": torch.randn(B, T, generator=g), "is_first": torch.zeros(B, T, dtype=torch.bool),
           "is_terminal": torch.zeros(B, T, dtype=torch.bool)}
    out["is_first"][:, 0] = True
    return out


def agent_update(dist: str):
    """The pieces of Agent.train_step up to the actor's backward, for one batch."""
    torch.manual_seed(0)
    cfg = apply_preset(Config(), "tiny")
    cfg.actor.dist, cfg.actor.entropy_scale = dist, 3e-3
    agent = Agent(cfg, obs_dim=5, action_dim=2)
    b = batch()
    _, post, _, _ = agent.wm.loss(b)
    start = Latent(post.deter.reshape(-1, post.deter.shape[-1]), post.stoch.reshape(-1, *post.stoch.shape[2:])).detach()
    imag = agent.ac.imagine(agent.wm, start, 1.0 - b["is_terminal"].float().reshape(-1))
    return agent, imag, agent.ac.loss(imag)


@pytest.mark.parametrize("dist", ["tanh_normal", "bounded_normal"])
def test_metrics_equal_the_agents_own_and_backward_still_works(tmp_path, dist):
    agent, imag, out = agent_update(dist)
    params = agent.actor_params
    reference_grads = torch.autograd.grad(out.actor_loss, params, retain_graph=True)
    expected = GradientSignals().measure(out.pg_loss, out.ent_loss, params, out.dist.std)
    torch.manual_seed(7)
    expected.update(policy_metrics(out.dist, imag.action[:-1], out.logp, out.entropy))
    rn = agent.ac.retnorm
    expected.update(return_metrics(out.returns, out.value[:-1], out.adv, out.adv_normed, rn.lo, rn.hi))

    bounds = {"logstd_bounds": (-5, 2)} if dist == "tanh_normal" else {"std_bounds": (0.1, 1.0)}
    signals = ActorSignals(tmp_path / "run", action_dim=2, dist=dist, eta=3e-3, every=1, **bounds)
    torch.manual_seed(7)
    got = signals.log(0, actor_params=agent.ac.actor.parameters(), mean=out.dist.mean, std=out.dist.std,
                      actions=imag.action[:-1], advantages=out.adv_normed, raw_advantages=out.adv,
                      returns=out.returns, values=out.value[:-1], return_lo=rn.lo, return_hi=rn.hi,
                      logprobs=out.logp, entropy=out.entropy, pg_loss=out.pg_loss, ent_loss=out.ent_loss)
    rng_after = torch.rand(1)
    torch.manual_seed(7)
    assert torch.equal(rng_after, torch.rand(1))  # the caller's random stream was not consumed
    assert set(expected) <= set(got)
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-6, abs=1e-9), key
    assert got["actor/logstd_push_ent"] == pytest.approx(-3e-3 * imag.weight[:-1].mean().item(), rel=1e-5)

    # Nothing leaked into .grad, and the user's backward runs on the retained graph as before.
    assert all(p.grad is None for p in params)
    out.actor_loss.backward()
    for p, g in zip(params, reference_grads):
        torch.testing.assert_close(p.grad, g, rtol=0, atol=0)

    line = json.loads((tmp_path / "run" / "metrics.jsonl").read_text())
    assert line["step"] == 0 and line["policy/entropy"] == pytest.approx(expected["policy/entropy"])
    meta = json.loads((tmp_path / "run" / "meta.json").read_text())
    assert meta["implementation"] == "instrumented" and meta["dist"] == dist and meta["action_dim"] == 2
    assert meta["std_min"] == pytest.approx(out.dist.std_min) and meta["std_max"] == pytest.approx(out.dist.std_max)
    assert meta["entropy_max"] == pytest.approx(out.dist.entropy_ceiling()) and meta["eta"] == 3e-3


def toy_step(actor, eta=3e-3):
    mean, raw = actor(torch.randn(16, 6)).chunk(2, -1)
    std = torch.exp(-5 + 3.5 * (torch.tanh(raw) + 1))
    x = (mean + std * torch.randn_like(std)).detach()
    normal = torch.distributions.Normal(mean, std)
    logp, ent = normal.log_prob(x).sum(-1), normal.entropy().sum(-1)
    adv = -(torch.tanh(x) - 0.5).pow(2).sum(-1)
    return dict(mean=mean, std=std, actions=torch.tanh(x), advantages=adv, logprobs=logp, entropy=ent,
                pg_loss=-(logp * adv).mean(), ent_loss=-(eta * ent).mean())


def test_every_is_honoured_and_an_existing_log_is_not_overwritten(tmp_path):
    torch.manual_seed(0)
    actor = torch.nn.Linear(6, 6)
    signals = ActorSignals(tmp_path, action_dim=3, every=3)
    measured = [signals.log(100 + i, actor_params=actor.parameters(), **toy_step(actor)) is not None for i in range(7)]
    assert measured == [True, False, False, True, False, False, True]
    steps = [json.loads(line)["step"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert steps == [100, 103, 106]

    before = (tmp_path / "metrics.jsonl").read_text()
    with pytest.raises(DreamscopeError, match="metrics.jsonl already exists; pass resume=True"):
        ActorSignals(tmp_path, action_dim=3)
    assert (tmp_path / "metrics.jsonl").read_text() == before
    with pytest.raises(DreamscopeError, match="action_dim=3.*action_dim=4"):
        ActorSignals(tmp_path, action_dim=4, resume=True)
    resumed = ActorSignals(tmp_path, action_dim=3, every=1, resume=True)
    resumed.log(107, actor_params=actor.parameters(), **toy_step(actor))
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 4 and json.loads(lines[-1])["step"] == 107


def test_partial_inputs_and_bad_arguments(tmp_path):
    torch.manual_seed(0)
    actor = torch.nn.Linear(6, 6)
    step = toy_step(actor)
    signals = ActorSignals(tmp_path / "a", action_dim=3, every=1)
    got = signals.log(0, mean=step["mean"], std=step["std"])  # only the distribution: policy/* only
    assert "policy/std_mean" in got and "policy/saturation_frac" in got
    assert not any(k.startswith(("actor/", "adv", "return/")) for k in got) and "policy/logprob_mean" not in got
    got = signals.log(1, actor_params=actor.parameters(), mean=step["mean"], std=step["std"], pg_loss=step["pg_loss"])
    assert got["actor/ent_grad_norm"] == 0.0 and got["actor/pg_grad_norm"] > 0  # no ent_loss: η = 0
    with pytest.raises(DreamscopeError, match="before loss.backward"):
        signals.log(2, actor_params=actor.parameters(), mean=step["mean"], std=step["std"].detach(),
                    pg_loss=step["pg_loss"].detach(), ent_loss=step["ent_loss"])
    with pytest.raises(DreamscopeError, match="action dimension \\(3\\) last"):
        signals.log(3, mean=step["mean"][:, :2], std=step["std"][:, :2])
    for kwargs, message in (({"dist": "gaussian"}, "accepted: tanh_normal, bounded_normal"),
                            ({"every": 0}, "every=0"), ({"std_bounds": (1.0, 0.1)}, "lower < upper"),
                            ({"logstd_bounds": (-5, 2), "std_bounds": (0.1, 1)}, "not both"),
                            ({"return_limit": 0.0}, "return_limit=0.0"), ({"return_norm": ""}, "return_norm=''")):
        with pytest.raises(DreamscopeError, match=message):
            ActorSignals(tmp_path / "b", action_dim=3, **kwargs)


def test_docstring_example_runs_and_diagnose_reads_it(tmp_path):
    code = textwrap.dedent(instrument.__doc__.split("::\n", 1)[1].split("\nWhat to pass", 1)[0])
    integration = [line for line in code.splitlines() if line.rstrip().endswith("# <-")]
    assert 3 <= len(integration) <= 5  # the integration is at most five lines
    torch.manual_seed(0)
    exec(compile(code, "instrument-docstring", "exec"), {"run_dir": str(tmp_path / "toy")})
    lines = [json.loads(line) for line in (tmp_path / "toy" / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [0, 10, 20]
    assert all(math.isfinite(line["actor/logstd_push_ent"]) for line in lines)

    from dreamscope.diagnostics.doctor import diagnose
    from dreamscope.logs import read_run

    run = read_run(tmp_path / "toy")
    assert run.meta["implementation"] == "instrumented" and run.meta["action_dim"] == 4
    assert {"policy/entropy", "policy/std_at_upper_frac", "actor/logstd_push_pg"} <= set(run.series)
    assert diagnose(run).answer in ("cause", "symptom", "expected", "healthy", "undecided")


@pytest.mark.parametrize("dist, bounds", [("tanh_normal", {"logstd_bounds": (-5, 2)}),
                                          ("bounded_normal", {"std_bounds": (0.1, 1.0)})])
def test_std_bounds_apply_to_what_is_measured(tmp_path, dist, bounds):
    """A σ a rounding past its bound is measured at the bound; one clearly past it is refused, naming
    the σ range and the bounds, since every at-the-bound fraction would then be wrong."""
    signals = ActorSignals(tmp_path, action_dim=2, dist=dist, every=1, **bounds)
    lo, hi = math.log(signals.std_min), math.log(signals.std_max)
    mean = torch.zeros(4, 2)
    std = torch.tensor([signals.std_max * (1 + 1e-5), signals.std_min * (1 - 1e-5)]).expand(4, 2)
    got = signals.log(0, mean=mean, std=std)
    assert got["policy/std_max"] == pytest.approx(signals.std_max, rel=1e-6)
    assert got["policy/std_min"] == pytest.approx(signals.std_min, rel=1e-6)
    assert got["policy/std_at_upper_frac"] == 0.5 and got["policy/std_at_lower_frac"] == 0.5
    assert got["policy/entropy"] == pytest.approx(2 * GAUSSIAN_ENTROPY_UNIT + lo + hi, rel=1e-5)  # at one bound each
    for factor in (1.5, 0.5):
        with pytest.raises(DreamscopeError, match=r"std spans .* outside the bounds"):
            signals.log(1, mean=mean, std=torch.full((4, 2), (signals.std_max if factor > 1 else signals.std_min) * factor))
