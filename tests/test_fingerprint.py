"""`dreamscope entropy`: what a logged entropy value can be, checked on values whose answer is known."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import dreamscope
from dreamscope.cli import main
from dreamscope.errors import DreamscopeError
from dreamscope.fingerprint import KNOWN_STD_BOUNDS, explain_entropy

HALF_LN_2PIE = 0.5 * math.log(2 * math.pi * math.e)


def gaussian_entropy(log_std: float, d: int) -> float:
    return d * (HALF_LN_2PIE + log_std)


def codebases(e, side):
    return {m.codebase for m in e.bound_matches if m.side == side}


def test_seed_value_is_pretanh_gaussian_at_upper_clamp():
    e = explain_entropy(13.676, 4)
    assert e.log_std == pytest.approx(2.0, abs=1e-3)
    assert e.std == pytest.approx(math.exp(2.0), abs=0.01)
    assert any("NaturalDreamer" in c for c in codebases(e, "upper"))
    assert any("SAC reference" in c for c in codebases(e, "upper"))
    assert not codebases(e, "lower")
    assert e.squashed_max == pytest.approx(4 * math.log(2))
    assert not e.possible_action_entropy and not e.possible_bounded_normal
    assert e.squashed.mean_assumed == 0.0
    assert e.squashed.saturation == pytest.approx(0.72, abs=0.005)
    assert e.squashed.action_entropy == pytest.approx(-28.0, abs=0.5)
    assert e.squashed.action_entropy == pytest.approx(4 * e.squashed.action_entropy_per_dim)
    expected = {"STD_AT_UPPER_BOUND", "IMPOSSIBLE_ACTION_ENTROPY", "OUTSIDE_BOUNDED_NORMAL", "BANG_BANG"}
    assert expected <= set(e.flag_codes)
    assert "bang-bang" in e.summary and "2.773" in e.summary


def test_seed_value_as_logged_to_two_decimals_still_matches():
    e = explain_entropy(13.67, 4)
    assert e.log_std == pytest.approx(2.0, abs=e.tolerance)
    assert codebases(e, "upper")


def test_per_dim_reading_equals_summed_reading():
    summed = explain_entropy(13.676, 4)
    per_dim = explain_entropy(13.676 / 4, 4, per_dim=True)
    assert per_dim.log_std == pytest.approx(summed.log_std)
    assert per_dim.entropy_total == pytest.approx(13.676)
    assert per_dim.flag_codes == summed.flag_codes


def test_three_dims_at_the_same_clamp():
    e = explain_entropy(10.257, 3)
    assert e.log_std == pytest.approx(2.0, abs=1e-3)
    assert codebases(e, "upper") and "IMPOSSIBLE_ACTION_ENTROPY" in e.flag_codes


def test_official_ceiling():
    e = explain_entropy(5.676, 4)
    assert e.std == pytest.approx(1.0, abs=1e-3)
    assert codebases(e, "upper") == {KNOWN_STD_BOUNDS[2].codebase}
    assert e.possible_bounded_normal
    # clipped N(0, 1): P(|x| > 0.99) = 2·(1 − Φ(0.99))
    assert e.bounded_normal_saturation == pytest.approx(math.erfc(0.99 / math.sqrt(2)), abs=1e-3)
    assert "IMPOSSIBLE_ACTION_ENTROPY" in e.flag_codes  # 5.676 > 4·ln 2 too


def test_official_floor():
    e = explain_entropy(-0.8836, 1)
    assert e.std == pytest.approx(0.1, abs=1e-4)
    assert codebases(e, "lower") == {KNOWN_STD_BOUNDS[2].codebase}
    assert e.possible_action_entropy and e.possible_bounded_normal
    assert not e.possible_discrete and e.discrete is None
    assert "NEGATIVE_NOT_DISCRETE" in e.flag_codes


@pytest.mark.parametrize(
    "value,d,per_dim,heads",
    [(2.833, 1, False, 1), (2.833, 4, True, 4), (4 * math.log(17), 4, False, 4)],
)
def test_ln_17_is_a_uniform_17_way_head(value, d, per_dim, heads):
    e = explain_entropy(value, d, per_dim=per_dim)
    assert e.discrete is not None
    assert (e.discrete.categories, e.discrete.heads) == (17, heads)
    assert e.discrete.entropy_per_head == pytest.approx(math.log(17))


def test_a_known_continuous_policy_gets_no_discrete_reading():
    e = explain_entropy(4 * math.log(17), 4, continuous=True)
    assert e.discrete is None and "ln 17" not in e.summary and "discrete" not in e.summary
    assert explain_entropy(-1.0, 4, continuous=True).flag_codes.count("NEGATIVE_NOT_DISCRETE") == 0
    assert e.log_std == explain_entropy(4 * math.log(17), 4).log_std  # the Gaussian reading is unchanged


def test_plain_value_is_possible_and_on_no_clamp():
    e = explain_entropy(2.0, 4)
    assert e.possible_action_entropy and e.possible_bounded_normal and e.possible_discrete
    assert e.bound_matches == () and e.discrete is None
    assert e.log_std == pytest.approx(0.5 - HALF_LN_2PIE)
    unexpected = {"IMPOSSIBLE_ACTION_ENTROPY", "STD_AT_UPPER_BOUND", "STD_AT_LOWER_BOUND", "BANG_BANG"}
    assert not unexpected & set(e.flag_codes)


@pytest.mark.parametrize("log_std,codebase", [(-5.0, "NaturalDreamer"), (-20.0, "SAC reference")])
def test_lower_clamps(log_std, codebase):
    e = explain_entropy(gaussian_entropy(log_std, 4), 4)
    assert any(codebase in c for c in codebases(e, "lower"))


def test_tolerance_is_a_hard_edge():
    inside = explain_entropy(gaussian_entropy(2.0 + 0.009, 4), 4)
    outside = explain_entropy(gaussian_entropy(2.0 + 0.011, 4), 4)
    assert inside.bound_matches and not outside.bound_matches
    assert "STD_ABOVE_KNOWN_BOUNDS" in outside.flag_codes


def test_squashed_limit_is_d_ln2():
    assert explain_entropy(2.77, 4).possible_action_entropy
    assert not explain_entropy(2.85, 4).possible_action_entropy
    assert not explain_entropy(0.75, 1).possible_action_entropy


def test_every_known_bound_names_its_code_base():
    pairs = {(b.log_std_min, b.log_std_max) for b in KNOWN_STD_BOUNDS}
    assert pairs >= {(-5.0, 2.0), (-20.0, 2.0), (math.log(0.1), 0.0)}
    assert all(b.codebase and b.rule and b.log_std_min < b.log_std_max for b in KNOWN_STD_BOUNDS)


def test_action_entropy_is_reproducible_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    first = explain_entropy(13.676, 4).squashed.action_entropy
    assert torch.equal(torch.rand(3), expected_next)
    assert explain_entropy(13.676, 4).squashed.action_entropy == first


@pytest.mark.parametrize("value,d", [(float("nan"), 4), (float("inf"), 4), (-float("inf"), 1), ("13.67", 4), (True, 4)])
def test_api_rejects_non_finite_or_non_number_values(value, d):
    with pytest.raises(DreamscopeError, match="finite number"):
        explain_entropy(value, d)


@pytest.mark.parametrize("d", [0, -3, 2.5, True])
def test_api_rejects_bad_action_dim(d):
    with pytest.raises(DreamscopeError, match="positive integer"):
        explain_entropy(1.0, d)


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------


def run_cli(capsys, *argv):
    code = main(["entropy", *argv])
    out, err = capsys.readouterr()
    return code, " ".join(out.split()), err


def test_cli_text_states_the_key_facts(capsys):
    code, out, err = run_cli(capsys, "13.67", "--action-dim", "4")
    assert code == 0 and err == ""
    facts = ["4 × (½ln(2πe) + 2.00)", "σ ≈ 7.38", "NaturalDreamer", "2.773", "IMPOSSIBLE"]
    for fact in facts + ["72%", "-28.", "bang-bang", "μ ≈ 0"]:
        assert fact in out, fact


def test_cli_json(capsys):
    code = main(["entropy", "13.67", "--action-dim", "4", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0
    assert data["log_std"] == pytest.approx(2.0, abs=0.01)
    assert data["squashed"]["saturation"] == pytest.approx(0.72, abs=0.005)
    assert data["squashed"]["action_entropy"] == pytest.approx(-28.0, abs=0.5)
    assert data["bound_matches"][0]["log_std"] == 2.0
    assert data["tolerance"] == 0.01
    assert "IMPOSSIBLE_ACTION_ENTROPY" in data["flag_codes"]
    assert data["summary"].startswith("13.67 nats")


def test_cli_per_dim_and_negative_value(capsys):
    code = main(["entropy", "2.833", "--action-dim", "4", "--per-dim", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert code == 0 and data["discrete"]["categories"] == 17 and data["entropy_total"] == pytest.approx(11.332)
    code, out, _ = run_cli(capsys, "-0.8836", "--action-dim", "1")
    assert code == 0 and "σ ≈ 0.1" in out


@pytest.mark.parametrize(
    "value,dim,names",
    [
        ("13.67", "-3", "action dim -3"),
        ("13.67", "0", "action dim 0"),
        ("13.67", "2.5", "action dim '2.5'"),
        ("nan", "4", "nan"),
        ("inf", "4", "inf"),
        ("abc", "4", "'abc'"),
        ("1e9", "1", "1000000000.0"),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(capsys, value, dim, names):
    code = main(["entropy", value, "--action-dim", dim])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert names in err and "accepted" in err


def test_import_does_not_load_torch():
    """Every CLI command imports this module to build its parser: it must stay light."""
    code = "import sys, dreamscope.fingerprint; sys.exit('torch' in sys.modules)"
    env = {**os.environ, "PYTHONPATH": str(Path(dreamscope.__file__).parents[1])}
    assert subprocess.run([sys.executable, "-c", code], env=env).returncode == 0


@pytest.mark.parametrize("log_std", [-3.0, 0.0, 2.0])
def test_squashed_reading_agrees_with_the_tanh_normal_that_trains(log_std):
    """The command computes without torch; its numbers are those of dists.TanhNormal (MC, 2^20 samples)."""
    from dreamscope.dists import TanhNormal

    reading = explain_entropy(4 * (HALF_LN_2PIE + log_std), 4).squashed
    policy = TanhNormal(torch.zeros(1, dtype=torch.float64), torch.full((1,), log_std, dtype=torch.float64),
                        std_bound="logstd_clamp", logstd_min=log_std - 1, logstd_max=log_std + 1)
    torch.manual_seed(0)
    assert reading.action_entropy_per_dim == pytest.approx(float(policy.action_entropy(samples=1 << 20)), abs=0.01)
    assert reading.saturation == pytest.approx(float(policy.saturation()), rel=1e-9, abs=1e-15)
