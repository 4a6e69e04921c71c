"""dists.py against references that do not share its code: scipy quadrature, numpy formulas, sampling."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate, stats

from dreamscope.dists import (
    BoundedNormal,
    TanhNormal,
    TwoHot,
    UnimixCategorical,
    log1m_tanh_sq,
    symexp,
    symexp_bins,
    symlog,
    twohot_encode,
)

LN2 = math.log(2.0)
F64 = torch.float64


def tanh_normal(mean, std) -> TanhNormal:
    """A TanhNormal with exactly these σ: log σ clamped to bounds wide enough not to bind."""
    mean = torch.as_tensor(mean, dtype=F64)
    std = torch.as_tensor(std, dtype=F64)
    return TanhNormal(mean, torch.log(std), std_bound="logstd_clamp", logstd_min=-10.0, logstd_max=10.0)


# --------------------------------------------------------------------------------------
# Independent references for the squashed Gaussian
# --------------------------------------------------------------------------------------


def ref_log1m_tanh_sq(x):
    """log(1 − tanh² x) = log sech² x, written in |x| (not the form dists.py uses)."""
    ax = np.abs(x)
    return 2.0 * (LN2 - ax - np.log1p(np.exp(-2.0 * ax)))


def ref_action_logpdf(a, mu, s):
    """log p_a(a) of a = tanh x, x ~ N(mu, s): log N(atanh a) − log(1 − a²)."""
    return stats.norm.logpdf(np.arctanh(a), mu, s) - np.log((1.0 - a) * (1.0 + a))


def ref_action_entropy(mu: float, s: float) -> float:
    """−∫ p_a log p_a da by quadrature.

    For σ ≤ 2 in action space, split at tanh(μ + kσ/2). For larger σ the density piles up
    within 1e-14 of ±1, beyond float64, so integrate the same integral after a = tanh x:
    −∫ N(x) log p_a(tanh x) dx, with log p_a(tanh x) = log N(x) − log(1 − tanh² x).
    Both truncate at 6σ (the tail holds < 2e-9 of the mass).
    """
    ks = np.arange(-12, 13) / 2.0
    if s <= 2.0:
        pts = np.tanh(mu + ks * s)

        def f(a):
            lp = ref_action_logpdf(a, mu, s)
            return -math.exp(lp) * lp

    else:
        pts = mu + ks * s

        def f(x):
            lpx = stats.norm.logpdf(x, mu, s)
            return -math.exp(lpx) * (lpx - ref_log1m_tanh_sq(x))

    return sum(integrate.quad(f, lo, hi, epsabs=1e-11, limit=200)[0] for lo, hi in zip(pts[:-1], pts[1:]))


def test_reference_action_entropy_agrees_in_action_and_pre_tanh_space():
    """The two quadratures above are the same integral: check the reference before using it."""
    for mu, s in [(0.0, 0.5), (0.5, 1.0), (1.5, 2.0)]:
        ks = np.arange(-12, 13) / 2.0
        pts = mu + ks * s

        def f(x):
            lpx = stats.norm.logpdf(x, mu, s)
            return -math.exp(lpx) * (lpx - ref_log1m_tanh_sq(x))

        x_space = sum(integrate.quad(f, lo, hi, epsabs=1e-11)[0] for lo, hi in zip(pts[:-1], pts[1:]))
        assert ref_action_entropy(mu, s) == pytest.approx(x_space, abs=1e-6)


# (μ, σ) incl. σ at the std floor (0.1), the action-entropy maximiser (0.874), σ = e² (upper clamp)
POINTS = [(0.0, 0.1), (0.0, 0.874), (0.0, 1.0), (0.0, 2.0), (0.0, math.exp(2.0)), (0.5, 1.0), (1.5, 0.5), (1.5, 2.0)]


@pytest.mark.parametrize("mu,s", POINTS)
def test_tanh_normal_action_entropy_matches_quadrature(mu, s):
    # The MC term's spread grows like 2σ: 2^23 samples at σ = e², 2^20 elsewhere keep the
    # standard error ≤ 0.003 nats, a third of the tolerance.
    chunks = 8 if s > 3 else 1
    policy = tanh_normal([mu], [s])
    torch.manual_seed(0)
    mc = sum(float(policy.action_entropy(samples=1 << 20)) for _ in range(chunks)) / chunks
    assert mc == pytest.approx(ref_action_entropy(mu, s), abs=1e-2)


def test_action_entropy_at_upper_clamp_is_about_minus_7_per_dim():
    """σ = e²: the seed's policy. Its actions have ≈ −7 nats per dim, not ln 2."""
    assert ref_action_entropy(0.0, math.exp(2.0)) == pytest.approx(-7.07, abs=0.01)


