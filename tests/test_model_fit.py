"""`dreamscope model-fit`: per-dimension explained variance of the decoded observations,
checked against an exact stub model (an integrator the latent tracks perfectly) and on a run."""

import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from dreamscope.agent.world_model import Latent
from dreamscope.cli import main
from dreamscope.diagnostics import model_fit as M
from dreamscope.dists import symlog
from dreamscope.errors import DreamscopeError
from dreamscope.replay import Replay


class IntegratorModel(nn.Module):
    """A world model that is exact for obs_t = obs_{t-1} + prev_action_t: the posterior's
    deterministic state is the observation, a prior step adds the action, the decoder
    returns the state (in symlog, as the real decoder). ``shift`` feeds the prior the action
    of another row, to show that a misaligned rollout is caught."""

    def __init__(self, decoder_offset: float = 0.0):
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(()))
        self.offset = decoder_offset
        self.rssm = self

    def embed(self, obs):
        return obs

    def initial(self, batch, device):
        return None

    def observe(self, embed, prev_action, is_first, state):
        return Latent(embed, torch.zeros(*embed.shape[:2], 1, 1)), None, None

    def img_step(self, state, action):
        return Latent(state.deter + action, state.stoch)

    def decoder(self, feat):
        return symlog(feat[..., :-1]) + self.offset


def integrator_replay(rows=400, dim=3, episode=100, seed=0):
    """One stream of random-walk observations, a new episode (a jump) every ``episode`` rows."""
    rng = np.random.default_rng(seed)
    action = rng.normal(0, 0.3, (rows, dim)).astype(np.float32)
    is_first = np.arange(rows) % episode == 0
    obs = np.zeros((rows, dim), np.float32)
    for t in range(rows):
        obs[t] = rng.normal(0, 2, dim) if is_first[t] else obs[t - 1] + action[t]
    action[is_first] = 0.0
    replay = Replay(rows, 1, dim, dim, seed=seed)
    replay.extend(0, {"obs": obs, "prev_action": action, "reward": np.zeros(rows, np.float32),
                      "is_first": is_first, "is_terminal": np.zeros(rows, bool)})
    return replay


def shares(sums, h):
    s = sums[h]
    return M.explained_share(s["err"], s["x"], s["x2"], s["n"])


def test_an_exact_model_explains_everything_at_every_horizon_and_episode_starts_are_left_out():
    sums = M.measure(IntegratorModel(), integrator_replay(), [0, 1, 5, 15], batches=6, batch_size=8)
    for h in (0, 1, 5, 15):
        per_dim, overall = shares(sums, h)
        np.testing.assert_allclose(per_dim, 1.0, atol=1e-9)
        assert overall == pytest.approx(1.0, abs=1e-9)
        assert sums[h]["err_env"].max() < 1e-9  # RMS error in env units is zero too
    starts = 6 * 8 * M.STARTS_PER_WINDOW
    assert sums[0]["n"] == starts
    # Windows that cross a jump would not be exact: they must be the ones dropped, more of them further out.
    assert starts > sums[1]["n"] > sums[5]["n"] > sums[15]["n"] > 0


def test_a_one_step_misaligned_rollout_is_not_exact():
    class Late(IntegratorModel):
        def __init__(self):
            super().__init__()
            self.previous = None

        def img_step(self, state, action):  # uses the action one row too late
            prev, self.previous = self.previous, action
            return Latent(state.deter + (prev if prev is not None else 0.0), state.stoch)

    sums = M.measure(Late(), integrator_replay(), [0, 5], batches=4, batch_size=8)
    assert shares(sums, 0)[1] == pytest.approx(1.0)
    assert shares(sums, 5)[1] < 0.99


def test_a_constant_offset_costs_its_square_over_the_variance():
    """Decoder off by o in symlog space: explained = 1 − o² / Var per dimension (closed form)."""
    offset = 0.25
    sums = M.measure(IntegratorModel(decoder_offset=offset), integrator_replay(), [0], batches=4, batch_size=8)
    s = sums[0]
    var = s["x2"] / s["n"] - (s["x"] / s["n"]) ** 2
    np.testing.assert_allclose(shares(sums, 0)[0], 1 - offset ** 2 / var, rtol=1e-6)  # float32 decoder


