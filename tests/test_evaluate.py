"""`dreamscope evaluate`: episode accounting on a scripted env, the Wilson interval, a trained run end to end."""

import json
import math

import gymnasium as gym
import numpy as np
import pytest

from dreamscope import evaluate as E
from dreamscope.cli import main
from dreamscope.config import Config, apply_overrides, apply_preset
from dreamscope.errors import DreamscopeError
from dreamscope.train import Trainer


class AlternatingEnv(gym.Env):
    """Episodes alternate: a 1-step win (score 1) and a 20-step draw (score 0). obs[0] is the step in the episode.

    Taking the first N episodes to finish over-counts the short ones; a fixed share per env does not.
    """

    def __init__(self):
        self.action_space = gym.spaces.Box(-1, 1, (2,), np.float32)
        self.observation_space = gym.spaces.Box(0, 100, (1,), np.float32)
        self.episode, self.t = -1, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.episode, self.t = self.episode + 1, 0
        return np.zeros(1, np.float32), {"win": 0}

    def step(self, action):
        self.t += 1
        short = self.episode % 2 == 0
        done = short or self.t >= 20
        win = int(short)
        return np.array([self.t], np.float32), float(win), bool(short), bool(done and not short), {"win": win}


def scripted(obs, is_first):
    """Asserts that is_first marks exactly the first step of each episode; one of two components saturated."""
    np.testing.assert_array_equal(is_first, obs[:, 0] == 0)
    return np.tile(np.array([1.0, 0.2], np.float32), (len(obs), 1))


def test_each_env_plays_its_share_so_short_episodes_are_not_over_counted():
    envs = gym.vector.SyncVectorEnv([AlternatingEnv for _ in range(4)], autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP)
    counted = []
    played = E.play(envs, scripted, episodes=40, seed=0, advance=lambda: counted.append(1))
    assert len(played["score"]) == 40 == len(counted)
    assert played["score"].mean() == 0.5  # 5 wins and 5 draws per env
    assert played["length"].mean() == pytest.approx((1 + 20) / 2)
    assert sorted(played["win"].tolist()) == [0] * 20 + [1] * 20
    assert played["saturation"] == 0.5
    # 42 episodes over 4 envs: two play 11 (6 wins each), two play 10 (5 each), however fast each finishes
    played = E.play(envs, scripted, episodes=42, seed=0)
    assert int(played["score"].sum()) == 2 * 6 + 2 * 5


def test_an_env_without_wins_reports_none():
    envs = gym.vector.SyncVectorEnv([lambda: gym.make("Pendulum-v1", max_episode_steps=5)],
                                    autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP)
    played = E.play(envs, lambda obs, first: np.zeros((len(obs), 1), np.float32), episodes=3, seed=0)
    assert played["win"] is None and played["length"].tolist() == [5, 5, 5]
    summary = E.summarise("r", 0, "Pendulum-v1", 1, "mode", played)
    assert summary.win_rate is None and summary.score_lo <= summary.score_mean <= summary.score_hi
    one = E.summarise("r", 0, "Pendulum-v1", 1, "mode", {**played, "score": played["score"][:1]})
    assert (one.score_lo, one.score_hi) == (-math.inf, math.inf)  # one episode bounds nothing


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("evaluate") / "run"
    cfg = apply_overrides(apply_preset(Config(), "tiny"), {
        "run.env": "airhockey-idle", "run.steps": 260, "run.prefill": 200, "run.batch_size": 4,
        "run.batch_length": 16, "run.train_ratio": 16, "run.log_every": 40})
    Trainer(cfg, path).train(progress=False)
    return path


def evaluate_json(capsys, *argv) -> list[dict]:
    assert main(["evaluate", *map(str, argv), "--json", "--no-progress"]) == 0
    return json.loads(capsys.readouterr().out)["evaluations"]