@pytest.mark.parametrize("mu,s", [(0.0, 0.1), (0.0, 0.874), (0.0, 1.0), (0.5, 1.0), (1.5, 0.5), (-1.0, 0.3)])
def test_tanh_normal_density_integrates_to_one(mu, s):
    policy = tanh_normal([mu], [s])

    def density(a):
        return math.exp(float(policy.log_prob(torch.tensor([a], dtype=F64))))

    pts = np.tanh(mu + np.arange(-10, 11) * s)
    total = sum(integrate.quad(density, lo, hi, epsabs=1e-12)[0] for lo, hi in zip(pts[:-1], pts[1:]))
    assert total == pytest.approx(1.0, abs=1e-5)


def test_log_prob_is_change_of_variables():
    mu = np.array([0.3, -1.2, 0.0])
    s = np.array([0.5, 1.7, 0.1])
    policy = tanh_normal(mu, s)
    a = np.random.default_rng(0).uniform(-0.999, 0.999, size=(50, 3))
    want = ref_action_logpdf(a, mu, s).sum(-1)
    got = policy.log_prob(torch.tensor(a)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


def test_log_prob_pretanh_finite_where_tanh_rounds_to_one():
    x = torch.tensor([[20.0], [-20.0], [50.0], [-50.0]])  # float32: tanh(x) == ±1 exactly
    assert torch.all(torch.tanh(x).abs() == 1.0)
    policy = TanhNormal(torch.zeros(1), torch.full((1,), 2.0), std_bound="logstd_clamp")  # σ = e²
    got = policy.log_prob_pretanh(x)
    assert torch.all(torch.isfinite(got))
    xs = x.double().numpy()[:, 0]
    want = stats.norm.logpdf(xs, 0.0, math.exp(2.0)) - ref_log1m_tanh_sq(xs)
    np.testing.assert_allclose(got.double().numpy(), want, rtol=1e-5)


def test_log1m_tanh_sq_matches_naive_where_naive_is_accurate():
    x = torch.linspace(-5.0, 5.0, 1001, dtype=F64)
    naive = torch.log(1.0 - torch.tanh(x) ** 2)
    np.testing.assert_allclose(log1m_tanh_sq(x).numpy(), naive.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_log1m_tanh_sq_finite_at_large_x(dtype):
    x = torch.tensor([-50.0, 50.0], dtype=dtype)
    got = log1m_tanh_sq(x)
    assert torch.all(torch.isfinite(got))
    np.testing.assert_allclose(got.double().numpy(), ref_log1m_tanh_sq(np.array([-50.0, 50.0])), rtol=1e-6)


# --------------------------------------------------------------------------------------
# Entropy ceilings, floors, saturation
# --------------------------------------------------------------------------------------


def test_entropy_ceilings_of_the_seed_and_official_heads():
    seed = TanhNormal(torch.zeros(4), torch.zeros(4), std_bound="logstd_squash", logstd_min=-5.0, logstd_max=2.0)
    official = BoundedNormal(torch.zeros(4), torch.zeros(4))
    assert round(seed.entropy_ceiling(), 3) == 13.676
    assert round(official.entropy_ceiling(), 3) == 5.676
    assert official.entropy_floor() == pytest.approx(4 * stats.norm(0, 0.1).entropy(), abs=1e-12)
    assert seed.action_entropy_bound() == pytest.approx(4 * LN2)


def test_tanh_normal_entropy_at_the_clamp_is_the_pre_tanh_gaussian():
    policy = TanhNormal(torch.zeros(4), torch.full((4,), 50.0), std_bound="logstd_squash")
    assert float(policy.entropy()) == pytest.approx(4 * stats.norm(0, math.exp(2.0)).entropy(), abs=1e-4)


def test_saturation_at_upper_clamp_is_72_percent():
    policy = tanh_normal([0.0], [math.exp(2.0)])
    sat = float(policy.saturation())
    assert sat == pytest.approx(0.72, abs=0.005)
    assert sat == pytest.approx(2 * stats.norm.sf(math.atanh(0.99), 0, math.exp(2.0)), abs=1e-9)
    torch.manual_seed(1)
    a = torch.tanh(policy.mean + policy.std * torch.randn(200_000, 1, dtype=F64))
    assert float((a.abs() > 0.99).double().mean()) == pytest.approx(sat, abs=0.005)


def test_bounded_normal_entropy_and_std_range():
    std_raw = torch.tensor([-1e4, -50.0, -3.0, 0.0, 3.0, 50.0, 1e4], dtype=F64)
    policy = BoundedNormal(torch.zeros_like(std_raw), std_raw)
    std = policy.std.numpy()
    assert std.min() >= 0.1 - 1e-12 and std.max() <= 1.0 + 1e-12
    assert std[0] == pytest.approx(0.1) and std[-1] == pytest.approx(1.0)
    assert std[3] == pytest.approx(0.9 / (1.0 + math.exp(-2.0)) + 0.1)  # official init σ
    # one 7-D policy: entropy() is the sum of the per-dim Gaussian entropies
    assert float(policy.entropy()) == pytest.approx(stats.norm(0, std).entropy().sum(), rel=1e-12)


def test_bounded_normal_saturation_matches_sampling():
    mean_raw = torch.tensor([0.0, 0.8, -2.0], dtype=F64)
    std_raw = torch.tensor([0.0, -1.0, 2.0], dtype=F64)
    policy = BoundedNormal(mean_raw, std_raw)
    torch.manual_seed(2)
    x = policy.mean + policy.std * torch.randn(400_000, 3, dtype=F64)
    frac = float((x.clamp(-1.0, 1.0).abs() > 0.99).double().mean())
    assert float(policy.saturation()) == pytest.approx(frac, abs=0.003)


def test_action_entropy_never_exceeds_uniform():
    """No distribution on [-1, 1]^d beats the uniform's d·ln 2, whatever μ and σ."""
    torch.manual_seed(3)
    mu = torch.linspace(-2.0, 2.0, 9, dtype=F64).repeat_interleave(13)[:, None].expand(-1, 4)
    log_std = torch.linspace(-3.0, 3.0, 13, dtype=F64).repeat(9)[:, None].expand(-1, 4)
    squashed = tanh_normal(mu, torch.exp(log_std)).action_entropy(samples=5_000)
    clipped = BoundedNormal(mu, 2.0 * log_std).action_entropy(samples=5_000)
    for values in (squashed, clipped):
        assert torch.all(torch.isfinite(values))
        assert float(values.max()) <= 4 * LN2 + 0.05
    assert float(squashed.max()) > 4 * 0.6  # the grid does reach near the top (0.684/dim at σ ≈ 0.87)


@pytest.mark.parametrize("rel_tol,upper_frac,lower_frac", [(0.05, 3 / 8, 2 / 8), (0.02, 3 / 8, 1 / 8)])
def test_std_at_bounds_fractions(rel_tol, upper_frac, lower_frac):
    # log σ = clamp(s, −5, 2); tolerance = rel_tol × the 7-nat log range (0.35 or 0.14)
    s = torch.tensor([2.0, 5.0, 1.9, 0.0, -5.0, -4.8, -4.0, 1.0])
    upper, lower = TanhNormal(torch.zeros(8), s, std_bound="logstd_clamp").std_at_bounds(rel_tol)
    assert float(upper) == upper_frac and float(lower) == lower_frac
    # official head: σ ∈ [0.1, 1]
    s = torch.tensor([50.0, 50.0, -50.0, -2.0])  # σ = 1, 1, 0.1, 0.55
    upper, lower = BoundedNormal(torch.zeros(4), s).std_at_bounds(rel_tol)
    assert float(upper) == 2 / 4 and float(lower) == 1 / 4


def test_official_initial_std_is_not_at_the_ceiling():
    """s = 0 gives σ = 0.9·sigmoid(2) + 0.1 = 0.893, 0.114 nats below the ceiling: not pinned."""
    upper, lower = BoundedNormal(torch.zeros(4), torch.zeros(4)).std_at_bounds()
    assert float(upper) == 0.0 and float(lower) == 0.0


# --------------------------------------------------------------------------------------
# Two-hot regression
# --------------------------------------------------------------------------------------

BINS = symexp_bins()
TARGETS = [-1e6, -1234.5, -10.0, -1.0, -0.3, 0.0, 1e-3, 0.7, 5.0, 10.0, 300.0, 1e5]


def test_symexp_bins_are_symmetric_and_sorted():
    b = BINS.numpy()
    assert len(b) == 255 and b[127] == 0.0
    np.testing.assert_array_equal(b, -b[::-1])
    assert np.all(np.diff(b) > 0)
    assert b[-1] == pytest.approx(math.expm1(20.0), rel=1e-6)


def test_twohot_round_trip():
    y = torch.tensor(TARGETS)
    decoded = TwoHot(torch.log(twohot_encode(y, BINS)), BINS).mean()
    np.testing.assert_allclose(decoded.numpy(), y.numpy(), rtol=1e-5, atol=1e-6)
    assert float(TwoHot(torch.log(twohot_encode(torch.tensor(0.0), BINS)), BINS).mean()) == 0.0


def test_twohot_beyond_range_clips_to_end_bins():
    y = torch.tensor([-1e12, 1e12])
    weights = twohot_encode(y, BINS)
    assert weights[0, 0] == 1.0 and weights[1, -1] == 1.0
    decoded = TwoHot(torch.log(weights), BINS).mean()
    np.testing.assert_allclose(decoded.numpy(), [BINS[0].item(), BINS[-1].item()], rtol=1e-6)


def test_twohot_weights_on_the_two_neighbours():
    y = torch.tensor(TARGETS + list(np.random.default_rng(4).normal(0, 50, 100)), dtype=torch.float32)
    w = twohot_encode(y, BINS).numpy()
    np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-6)
    b = BINS.numpy()
    k = np.searchsorted(b, y.numpy(), side="right")  # b[k−1] ≤ y < b[k]
    for row, ki in zip(w, k):
        allowed = {ki - 1, ki} & set(range(len(b)))
        assert set(np.flatnonzero(row)) <= allowed


def test_twohot_loss_is_cross_entropy_to_the_two_hot_target():
    torch.manual_seed(7)
    logits = torch.randn(len(TARGETS), 255, dtype=F64)
    y = np.array(TARGETS)
    b = BINS.double().numpy()
    k = np.searchsorted(b, y, side="right")
    w_hi = (y - b[k - 1]) / (b[k] - b[k - 1])
    logp = torch.log_softmax(logits, -1).numpy()
    rows = np.arange(len(y))
    want = -((1 - w_hi) * logp[rows, k - 1] + w_hi * logp[rows, k])
    got = TwoHot(logits, BINS).loss(torch.tensor(y)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5)


@pytest.mark.parametrize("target", [-250.0, -1.0, 0.5, 40.0])
def test_twohot_loss_step_moves_mean_toward_target(target):
    torch.manual_seed(5)
    logits = (0.1 * torch.randn(255)).requires_grad_()
    y = torch.tensor(target)
    before = float(TwoHot(logits.detach(), BINS).mean())
    TwoHot(logits, BINS).loss(y).backward()
    with torch.no_grad():
        logits -= 1.0 * logits.grad
    after = float(TwoHot(logits.detach(), BINS).mean())
    assert abs(after - target) < abs(before - target)


@pytest.mark.parametrize("num_bins", [3, 41, 255])
def test_zero_logits_decode_to_exactly_zero(num_bins):
    mean = TwoHot(torch.zeros(6, num_bins), symexp_bins(num_bins)).mean()
    assert torch.all(mean == 0.0)


def test_symlog_symexp_inverse():
    x = torch.tensor([-1e8, -1234.5, -1.0, -1e-6, 0.0, 1e-6, 0.5, 1.0, 77.0, 1e8], dtype=F64)
    np.testing.assert_allclose(symexp(symlog(x)).numpy(), x.numpy(), rtol=1e-12, atol=0)
    np.testing.assert_allclose(symlog(x).numpy(), np.sign(x.numpy()) * np.log1p(np.abs(x.numpy())), rtol=1e-14)
    y = torch.linspace(-30.0, 30.0, 61, dtype=F64)
    np.testing.assert_allclose(symlog(symexp(y)).numpy(), y.numpy(), rtol=1e-12, atol=1e-12)


# --------------------------------------------------------------------------------------
# Unimix categorical
# --------------------------------------------------------------------------------------

EXTREME = torch.tensor([[1e4, -1e4, 0.0, 50.0], [-1e4, -1e4, -1e4, 1e4], [0.0, 0.0, 0.0, 0.0]])


def test_unimix_floor_and_normalisation():
    u = 0.01
    dist = UnimixCategorical(EXTREME, u)
    assert torch.all(dist.probs >= u / 4 * (1 - 1e-6))
    np.testing.assert_allclose(dist.probs.sum(-1).numpy(), 1.0, atol=1e-6)
    e = np.exp(EXTREME.double().numpy() - EXTREME.double().numpy().max(-1, keepdims=True))
    want = (1 - u) * e / e.sum(-1, keepdims=True) + u / 4
    np.testing.assert_allclose(dist.probs.numpy(), want, rtol=1e-5)


def test_unimix_straight_through_sample():
    logits = torch.tensor([[0.5, -1.0, 2.0, 0.0]]).repeat(20_000, 1).requires_grad_()
    dist = UnimixCategorical(logits, 0.01)
    torch.manual_seed(6)
    sample = dist.sample()
    np.testing.assert_allclose(sample.detach().numpy().max(-1), 1.0, atol=1e-6)
    np.testing.assert_allclose(sample.detach().numpy().sum(-1), 1.0, atol=1e-6)
    assert set(np.round(sample.detach().numpy(), 5).ravel()) <= {0.0, 1.0}
    freq = sample.detach().mean(0).numpy()
    np.testing.assert_allclose(freq, dist.probs[0].detach().numpy(), atol=0.015)
    (sample * torch.arange(4.0)).sum().backward()
    assert logits.grad is not None and float(logits.grad.abs().sum()) > 0


def test_unimix_kl_finite_and_bounded():
    u = 0.01
    p = UnimixCategorical(EXTREME, u)
    q = UnimixCategorical(-EXTREME, u)
    kl = p.kl(q)
    assert torch.all(torch.isfinite(kl)) and torch.all(kl >= -1e-6)
    assert torch.all(kl <= math.log(4 / u) + 1e-4)  # q ≥ u/K bounds log p/q by log(K/u)
    assert torch.allclose(p.kl(p), torch.zeros(3), atol=1e-6)


# --------------------------------------------------------------------------------------
# Invalid arguments
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [
        lambda: UnimixCategorical(torch.zeros(4), 1.0),
        lambda: UnimixCategorical(torch.zeros(4), -0.1),
        lambda: BoundedNormal(torch.zeros(2), torch.zeros(2), std_min=0.0),
        lambda: BoundedNormal(torch.zeros(2), torch.zeros(2), std_min=1.0, std_max=0.5),
        lambda: TanhNormal(torch.zeros(2), torch.zeros(2), std_bound="softplus"),
        lambda: TanhNormal(torch.zeros(2), torch.zeros(2), logstd_min=2.0, logstd_max=2.0),
        lambda: TanhNormal(torch.zeros(2), torch.zeros(2), std_bound="minmax", std_min=1.0, std_max=0.1),
        lambda: symexp_bins(254),
        lambda: symexp_bins(1),
    ],
)
def test_invalid_arguments_raise_value_error(make):
    with pytest.raises(ValueError):
        make()