def test_explained_share_matches_a_direct_computation():
    rng = np.random.default_rng(3)
    target = rng.normal(0, [1.0, 0.1, 3.0], (500, 3))
    target[:, 1] = 0.7  # a dimension that does not vary
    pred = target + rng.normal(0, 0.2, target.shape)
    per_dim, overall = M.explained_share(((pred - target) ** 2).sum(0), target.sum(0), (target ** 2).sum(0), 500)
    mse, var = ((pred - target) ** 2).mean(0), target.var(0)
    np.testing.assert_allclose(per_dim[[0, 2]], 1 - mse[[0, 2]] / var[[0, 2]], rtol=1e-9)
    assert np.isnan(per_dim[1])
    assert overall == pytest.approx(1 - mse.sum() / var.sum(), rel=1e-9)
    assert np.isnan(M.explained_share(np.zeros(3), np.zeros(3), np.zeros(3), 0)[1])


def test_labels_come_from_the_env():
    hockey = M.observation_labels("airhockey-idle", 22)
    assert hockey[14:16] == ["puck x", "puck y"] and hockey[18] == "time left" and hockey[21] == "goal"
    assert M.observation_labels("dreamscope/AirHockey-v0", 21)[-1] == "hold"  # v0 has no goal flag
    assert M.observation_labels("Pendulum-v1", 3) == ["obs[0]", "obs[1]", "obs[2]"]
    assert M.observation_labels("no_such_module:Env-v0", 2) == ["obs[0]", "obs[1]"]


def test_labels_of_a_dmc_task():
    pytest.importorskip("dm_control", reason="needs the [dmc] extra")
    assert M.observation_labels("dmc:cartpole-balance", 5) == [
        "position[0]", "position[1]", "position[2]", "velocity[0]", "velocity[1]"]


def test_errors_name_the_option_and_what_is_accepted():
    for text in ("a,b", "", "-1,5"):
        with pytest.raises(DreamscopeError, match="--horizons"):
            M.parse_horizons(text)
    with pytest.raises(DreamscopeError, match=r"fewer than one window of 39 \(8 burn-in \+ 16 starts \+ horizon 15\)"):
        M.measure(IntegratorModel(), integrator_replay(rows=30, episode=1000), [0, 15], batches=1, batch_size=2)


def test_cli_on_a_trained_run(trained_run, capsys):
    assert main(["model-fit", str(trained_run), "--horizons", "0,3", "--batches", "2", "--batch-size", "4",
                 "--json"]) == 0
    fit = json.loads(capsys.readouterr().out)
    assert fit["horizons"] == [0, 3] and fit["rows"]["0"] == 2 * 4 * M.STARTS_PER_WINDOW
    assert [d["label"] for d in fit["dims"]] == ["obs[0]", "obs[1]", "obs[2]"]
    # Pendulum's cos, sin and speed all vary; each share is at most 1 and the spread is that of the replay.
    assert all(d["explained"]["0"] <= 1 and d["spread"] > 0 for d in fit["dims"])
    assert main(["model-fit", str(trained_run), "--horizons", "0", "--batches", "1", "--no-progress"]) == 0
    assert "posterior" in capsys.readouterr().out


def test_diagnose_embeds_a_saved_model_fit_escaped(trained_run, tmp_path, capsys):
    assert main(["model-fit", str(trained_run), "--batches", "1", "--batch-size", "2", "--horizons", "0,1",
                 "--json"]) == 0
    fit = json.loads(capsys.readouterr().out)
    fit["dims"][0]["label"] = "<script>alert(1)</script>"  # labels come from a user's env: escape them
    fit["dims"][1]["explained"]["0"] = None  # a dimension that does not vary
    saved = tmp_path / "fit.json"
    saved.write_text(json.dumps(fit))
    report = tmp_path / "report.html"
    assert main(["diagnose", str(trained_run), "--html", str(report), "--model-fit", str(saved)]) == 0
    page = report.read_text()
    assert "Model fit: what the world model sees" in page
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert math.isnan(M.ModelFit.from_dict(fit).dims[1].explained[0])
    capsys.readouterr()

    for content, message in (("{not json", "cannot read it"), ('{"probe": 1}', "no 'dims' key"),
                             ('{"dims": []}', "incomplete")):
        saved.write_text(content)
        assert main(["diagnose", str(trained_run), "--html", str(tmp_path / "r.html"), "--model-fit", str(saved)]) == 2
        err = capsys.readouterr().err
        assert "--model-fit" in err and message in err, err