def test_a_trained_run_end_to_end(trained_run, capsys):
    first = evaluate_json(capsys, trained_run / "checkpoint.pt", "--episodes", 6, "--envs", 3)
    assert [(r["policy"], r["episodes"], r["step"]) for r in first] == [("sample", 6, 260), ("mode", 6, 260)]
    assert first[0]["env"] == "dreamscope/AirHockeyIdle-v1" and 0 <= first[0]["win_rate"] <= 1
    again = evaluate_json(capsys, trained_run, "--episodes", 6, "--envs", 3, "--policy", "mode")
    assert again == first[1:]  # same seed, same episodes
    on_defender = evaluate_json(capsys, trained_run, "--episodes", 2, "--policy", "sample", "--env", "airhockey")
    assert on_defender[0]["env"] == "dreamscope/AirHockey-v1"


def test_errors_name_what_is_wrong(trained_run, tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nowhere"), "--no-progress"]) == 2
    assert "no such directory; expected a dreamscope run directory" in capsys.readouterr().err
    (tmp_path / "config.yaml").write_text((trained_run / "config.yaml").read_text())
    assert main(["evaluate", str(tmp_path), "--no-progress"]) == 2
    assert "checkpoint.pt: missing" in capsys.readouterr().err
    for argv, message in ((["--policy", "greedy"], "--policy 'greedy': expected a comma-separated subset of sample, mode"),
                          (["--episodes", "0"], "--episodes '0': expected an integer ≥ 1"),
                          (["--env", "Pendulum-v1"], "cannot load the checkpoint with config.yaml's model")):
        assert main(["evaluate", str(trained_run), "--no-progress", *argv]) == 2
        assert message in capsys.readouterr().err
    with pytest.raises(DreamscopeError, match="--policy ''"):
        E.parse_policies("")


def test_the_report_shows_a_saved_evaluation_escaped(trained_run, tmp_path, capsys):
    assert main(["evaluate", str(trained_run), "--episodes", "2", "--json", "--no-progress"]) == 0
    saved = json.loads(capsys.readouterr().out)
    assert (saved["episodes"], saved["seed"]) == (2, E.DEFAULT_SEED)
    saved["evaluations"][0]["run"] = "/runs/<img src=x onerror=alert(1)>"  # the table shows the last part
    (tmp_path / "eval.json").write_text(json.dumps(saved))
    report = tmp_path / "report.html"
    assert main(["diagnose", str(trained_run), "--html", str(report), "--evaluation", str(tmp_path / "eval.json")]) == 0
    page = report.read_text()
    assert "Evaluation: new episodes from the checkpoint" in page and "<img src=x" not in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page and page.count("<td>mode</td>") == 1
    capsys.readouterr()
    (tmp_path / "bad.json").write_text(json.dumps({"evaluations": [{"run": "x"}]}))
    assert main(["diagnose", str(trained_run), "--html", str(report), "--evaluation", str(tmp_path / "bad.json")]) == 2
    err = capsys.readouterr().err
    assert "--evaluation" in err and "incomplete `dreamscope evaluate RUN --json` output" in err


def test_a_directory_of_runs_stands_for_its_runs(trained_run, tmp_path):
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    for name in ("b,seed=1", "a,seed=0"):
        (sweep_dir / name).symlink_to(trained_run, target_is_directory=True)
    (sweep_dir / "sweep.csv").write_text("name\n")
    (sweep_dir / "tune").mkdir()
    assert E.expand_run_dirs([str(sweep_dir), str(trained_run), str(tmp_path / "nowhere")]) == [
        str(sweep_dir / "a,seed=0"), str(sweep_dir / "b,seed=1"), str(trained_run), str(tmp_path / "nowhere")]


def test_reference_policies_put_scores_on_a_scale(capsys):
    bang = E.reference_policy("bang-bang", 4, seed=0)(np.zeros((500, 22), np.float32), np.ones(500, bool))
    assert set(np.unique(bang)) == {-1.0, 1.0} and abs((bang > 0).mean() - 0.5) < 0.03
    rows = {r["run"]: r for r in evaluate_json(capsys, "--reference", "random", "--reference",
                                               "dreamscope.envs.airhockey:chase_policy", "--env", "airhockey-idle",
                                               "--episodes", 20, "--envs", 4)}
    chase, random = rows["dreamscope.envs.airhockey:chase_policy"], rows["random"]
    # The hand-written chase policy wins most episodes against the still paddle (70% over many); random play few.
    assert chase["win_rate"] > 0.4 > random["win_rate"] and chase["score_mean"] > random["score_mean"] + 3
    assert (chase["policy"], chase["step"], chase["env"]) == ("reference", 0, "dreamscope/AirHockeyIdle-v1")
    assert random["saturation"] < 0.05  # uniform actions rarely pass |a| > 0.99


def test_references_play_the_runs_env_and_bad_ones_fail_first(trained_run, capsys, tmp_path):
    plot = tmp_path / "evaluation.png"
    rows = evaluate_json(capsys, trained_run, "--policy", "mode", "--reference", "bang-bang", "--episodes", 2,
                         "--plot", plot)
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [(r["policy"], r["env"]) for r in rows] == [("mode", "dreamscope/AirHockeyIdle-v1"),
                                                       ("reference", "dreamscope/AirHockeyIdle-v1")]
    assert rows[1]["saturation"] == 1.0
    for argv, message in (([str(trained_run), "--reference", "greedy"], "--reference 'greedy': accepted: random, bang-bang"),
                          ([str(trained_run), "--reference", "nowhere:policy"], "--reference='nowhere:policy': No module"),
                          (["--reference", "random"], "expected RUN_DIR (one or more), or --reference SPEC with --env"),
                          ([str(trained_run), "--plot", str(tmp_path / "eval.txt")],
                           "unknown image format .txt; expected a file ending in one of"),
                          ([str(trained_run), "--plot", str(tmp_path / "nowhere" / "eval.png")],
                           "cannot write plot " + str(tmp_path / "nowhere" / "eval.png") + ": directory")):
        assert main(["evaluate", *argv, "--no-progress"]) == 2
        assert message in capsys.readouterr().err


def test_the_plot_draws_each_interval_where_the_table_says(tmp_path):
    def row(run, policy, score, win):
        return E.Evaluation(run, 100, "env", 1, policy, 10, *score, 150.0, 0.1, *win)

    results = [row("runs/a,seed=0", "sample", (1.0, 0.2, 1.8), (0.3, 0.1, 0.6, 0.2)),
               row("runs/a,seed=0", "mode", (2.0, -math.inf, math.inf), (None, None, None, None)),  # one episode
               row("random", "reference", (-0.1, -0.5, 0.3), (0.05, 0.01, 0.2, 0.1))]
    ax_score, ax_win = E.plot_figure(results, seed=7).axes
    assert {t.get_text(): t.get_position()[1] for t in ax_score.get_yticklabels()} == {
        "a,seed=0 · sample": 2, "a,seed=0 · mode": 1, "random · reference": 0}  # the table's order, top down
    bars = [np.round(c.lines[2][0].get_segments()[0], 9).tolist() if c.lines[2] else None for c in ax_score.containers]
    assert bars == [[[0.2, 2.0], [1.8, 2.0]], None, [[-0.5, 0.0], [0.3, 0.0]]]  # unbounded: the point alone
    assert [c.lines[0].get_xdata()[0] for c in ax_win.containers] == [0.3, 0.05]  # no win rate, no point
    dotted = {ax: [line.get_xdata()[0] for line in ax.get_lines() if line.get_linestyle() == ":"]
              for ax in (ax_score, ax_win)}
    assert dotted == {ax_score: [-0.1], ax_win: [0.05]}  # the reference's mean through its panel
