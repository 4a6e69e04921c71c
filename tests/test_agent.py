"""The agent's pieces against hand computations, and the whole update at a tiny size."""

import math

import pytest
import torch

from dreamscope.agent.agent import Agent
from dreamscope.agent.behavior import ActorCritic, ReturnNorm, lambda_return, replay_return
from dreamscope.agent.optim import LaProp, adaptive_clip_
from dreamscope.config import ActorConfig, BehaviorConfig, Config, CriticConfig, apply_preset
from dreamscope.diagnostics.signals import GradientSignals, UpdateSignals, explained_variance, reward_metrics
from dreamscope.dists import TanhNormal


def tiny_config(**overrides) -> Config:
    cfg = apply_preset(Config(), "tiny")
    for key, value in overrides.items():
        section, name = key.split("__")
        setattr(getattr(cfg, section), name, value)
    return cfg


def random_batch(B=3, T=8, obs_dim=5, action_dim=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    batch = {
        "obs": torch.randn(B, T, obs_dim, generator=g),
        "prev_action": torch.rand(B, T, action_dim, generator=g) * 2 - 1,
        "reward": torch.zeros(B, T),
        "is_first": torch.zeros(B, T, dtype=torch.bool),
        "is_terminal": torch.zeros(B, T, dtype=torch.bool),
    }
    batch["reward"][0, 3] = 10.0
    batch["is_first"][:, 0] = True
    batch["is_terminal"][1, -1] = True
    return batch


@pytest.mark.parametrize("dist", ["bounded_normal", "tanh_normal"])
@pytest.mark.parametrize("grad", ["reinforce", "backprop"])
def test_update_is_finite_and_measures_every_signal(dist, grad):
    torch.manual_seed(0)
    agent = Agent(tiny_config(actor__dist=dist, actor__grad=grad), obs_dim=5, action_dim=2)
    before = {n: p.detach().clone() for n, p in agent.named_parameters()}
    metrics = agent.train_step(random_batch(), measure=UpdateSignals())
    assert all(math.isfinite(v) for v in metrics.values()), metrics
    for key in ("policy/entropy", "policy/entropy_action", "policy/saturation_frac", "actor/logstd_push_ent",
                "actor/ent_to_pg_drift_ratio", "return/scale", "adv_norm/abs_mean", "value/explained_var",
                "reward/head_hit_rate", "reward/replay_nonzero_frac"):
        assert key in metrics
    assert metrics["reward/replay_nonzero_frac"] == pytest.approx(1 / 24)
    unchanged = {n for n, p in agent.named_parameters() if torch.equal(before[n], p.detach())}
    # Zero-initialised outputs pass no gradient to their hidden layers on the first step, and
    # the prior gets none while the KL is under the free nats; everything else must move.
    expected_still = ("wm.rssm.prior_net.", "wm.reward_head.0.", "ac.critic.net.0.", "ac.critic.slow.0.")
    assert unchanged and all(n.startswith(expected_still) for n in unchanged), unchanged


def test_zero_initialised_heads_predict_zero():
    agent = Agent(tiny_config(), obs_dim=5, action_dim=2)
    feat = torch.randn(7, agent.wm.feat_dim)
    assert torch.all(agent.wm.reward(feat).mean() == 0)
    assert torch.all(agent.ac.critic(feat).mean() == 0)


def test_act_resets_state_on_first_step():
    torch.manual_seed(0)
    agent = Agent(tiny_config(), obs_dim=5, action_dim=2)
    obs = torch.randn(2, 5)
    carry = agent.initial_state(2)
    _, carry = agent.act(obs, torch.tensor([True, True]), carry)
    latent, _ = carry
    fresh, _ = agent.wm.rssm.obs_step(*agent.initial_state(2), agent.wm.embed(obs), torch.tensor([True, True]))
    again, _ = agent.wm.rssm.obs_step(latent, torch.ones(2, 2), agent.wm.embed(obs), torch.tensor([True, False]))
    assert torch.allclose(again.deter[0], fresh.deter[0])
    assert not torch.allclose(again.deter[1], fresh.deter[1])


def test_lambda_return_matches_hand_computation():
    reward = torch.tensor([[0.0], [1.0], [0.0], [2.0]])
    disc = torch.tensor([[1.0], [0.9], [0.9], [0.0]])  # terminal at t=3
    value = torch.tensor([[0.5], [1.0], [3.0], [4.0]])
    lam = 0.5
    r2 = 2.0 + 0.0 * (0.5 * 4.0 + 0.5 * 4.0)
    r1 = 0.0 + 0.9 * (0.5 * 3.0 + 0.5 * r2)
    r0 = 1.0 + 0.9 * (0.5 * 1.0 + 0.5 * r1)
    expected = torch.tensor([[r0], [r1], [r2]])
    assert torch.allclose(lambda_return(reward, disc, value, lam), expected)


@pytest.mark.parametrize("terminal", [True, False])
def test_replay_return_stops_at_the_episode_end_by_hand(terminal):
    """γ = λ = 0.5; rows 0-2 are one episode, row 3 starts the next (row 0's is_first is the
    window's own start). A terminal end returns its reward only; a time-out bootstraps from the
    imagined return there; either way nothing of the next episode enters rows 0-1."""
    reward = torch.tensor([[0.0], [1.0], [2.0], [3.0], [4.0]])
    is_first = torch.tensor([[True], [False], [False], [True], [False]])
    is_terminal = torch.tensor([[False], [False], [terminal], [False], [False]])
    boot = torch.tensor([[10.0], [20.0], [30.0], [40.0], [50.0]])
    r3 = 4.0 + 0.5 * (0.5 * 50.0 + 0.5 * 50.0)
    r2 = 3.0 + 0.5 * (0.5 * 40.0 + 0.5 * r3)  # crosses into the next episode: the loss weighs it 0
    r1 = 2.0 if terminal else 2.0 + 0.5 * 30.0
    r0 = 1.0 + 0.5 * (0.5 * 20.0 + 0.5 * r1)
    expected = torch.tensor([[r0], [r1], [r2], [r3]])
    assert torch.allclose(replay_return(reward, is_first, is_terminal, boot, 0.5, 0.5), expected)


def test_replay_critic_loss_ignores_the_next_episode():
    ac = ActorCritic(BehaviorConfig(horizon=2, return_lambda=0.5), ActorConfig(), CriticConfig(units=8, layers=1),
                     feat_dim=4, action_dim=2)
    torch.nn.init.normal_(ac.critic.net[-1].weight)  # a zero-initialised critic would predict 0 everywhere
    feat = torch.randn(1, 5, 4)
    batch = {"reward": torch.tensor([[0.0, 1.0, 2.0, 3.0, 4.0]]), "is_terminal": torch.zeros(1, 5, dtype=torch.bool),
             "is_first": torch.tensor([[True, False, False, True, False]])}
    boot = torch.tensor([[10.0, 20.0, 30.0, 40.0, 50.0]])
    loss = ac.replay_critic_loss(feat, batch, boot)
    # Row 3's reward and imagined return enter only row 2's target, which ends its episode.
    leaked = ac.replay_critic_loss(feat, {**batch, "reward": batch["reward"] + torch.tensor([[0, 0, 0, 100.0, 0]])},
                                   boot + torch.tensor([[0, 0, 0, 100.0, 0]]))
    assert leaked.item() == pytest.approx(loss.item())
    moved = ac.replay_critic_loss(feat, batch, boot + torch.tensor([[0, 100.0, 0, 0, 0]]))
    assert moved.item() != pytest.approx(loss.item())  # row 1's imagined return does enter row 0's target


def test_percentile_return_norm_is_an_ema_of_the_spread():
    norm = ReturnNorm(BehaviorConfig(retnorm_rate=0.5))
    returns = torch.arange(101.0)  # P5 = 5, P95 = 95
    norm.update(returns)
    assert float(norm.lo) == pytest.approx(2.5) and float(norm.hi) == pytest.approx(47.5)
    norm.update(returns)
    assert float(norm.spread) == pytest.approx(0.75 * 90)
    small = ReturnNorm(BehaviorConfig(retnorm_rate=1.0))
    small.update(torch.linspace(0, 0.1, 50))
    assert float(small.scale) == 1.0  # max(limit=1, S)


def test_gradient_split_on_a_two_parameter_actor():
    """pg and entropy gradients, their norms, cosine and log-σ pushes against closed forms."""
    a = torch.tensor(0.3, requires_grad=True)
    b = torch.tensor(-0.2, requires_grad=True)
    x = torch.tensor([[0.1], [1.0], [-0.5], [0.7]])
    adv = torch.tensor([1.0, -2.0, 0.5, 3.0])
    eta = 0.01
    dist = TanhNormal(a.expand(4, 1), b.expand(4, 1), std_bound="logstd_clamp")
    pg_loss = -(adv * dist.log_prob_pretanh(x)).mean()
    ent_loss = -(eta * dist.entropy()).mean()
    metrics = GradientSignals().measure(pg_loss, ent_loss, [a, b], dist.std)

    sigma = math.exp(-0.2)
    z = (x.squeeze(1) - 0.3) / sigma
    ga = float(-(adv * z / sigma).mean())
    gb = float(-(adv * (z**2 - 1)).mean())
    assert metrics["actor/pg_grad_norm"] == pytest.approx(math.hypot(ga, gb), rel=1e-5)
    assert metrics["actor/ent_grad_norm"] == pytest.approx(eta, rel=1e-5)
    assert metrics["actor/grad_cos"] == pytest.approx(gb * -eta / (math.hypot(ga, gb) * eta), rel=1e-5)
    assert metrics["actor/logstd_push_ent"] == pytest.approx(-eta, rel=1e-5)
    assert metrics["actor/logstd_push_pg"] == pytest.approx(gb, rel=1e-5)


def test_drift_ratio_sees_through_noisy_policy_gradients():
    """A constant entropy gradient against a zero-mean PG gradient: per-step ratio small, drift ratio large."""
    signals = GradientSignals(drift_rate=0.02)
    g = torch.Generator().manual_seed(0)
    ratios, drift = [], []
    for _ in range(400):
        w = torch.zeros(2, requires_grad=True)
        noise = torch.randn(2, generator=g)
        pg_loss = (noise * w).sum()  # gradient = noise (norm ~1.25, mean 0)
        ent_loss = 0.3 * w[0]  # gradient = (0.3, 0) every step
        m = signals.measure(pg_loss, ent_loss, [w], torch.ones(1, 1, requires_grad=True) * 1.0)
        ratios.append(m["actor/ent_to_pg_ratio"])
        drift.append(m["actor/ent_to_pg_drift_ratio"])
    assert sorted(ratios)[200] < 0.5  # per step, the entropy gradient looks small
    assert sorted(drift[200:])[100] > 1.0  # over a window, it dominates


def test_explained_variance_and_reward_hits():
    target = torch.tensor([1.0, 2.0, 3.0, 4.0])
    assert explained_variance(target, target) == pytest.approx(1.0)
    assert explained_variance(target, torch.full((4,), 2.5)) == pytest.approx(0.0)
    replay = torch.tensor([0.0, 10.0, -10.0, 0.0, 10.0])
    predicted = torch.tensor([0.3, 6.0, 2.0, 0.0, 4.0])  # hit, wrong sign, too small
    m = reward_metrics(torch.tensor([0.0, 9.0, 0.0, 0.0]), replay, predicted)
    assert m["reward/head_hit_rate"] == pytest.approx(1 / 3)
    assert m["reward/replay_nonzero_frac"] == pytest.approx(3 / 5)
    assert m["reward/imag_nonzero_frac"] == pytest.approx(1 / 4)


def test_laprop_step_matches_hand_computation():
    p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
    opt = LaProp([p], lr=0.1, betas=(0.9, 0.99), eps=1e-20)
    p.grad = torch.tensor([0.5, -4.0])
    opt.step()
    # first step: nu_hat = g^2, update = g/|g| = sign(g); mu_hat = sign(g)
    assert torch.allclose(p.detach(), torch.tensor([0.9, -1.9]))


def test_adaptive_clipping_limits_gradient_relative_to_weights():
    p = torch.nn.Parameter(torch.tensor([3.0, 4.0]))  # norm 5
    p.grad = torch.tensor([30.0, 40.0])  # norm 50 -> clipped to 0.3 * 5 = 1.5
    adaptive_clip_([p], 0.3)
    assert float(p.grad.norm()) == pytest.approx(1.5)
    q = torch.nn.Parameter(torch.tensor([3.0, 4.0]))
    q.grad = torch.tensor([0.3, 0.4])
    adaptive_clip_([q], 0.3)
    assert torch.allclose(q.grad, torch.tensor([0.3, 0.4]))


@pytest.mark.parametrize("grad", ["reinforce", "backprop"])
def test_bfloat16_update_follows_the_float32_one_on_float32_weights(grad):
    torch.manual_seed(0)
    a32 = Agent(tiny_config(actor__dist="tanh_normal", actor__grad=grad, run__precision="float32"), obs_dim=5, action_dim=2)
    a16 = Agent(tiny_config(actor__dist="tanh_normal", actor__grad=grad, run__precision="bfloat16"), obs_dim=5, action_dim=2)
    a16.load_state_dict(a32.state_dict())
    before = torch.cat([p.detach().flatten() for p in a32.parameters()])
    batch = random_batch(B=8, T=16)
    torch.manual_seed(1)
    m32 = a32.train_step(batch, measure=UpdateSignals())
    torch.manual_seed(1)  # the same noise: differences come from the precision alone
    m16 = a16.train_step(batch, measure=UpdateSignals())
    # Master weights and optimiser state stay float32; only the products ran in bfloat16.
    assert {p.dtype for p in a16.parameters()} == {torch.float32}
    assert {v.dtype for st in a16.opt.opt.state.values() for v in st.values() if torch.is_tensor(v)} == {torch.float32}
    for key in ("loss/model", "loss/rec", "loss/dyn", "loss/critic"):  # bfloat16 keeps 8 bits: ~0.4% per product
        assert m16[key] == pytest.approx(m32[key], rel=0.03, abs=1e-3), key
    assert m16["policy/entropy"] == pytest.approx(m32["policy/entropy"], abs=0.02)
    # The step each weight took points the same way (LaProp normalises magnitudes).
    d32 = torch.cat([p.detach().flatten() for p in a32.parameters()]) - before
    d16 = torch.cat([p.detach().flatten() for p in a16.parameters()]) - before
    assert torch.nn.functional.cosine_similarity(d32, d16, 0) > 0.9


def test_observe_projects_inputs_once_and_matches_the_posterior_on_concatenated_inputs():
    torch.manual_seed(0)
    agent = Agent(tiny_config(), obs_dim=5, action_dim=2)
    rssm, batch = agent.wm.rssm, random_batch()
    embed = agent.wm.embed(batch["obs"])
    torch.manual_seed(3)
    post, post_logits, _ = rssm.observe(embed, batch["prev_action"], batch["is_first"], rssm.initial(3, "cpu"))
    # The posterior's first layer applied to [deter, embed] as one matrix, step by step:
    reference = rssm._dist(rssm.post_net(torch.cat([post.deter, embed], -1))).logits
    assert torch.allclose(post_logits, reference, atol=1e-5)
    # And the filter is the acting step run over the sequence.
    torch.manual_seed(3)
    state = rssm.initial(3, "cpu")
    for t in range(batch["obs"].shape[1]):
        state, _ = rssm.obs_step(state, batch["prev_action"][:, t], embed[:, t], batch["is_first"][:, t])
        assert torch.allclose(state.deter, post.deter[:, t], atol=1e-5)
        assert torch.allclose(state.stoch, post.stoch[:, t], atol=1e-6)  # the same one-hot samples


def test_auto_precision_is_bfloat16_exactly_where_the_cpu_multiplies_in_it():
    from pathlib import Path

    from dreamscope.agent.precision import compute_dtype, native_bfloat16

    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        pytest.skip("no /proc/cpuinfo to read the CPU's flags from")
    flags = set(cpuinfo.read_text().split())
    assert native_bfloat16("cpu") == bool(flags & {"avx512_bf16", "amx_bf16"})
    assert compute_dtype("auto", "cpu", 512) == (torch.bfloat16 if native_bfloat16("cpu") else torch.float32)
    assert compute_dtype("auto", "cpu", 64) == torch.float32  # toy sizes: the casts cost more than they save
    assert compute_dtype("float32", "cpu") == torch.float32
    assert compute_dtype("bfloat16", "cpu") == torch.bfloat16


def test_precision_refuses_other_dtypes():
    from dreamscope.config import apply_overrides
    from dreamscope.errors import DreamscopeError

    with pytest.raises(DreamscopeError, match="run.precision='float16'; accepted: auto, float32, bfloat16"):
        apply_overrides(Config(), {"run.precision": "float16"})


@pytest.mark.parametrize("mode, kept", [("prob", 0.6), ("threshold", 1.0)])
def test_imagination_discounts_by_the_continue_probability(mode, kept):
    """A continue head that says p = 0.6 everywhere: with ``prob`` (official) each imagined step
    keeps γ·0.6 of the future, the weights are the start flag times (γ·0.6)^k; thresholded,
    p > 0.5 counts as certain continuation, γ^k."""
    torch.manual_seed(0)
    agent = Agent(tiny_config(behavior__continuation=mode), obs_dim=5, action_dim=2)
    last = agent.wm.cont_head[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(math.log(0.6 / 0.4))
        _, post, *_ = agent.wm.loss(random_batch())
    from dreamscope.agent.world_model import Latent

    start = Latent(post.deter.reshape(-1, post.deter.shape[-1]), post.stoch.reshape(-1, *post.stoch.shape[2:]))
    start_cont = torch.ones(start.deter.shape[0])
    start_cont[0] = 0.0  # a start on a terminal row: nothing after it counts
    imag = agent.ac.imagine(agent.wm, start, start_cont)
    gamma, horizon = 1 - 1 / 333, agent.cfg.behavior.imag_horizon
    assert torch.allclose(imag.disc[1:], torch.full((horizon, len(start_cont)), gamma * kept))
    expected = start_cont * (gamma * kept) ** torch.arange(horizon + 1.0).unsqueeze(1)
    assert torch.allclose(imag.weight, expected, rtol=1e-5)


def test_terminal_rows_weigh_terminal_weight_times_in_the_continue_loss():
    """The continue loss is the mean binary cross-entropy over rows, terminal rows counted
    ``terminal_weight`` times (1: the official loss)."""
    import torch.nn.functional as F

    batch = random_batch()
    terminal = batch["is_terminal"].float()
    for weight in (1.0, 5.0):
        torch.manual_seed(0)
        agent = Agent(tiny_config(world_model__terminal_weight=weight), obs_dim=5, action_dim=2)
        with torch.no_grad():
            _, post, metrics, _ = agent.wm.loss(batch)
            bce = F.binary_cross_entropy_with_logits(agent.wm.cont_logits(post.feat()), 1.0 - terminal, reduction="none")
        expected = (bce.sum() + (weight - 1.0) * (bce * terminal).sum()) / bce.numel()
        assert float(metrics["loss/con"]) == pytest.approx(float(expected), rel=1e-5)
    assert float((bce * terminal).sum()) > 0  # the batch has a terminal row, so the weight mattered


@pytest.mark.parametrize("offset, expected", [(0.0, 0.0), (0.5, None)])
def test_obs_explained_variance_of_a_constant_decoder(offset, expected):
    """A decoder that predicts a constant c explains 1 − (Var + Σ(c − mean)²)/Var of the
    observations' symlog: 0 at the mean, negative away from it. Measured after the burn-in, a
    quarter of this 8-row window; the loss counts every row."""
    from dreamscope.dists import symlog

    batch = random_batch()
    agent = Agent(tiny_config(), obs_dim=5, action_dim=2)
    target = symlog(batch["obs"])[:, 2:].flatten(0, 1).double()
    mean, var = target.mean(0), target.var(0, correction=0).sum()
    every_row = symlog(batch["obs"]).flatten(0, 1).double()
    out = agent.wm.decoder[-1]
    with torch.no_grad():
        out.weight.zero_()
        out.bias.copy_((mean + offset).float())
        _, _, metrics, _ = agent.wm.loss(batch)
    if expected is None:
        expected = float(-5 * offset ** 2 / var)
    assert float(metrics["model/obs_explained_var"]) == pytest.approx(expected, abs=1e-5)
    assert float(metrics["loss/rec"]) == pytest.approx(float(((every_row - mean - offset) ** 2).sum(-1).mean()), rel=1e-5)


def test_rec_norm_std_weighs_each_dimension_by_its_inverse_variance_by_hand():
    """``world_model.rec_norm=std``: the first batch sets the variances; each dim's squared
    error counts 1 / max(var, 0.01), the weights averaging 1. ``loss/rec`` stays the unweighted
    error, so runs with and without it compare."""
    from dreamscope.dists import symlog

    batch = random_batch()
    batch["obs"][..., 0] *= 0.01  # a dimension that hardly varies: floored at 0.01
    agent = Agent(tiny_config(world_model__rec_norm="std"), obs_dim=5, action_dim=2)
    target = symlog(batch["obs"]).flatten(0, 1).double()
    var = target.var(0, correction=0)
    weights = 1.0 / var.clamp_min(0.01)
    weights = weights / weights.mean()
    assert float(var[0]) < 0.01 < float(var[1:].min())
    with torch.no_grad():
        agent.wm.decoder[-1].weight.zero_()
        agent.wm.decoder[-1].bias.zero_()
        total, _, metrics, _ = agent.wm.loss(batch)
    torch.testing.assert_close(agent.wm.obs_var.double(), var, rtol=1e-5, atol=1e-7)
    weighted = float((weights * (target ** 2).mean(0)).sum())
    unweighted = float((target ** 2).mean(0).sum())
    assert float(metrics["loss/rec"]) == pytest.approx(unweighted, rel=1e-5)
    others = float(total) - weighted
    assert others == pytest.approx(float(metrics["loss/rew"] + metrics["loss/con"] + metrics["loss/dyn"]
                                         + 0.1 * metrics["loss/rep"]), rel=1e-4)
    assert "obs_var" not in Agent(tiny_config(), obs_dim=5, action_dim=2).wm.state_dict()  # old checkpoints load