def test_saturation_threshold_is_written_once():
    """policy/saturation_frac, the dists' closed forms, evaluate and the doctor count |a| > one constant."""
    import io
    import tokenize
    from pathlib import Path

    import dreamscope

    written = [path.name for path in sorted(Path(dreamscope.__file__).parent.rglob("*.py"))
               for token in tokenize.generate_tokens(io.StringIO(path.read_text()).readline)
               if token.type == tokenize.NUMBER and token.string.rstrip("0") == "0.99"]
    assert written == ["metrics.py"]


@pytest.mark.parametrize("make, lo, hi", [
    (lambda m, s: BoundedNormal.from_moments(m, s, 0.1, 1.0), 0.1, 1.0),
    (lambda m, s: TanhNormal.from_moments(m, s, -5.0, 2.0), math.exp(-5.0), math.exp(2.0)),
])
def test_from_moments_keeps_the_moments_and_applies_the_std_bounds(make, lo, hi):
    mean = torch.tensor([[-0.9, 0.0, 0.5, 0.3]], dtype=torch.float64)
    std = torch.tensor([[lo * 1.5, hi * 0.5, hi * 2.0, lo * 0.5]], dtype=torch.float64)
    policy = make(mean, std)
    torch.testing.assert_close(policy.mean, mean)
    torch.testing.assert_close(policy.std, torch.tensor([[lo * 1.5, hi * 0.5, hi, lo]], dtype=torch.float64))
    assert (policy.std_min, policy.std_max) == pytest.approx((lo, hi))
    assert math.isfinite(float(BoundedNormal.from_moments(torch.ones(1), torch.ones(1)).log_prob(torch.ones(1))))
