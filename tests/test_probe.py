"""The probe on runs made to fail each way: η far too high (cause) and no rewards (symptom)."""

import argparse
import json
import shutil

import gymnasium as gym
import numpy as np
import pytest
import torch

from dreamscope.config import Config, apply_overrides, apply_preset
from dreamscope.diagnostics import probe as P
from dreamscope.diagnostics.signals import GradientSignals
from dreamscope.errors import DreamscopeError
from dreamscope.train import Trainer

FAST = {"run.env": "Pendulum-v1", "run.steps": 360, "run.prefill": 200, "run.batch_size": 4, "run.batch_length": 16,
        "run.train_ratio": 16, "run.log_every": 40, "run.signals_every": 2, "optim.warmup": 10}


class TargetEnv(gym.Env):
    """Hit a target action: reward −4·mean((a − 0.5)²), observation = the last action, 50-step episodes.

    What the actor should learn is in every reward, so a tiny world model learns it in a few
    hundred updates (Pendulum's reward depends on the action only through the dynamics, and
    a tiny world model does not resolve that in a test's budget). A bang-bang policy, which
    is what a pinned σ = e² gives, scores about −4 per step; the target action scores 0.
    """

    def __init__(self, dim: int = 1, length: int = 50):
        self.dim, self.length, self.t = dim, length, 0
        self.action_space = gym.spaces.Box(-1, 1, (dim,), np.float32)
        self.observation_space = gym.spaces.Box(-1, 1, (dim,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(self.dim, np.float32), {}

    def step(self, action):
        a = np.clip(np.asarray(action, np.float32), -1, 1)
        self.t += 1
        return a.copy(), -4.0 * float(np.mean((a - 0.5) ** 2)), False, self.t >= self.length, {}


TARGET = "dreamscope_test/Target-v0"
if TARGET not in gym.registry:
    gym.register(TARGET, entry_point=TargetEnv)


def train(path, **overrides):
    cfg = apply_overrides(apply_preset(Config(), "tiny"), {**FAST, **overrides})
    Trainer(cfg, path).train(progress=False)
    return path


@pytest.fixture(scope="module")
def cause_run(tmp_path_factory):
    """η = 0.3 on the pre-tanh entropy: σ walks to the clamp e² within ~100 updates (lr 3e-3)."""
    return train(tmp_path_factory.mktemp("probe") / "cause", **{
        "run.env": TARGET, "actor.dist": "tanh_normal", "actor.entropy_scale": 0.3, "optim.lr": 3e-3,
        "run.train_ratio": 64, "run.steps": 300})


@pytest.fixture(scope="module")
def symptom_run(tmp_path_factory):
    """Rewards removed before replay, η as DreamerV3's 3e-4: nothing to learn."""
    return train(tmp_path_factory.mktemp("probe") / "symptom", **{"run.reward_scale": 0.0})


THREE = ["eta0", "trained", "adv_x10"]


def test_eta_far_too_high_is_a_cause(cause_run):
    result = P.probe(cause_run, updates=100, only=THREE)
    eta0, trained = result.get("eta0"), result.get("trained")
    assert eta0.before["std_at_upper_frac"] > 0.9 and eta0.before["saturation"] > 0.6  # pinned, bang-bang
    assert result.conclusion == "cause", result.statement
    assert result.statement.endswith("the bonus is a cause")
    assert eta0.after["std"] < 0.5 * eta0.before["std"]  # σ leaves the clamp without the bonus ...
    assert trained.after["std_at_upper_frac"] > 0.9  # ... and stays there with it
    gain = result.gain_vs_trained
    assert gain["lo"] > result.thresholds["min_return_effect"]
    assert eta0.delta["return"]["lo"] > trained.delta["return"]["hi"]
    assert result.pg_drift > result.thresholds["pg_drift_max"]  # the policy gradient has a direction
    assert result.entropy_holder == "bonus" and result.entropy_statement.startswith("the bonus holds the entropy up")


def test_no_rewards_is_a_symptom(symptom_run):
    result = P.probe(symptom_run, updates=50, only=THREE)
    assert result.conclusion == "symptom", result.statement
    assert (result.learning_blocked_by, result.to_dict()["learning_blocked_by"]) == ("no_signal", "no_signal")
    assert result.entropy_holder in ("not high", "not bonus"), result.entropy_statement  # η = 3e-4 holds nothing up
    assert result.pg_drift <= result.thresholds["pg_drift_max"]
    eps = result.thresholds["min_return_effect"] * result.settings["return_scale"]
    for iv in result.interventions:
        assert abs(iv.delta["return"]["lo"]) < eps and abs(iv.delta["return"]["hi"]) < eps


def parse(argv):
    parser = argparse.ArgumentParser()
    P.add_arguments(parser)
    return parser.parse_args(argv)


def test_json_output_and_html_fragment(symptom_run, capsys):
    assert P.run(parse([str(symptom_run), "--updates", "3", "--json"])) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) >= {"conclusion", "statement", "interventions", "settings", "thresholds", "pg_drift",
                        "entropy_holder", "entropy_statement"}
    assert out["conclusion"] in ("cause", "symptom", "undecided")
    names = [iv["name"] for iv in out["interventions"]]
    assert names == ["eta0", "trained", "eta_x10", "adv_x10"]  # bounded_normal: no action_entropy
    for iv in out["interventions"]:
        assert set(iv) >= {"name", "description", "eta", "adv_multiplier", "entropy_space", "before", "after",
                           "delta"}
        for key in ("return", "return_norm", "entropy", "entropy_action", "std", "saturation"):
            d = iv["delta"][key]
            assert set(d) >= {"mean", "lo", "hi", "se", "n"} and d["n"] == 8
            assert d["lo"] <= d["mean"] <= d["hi"]
    assert out["settings"]["updates"] == 3 and out["settings"]["eval_batches"] == 8
    assert {i["name"]: i["eta"] for i in out["interventions"]} == pytest.approx(
        {"eta0": 0.0, "trained": 3e-4, "eta_x10": 3e-3, "adv_x10": 3e-4})

    out["statement"] = "<script>alert('x')</script> & more"
    out["entropy_statement"] = "<b onclick=x>"
    out["settings"]["run_dir"] = "<img src=x onerror=alert(1)>"
    fragment = P.probe_html_section(out)
    assert "<script>" not in fragment and "<img" not in fragment and "&lt;script&gt;" in fragment
    assert "<b onclick" not in fragment and "&lt;b onclick=x&gt;" in fragment
    assert fragment.startswith("<section") and fragment.endswith("</section>")
    assert "http" not in fragment  # self-contained

    P.render(out)  # the terminal table renders from the JSON form too
    assert "SYMPTOM" in capsys.readouterr().out or out["conclusion"] != "symptom"


def test_interventions_are_applied(cause_run):
    cfg, agent, replay = P.load_run(cause_run)
    assert P.available_interventions(cfg) == ["eta0", "trained", "eta_x10", "adv_x10", "action_entropy"]
    eta = P.freeze(agent)
    assert eta == pytest.approx(0.3)
    torch.manual_seed(0)
    (start, cont), = P.start_states(agent, replay, 1, 4, 16, "cpu")
    imag = agent.ac.imagine(agent.wm, start, cont)
    params = list(agent.ac.actor.parameters())
    norms = {}
    for name in ("eta0", "trained", "eta_x10", "adv_x10", "action_entropy"):
        torch.manual_seed(1)
        out = P.intervention_loss(agent.ac, imag, P.INTERVENTIONS[name], eta)
        norms[name] = GradientSignals().measure(out.pg_loss, out.ent_loss, params, out.dist.std)
        norms[name]["entropy"] = float(out.entropy.mean())
        norms[name]["dist_entropy"] = float(out.dist.entropy().mean().detach())
    assert norms["eta0"]["actor/ent_grad_norm"] == 0.0
    assert norms["trained"]["actor/ent_grad_norm"] > 0
    assert norms["eta_x10"]["actor/ent_grad_norm"] == pytest.approx(10 * norms["trained"]["actor/ent_grad_norm"], rel=1e-5)
    assert norms["adv_x10"]["actor/pg_grad_norm"] == pytest.approx(10 * norms["trained"]["actor/pg_grad_norm"], rel=1e-5)
    assert norms["adv_x10"]["actor/ent_grad_norm"] == pytest.approx(norms["trained"]["actor/ent_grad_norm"], rel=1e-6)
    # The action-space entropy adds E[log(1 − tanh² x)] < 0 to the pre-tanh one.
    assert norms["action_entropy"]["entropy"] < norms["action_entropy"]["dist_entropy"] - 1.0
    assert norms["trained"]["entropy"] == pytest.approx(norms["trained"]["dist_entropy"])
    # The return normaliser is frozen at the checkpoint's: five losses later S is unchanged.
    saved = torch.load(cause_run / "checkpoint.pt", weights_only=True)["agent"]
    assert float(agent.ac.retnorm.spread) == float(saved["ac.retnorm.hi"] - saved["ac.retnorm.lo"])


def test_lr_option_sets_the_probe_step_size(cause_run):
    """σ leaves the clamp in proportion to the probe's learning rate (LaProp steps scale with lr)."""
    moved = {}
    for lr in (3e-4, 3e-3):
        result = P.probe(cause_run, updates=20, only=["eta0"], lr=lr)
        assert result.settings["lr"] == lr
        eta0 = result.get("eta0")
        moved[lr] = eta0.before["std"] - eta0.after["std"]
    assert 0 < moved[3e-4] < 0.5 * moved[3e-3]
    with pytest.raises(DreamscopeError, match="--lr '-1': expected a positive number"):
        P.run(parse([str(cause_run), "--lr", "-1"]))


def test_evaluation_uses_common_random_numbers(symptom_run):
    cfg, agent, replay = P.load_run(symptom_run)
    P.freeze(agent)
    torch.manual_seed(0)
    starts = P.start_states(agent, replay, 3, 4, 16, "cpu")
    a = P.evaluate(agent.ac, agent.wm, starts, [5, 6, 7], cfg.actor.entropy_space)
    b = P.evaluate(agent.ac, agent.wm, starts, [5, 6, 7], cfg.actor.entropy_space)
    c = P.evaluate(agent.ac, agent.wm, starts, [8, 9, 10], cfg.actor.entropy_space)
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(a["saturation"], c["saturation"]) or not np.array_equal(a["entropy_action"],
                                                                                        c["entropy_action"])


def test_decision_rules_on_synthetic_deltas():
    def iv(name, ret, std_level=1.0):
        d = {"mean": ret[0], "lo": ret[0] - ret[1], "hi": ret[0] + ret[1], "half_width": ret[1], "se": ret[1] / 2,
             "n": 8}
        before = {"std": 7.4, "saturation": 0.72, "std_level": std_level, "std_at_upper_frac": 1.0}
        return P.InterventionResult(name, "", 0.0, 1.0, "distribution", before, dict(before),
                                    {"return": d, "return_norm": d}, 0.0)

    def gain(m, h):
        return {"mean": m, "lo": m - h, "hi": m + h, "half_width": h, "se": h / 2, "n": 8}

    def decide(results, g, drift=1.0):
        return P.decide(results, g, 1.0, 200, pg_drift=drift)

    flat = (0.0, 0.01)
    results = {"eta0": iv("eta0", (0.3, 0.02)), "trained": iv("trained", flat), "adv_x10": iv("adv_x10", flat)}
    assert decide(results, gain(0.3, 0.02))[0] == "cause"
    assert decide(results, gain(0.3, 0.4))[0] == "undecided"  # interval crosses 0
    conclusion, statement = decide(results, gain(0.04, 0.01))  # real but below the effect size
    assert conclusion == "undecided" and "costs little" in statement
    results = {"eta0": iv("eta0", flat), "trained": iv("trained", flat), "adv_x10": iv("adv_x10", flat)}
    assert decide(results, gain(0.0, 0.01))[0] == "symptom"
    conclusion, statement = decide(results, gain(0.0, 0.01), drift=10.0)  # a direction K was too short to use
    assert conclusion == "undecided" and "more --updates" in statement
    freed = {k: iv(k, flat) for k in results}
    freed["eta0"].after["std_at_upper_frac"] = 0.0  # σ left the ceiling without the bonus, and gained nothing
    conclusion, statement = P.decide(freed, gain(0.0, 0.01), 1.0, 200, pg_drift=10.0, spread=0.09)
    assert conclusion == "undecided" and "σ leaves its ceiling" in statement and "little to gain" in statement
    # ... unless the imagined returns hardly vary at all: then there is nothing a longer probe could gain.
    conclusion, statement = P.decide(results, gain(0.0, 0.01), 1.0, 200, pg_drift=10.0, spread=0.04)
    assert conclusion == "symptom" and "whole spread of imagined returns is 0.04" in statement
    assert P.decide(results, gain(0.0, 0.01), 1.0, 200, pg_drift=10.0, spread=0.06)[0] == "undecided"
    low = {k: iv(k, flat, std_level=0.2) for k in results}
    conclusion, statement = decide(low, gain(0.0, 0.01))
    assert conclusion == "undecided" and "converged" in statement
    results["adv_x10"] = iv("adv_x10", (0.3, 0.02))  # a signal the bonus does not (yet) block
    conclusion, statement = decide(results, gain(0.0, 0.01))
    assert conclusion == "undecided" and "learning signal" in statement and "has not left its ceiling" in statement
    results = {"eta0": iv("eta0", (-0.3, 0.02)), "trained": iv("trained", flat), "adv_x10": iv("adv_x10", flat)}
    conclusion, statement = decide(results, gain(-0.3, 0.02))
    assert conclusion == "undecided" and "lowers imagined return" in statement
    few = {k: iv(k, flat) for k in ("eta0", "trained", "adv_x10")}
    few["eta0"].delta["return"]["n"] = 4
    assert decide(few, gain(0.0, 0.01))[0] == "undecided"
    assert decide({"eta0": few["eta0"]}, None)[0] == "undecided"


def test_entropy_holder_reads_sigma_levels_against_continuing_as_trained():
    def results(level, free_level, kept_level):
        def iv(name, after_level):
            before = {"std": 7.4, "std_level": level}
            return P.InterventionResult(name, "", 0.0, 1.0, "distribution", before,
                                        {"std": 7.4 * after_level / level, "std_level": after_level}, {}, 0.0)
        return {"eta0": iv("eta0", free_level), "trained": iv("trained", kept_level)}

    holder, statement = P.entropy_holder(results(1.0, 0.52, 1.0), 200)
    assert holder == "bonus" and "to 3.85 in 200 actor updates, with it to 7.4" in statement
    # Both fall alike: the policy gradient, not the bonus's absence, lowers σ (0.08 < 0.1 more).
    assert P.entropy_holder(results(1.0, 0.62, 0.7), 200)[0] == "not bonus"
    assert P.entropy_holder(results(1.0, 0.5, 0.625), 200)[0] == "bonus"  # both fall, but 0.125 more without
    # Neither moves and σ is still at its ceiling without the bonus: K was too short to tell.
    stuck = results(1.0, 0.98, 1.0)
    stuck["eta0"].after["std_at_upper_frac"] = 0.9
    holder, statement = P.entropy_holder(stuck, 200)
    assert holder == "pinned" and "90% of its components" in statement and "more --updates" in statement
    stuck["eta0"].after["std_at_upper_frac"] = 0.4  # off the ceiling, and the bonus's absence still moves it little
    assert P.entropy_holder(stuck, 200)[0] == "not bonus"
    holder, statement = P.entropy_holder(results(0.3, 0.1, 0.3), 200)
    assert holder == "not high" and "0.30 of its log range" in statement
    assert P.entropy_holder({"eta0": results(1.0, 0.5, 1.0)["eta0"]}, 200)[0] == "unknown"


def test_errors_name_the_path_and_what_is_expected(tmp_path, symptom_run):
    assert P.load_run(symptom_run / "checkpoint.pt")[0].to_dict() == P.load_run(symptom_run)[0].to_dict()
    with pytest.raises(DreamscopeError, match="no such directory.*config.yaml, checkpoint.pt, replay.npz"):
        P.probe(tmp_path / "nowhere")
    (tmp_path / "file").write_text("x")
    with pytest.raises(DreamscopeError, match="file.*is a file, not a directory"):
        P.probe(tmp_path / "file")
    partial = tmp_path / "partial"
    partial.mkdir()
    shutil.copy(symptom_run / "config.yaml", partial / "config.yaml")
    with pytest.raises(DreamscopeError, match=r"partial/checkpoint.pt and .*partial/replay.npz: missing"):
        P.probe(partial)
    shutil.copy(symptom_run / "replay.npz", partial / "replay.npz")
    (partial / "checkpoint.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(DreamscopeError, match="checkpoint.pt: cannot load the checkpoint"):
        P.probe(partial)
    shutil.copy(symptom_run / "checkpoint.pt", partial / "checkpoint.pt")
    text = (symptom_run / "config.yaml").read_text()
    (partial / "config.yaml").write_text(text.replace("units: 16", "units: 24"))
    with pytest.raises(DreamscopeError, match="checkpoint.pt: cannot load the checkpoint with config.yaml's model"):
        P.probe(partial)
    (partial / "replay.npz").write_bytes(b"garbage")
    with pytest.raises(DreamscopeError, match="replay.npz: cannot read the saved replay"):
        P.probe(partial)
    with pytest.raises(DreamscopeError, match="--updates '0'"):
        P.run(parse([str(symptom_run), "--updates", "0"]))
    with pytest.raises(DreamscopeError, match="--only nope: unknown intervention; accepted: eta0"):
        P.run(parse([str(symptom_run), "--only", "nope", "--updates", "1"]))
    with pytest.raises(DreamscopeError, match="--only action_entropy: does not apply"):
        P.run(parse([str(symptom_run), "--only", "action_entropy", "--updates", "1"]))


def test_diagnose_embeds_a_saved_probe_result_in_the_report(tmp_path, symptom_run, capsys):
    from dreamscope.cli import main

    assert P.run(parse([str(symptom_run), "--updates", "2", "--only", "eta0,trained", "--json", "--no-progress"])) == 0
    saved = tmp_path / "probe_ok.json"
    saved.write_text(capsys.readouterr().out)
    report = tmp_path / "report.html"
    assert main(["diagnose", str(symptom_run), "--html", str(report), "--probe", str(saved)]) == 0
    page = report.read_text()
    assert page.count("<section") == 1 and "eta0" in page
    capsys.readouterr()

    bad = tmp_path / "probe.json"
    bad.write_text("{not json")
    assert main(["diagnose", str(tmp_path), "--html", str(tmp_path / "r.html"), "--probe", str(bad)]) == 2
    assert "--probe" in capsys.readouterr().err
