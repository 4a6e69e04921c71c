"""What each public Dreamer code base logs is read under canonical names, without --map.

One small fixture per code base (tests/fixtures/logs/codebases, provenance in its README),
written from that code base's logging calls; the assertions name the foreign key each
canonical series must come from and the settings its saved config must yield.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest

from dreamscope.errors import DreamscopeError
from dreamscope.logs import read_run
from dreamscope.logs.sidecar import task_action_dim
from dreamscope.metrics import CANONICAL_METRICS

CODEBASES = Path(__file__).parent / "fixtures" / "logs" / "codebases"
GAUSS_1D = 0.5 * math.log(2 * math.pi * math.e)


def copy(name: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(CODEBASES / name, tmp_path / name))


def test_official_2024_names_and_config_beside_the_log(tmp_path):
    run = read_run(copy("official2024_cartpole", tmp_path))
    assert run.format == "dreamerv3"
    assert run.sources["policy/entropy"] == "train/ent/action"
    assert run.sources["actor/grad_norm"] == "report/gradnorm/policy"  # the total train/opt/grad_norm stays raw
    assert "raw/train/opt/grad_norm" in run.series
    assert run.sources["return/mean"] == "train/tar" and run.sources["adv_norm/mean"] == "train/adv"
    meta = run.meta
    assert (meta["dist"], meta["std_min"], meta["std_max"], meta["eta"]) == ("bounded_normal", 0.1, 1.0, 0.03)
    assert (meta["task"], meta["action_dim"]) == ("dmc_cartpole_swingup", 1)
    assert meta["inferred"]["eta"].endswith("config.yaml: agent.imag_loss.actent = 0.03")
    assert meta["implementation_defaults"]["eta"] == 3e-4


def test_official_2023_names_and_gaussian_bounds_from_randomness(tmp_path):
    run = read_run(copy("official2023_walker", tmp_path))
    assert run.format == "dreamerv3"
    assert run.sources["actor/grad_norm"] == "train/actor_opt_grad_norm"
    assert run.get("actor/grad_norm").values[-1] == round(3.0 * 0.5**9, 6)
    assert run.sources["loss/policy"] == "train/actor_opt_loss"
    # entropy = lo + (hi - lo) * randomness with lo, hi of a 6-D Gaussian with sigma in [0.1, 1]
    assert (run.meta["dist"], run.meta["action_dim"]) == ("bounded_normal", 6)
    assert run.get("policy/entropy_max").values[0] == pytest.approx(6 * GAUSS_1D, abs=1e-4)
    assert run.get("policy/entropy_min_ref").values[0] == pytest.approx(6 * (GAUSS_1D + math.log(0.1)), abs=1e-4)


def test_dreamerv3_torch_names(tmp_path):
    run = read_run(copy("dreamerv3-torch_pendulum", tmp_path))
    assert run.format == "dreamerv3-torch" and run.meta["implementation"] == "dreamerv3-torch"
    assert run.sources["actor/grad_norm"] == "actor_grad_norm"
    assert run.sources["policy/entropy"] == "actor_entropy"
    assert run.sources["episode/score"] == "train_return"
    assert run.get("return/scale").values.tolist() == [180.0 + i for i in range(1, 9)]  # EMA_095 - EMA_005
    assert "raw/value_grad_norm" in run.series and "raw/model_grad_norm" in run.series
    assert "dist" not in run.meta  # no config beside: only the code's defaults, kept apart
    assert run.meta["implementation_defaults"]["dist"] == "bounded_normal"


def test_r2dreamer_names_and_hydra_config(tmp_path):
    run = read_run(copy("r2dreamer_cartpole", tmp_path))
    assert run.format == "r2dreamer"
    assert run.sources["policy/entropy"] == "train/action_entropy"
    assert run.get("return/scale").values.tolist() == [10.0 + i for i in range(8)]
    assert (run.meta["dist"], run.meta["std_min"], run.meta["std_max"]) == ("bounded_normal", 0.1, 1.0)
    assert (run.meta["eta"], run.meta["action_dim"]) == (3e-4, 1)
    assert run.meta["inferred"]["dist"].endswith(".hydra/config.yaml: model.actor.dist.cont.name = bounded_normal")


def test_naturaldreamer_csv_and_its_code_constants(tmp_path):
    run = read_run(copy("naturaldreamer_pendulum", tmp_path))
    assert run.format == "naturaldreamer"
    assert [run.sources[k] for k in ("policy/entropy", "episode/score", "adv_norm/mean", "loss/policy")] == \
        ["entropies", "totalReward", "advantages", "actorLoss"]
    defaults = run.meta["implementation_defaults"]
    assert (defaults["dist"], defaults["logstd_min"], defaults["logstd_max"]) == ("tanh_normal", -5.0, 2.0)


def test_wandb_export_of_the_seed_fork(tmp_path):
    run = read_run(copy("wandb_seed", tmp_path))
    assert run.format == "csv" and run.meta["step_column"] == "_step"
    expected = {"policy/entropy": "behavior/entropy_mean", "episode/score": "stats/mean_reward",
                "actor/grad_norm": "gradients/actor_norm", "adv_norm/abs_mean": "behavior/advantages_abs_mean",
                "return/scale": "values/norm_scale", "return/lo": "values/norm_low", "return/hi": "values/norm_high",
                "reward/imag_mean": "imagination/reward_mean", "policy/std_min": "actor/min_std",
                "loss/policy": "behavior/actor_loss", "episode/length": "episode/length_mean"}
    assert {k: run.sources.get(k) for k in expected} == expected
    assert "raw/stats/win_rate" in run.series  # a share of wins, not episode/win's +1/0/-1


def test_sheeprl_csv_logger_and_its_config(tmp_path):
    run = read_run(copy("sheeprl_csv", tmp_path))
    assert run.meta["implementation"] == "sheeprl"
    assert run.sources["actor/grad_norm"] == "Grads/actor" and run.sources["episode/score"] == "Rewards/rew_avg"
    assert run.get("actor/grad_norm").steps.tolist() == [2000 * (i + 1) for i in range(8)]
    # distribution.type auto on a continuous task is sheeprl's scaled_normal: N(tanh(mean), sigma in [min, max])
    assert (run.meta["dist"], run.meta["action_dim"], run.meta["eta"]) == ("bounded_normal", 1, 3e-4)


def test_sheeprl_tensorboard_layout_with_hydra_and_version_config(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    run_dir = tmp_path / "logs" / "runs" / "dreamer_v3" / "walker_walk" / "2026-12-08_04-18-43_dreamer_v3_walker_walk_0"
    writer = SummaryWriter(str(run_dir / "version_0"))
    for i in range(6):
        writer.add_scalar("Loss/policy_loss", -0.01 * i, 4096 * i)
        writer.add_scalar("Grads/actor", 10.0 ** (-2 * i), 4096 * i)
        writer.add_scalar("Rewards/rew_avg", 30.0 + i, 4096 * i)
        writer.add_scalar("Params/exploration_amount", 0.3, 4096 * i)
    writer.close()
    (run_dir / ".hydra").mkdir()
    (run_dir / ".hydra" / "config.yaml").write_text(
        "algo:\n  actor:\n    ent_coef: 0.003\n    min_std: 0.1\n    max_std: 1.0\ndistribution:\n  type: tanh_normal\n"
        "env:\n  id: walker_walk\n")
    run = read_run(tmp_path / "logs")
    assert run.meta["implementation"] == "sheeprl"
    assert run.get("actor/grad_norm").values.tolist() == pytest.approx([10.0 ** (-2 * i) for i in range(6)])
    assert "raw/Params/exploration_amount" in run.series
    assert (run.meta["dist"], run.meta["eta"], run.meta["action_dim"]) == ("tanh_normal", 0.003, 6)
    assert run.meta["inferred"]["dist"].startswith(str(run_dir / "version_0" / ".." / ".hydra" / "config.yaml"))


def test_wandb_history_jsonl_with_underscore_step_and_lookalikes(tmp_path):
    path = tmp_path / "history.jsonl"
    path.write_text("".join(f'{{"_step": {10 * i}, "_runtime": {i}.5, "behavior/entropy_mean": {2 - 0.1 * i:.2f}, '
                            f'"gradients/actor_norm": 0.5, "stats/mean_reward": {i}, '
                            f'"media": {{"_type": "histogram", "bins": [1, 2]}}}}\n' for i in range(5)))
    run = read_run(path)
    assert run.format == "jsonl"
    assert run.get("policy/entropy").steps.tolist() == [0, 10, 20, 30, 40]
    assert [run.sources[k] for k in ("policy/entropy", "actor/grad_norm", "episode/score")] == \
        ["behavior/entropy_mean", "gradients/actor_norm", "stats/mean_reward"]
    assert any("'media' holds dict values" in w for w in run.warnings)


@pytest.mark.parametrize("key", ["actor_entropy", "policy_entropy", "entropy", "entropy_mean", "behavior/entropy"])
def test_entropy_lookalikes_in_a_generic_csv(tmp_path, key):
    path = tmp_path / "log.csv"
    path.write_text(f"step,{key},actor_grad_norm\n" + "".join(f"{i},{1.0 - i / 10},{i}\n" for i in range(4)))
    run = read_run(path)
    assert run.sources["policy/entropy"] == key and run.sources["actor/grad_norm"] == "actor_grad_norm"


def test_canonical_names_win_over_lookalikes(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("step,entropy,policy/entropy\n0,5.0,1.0\n1,5.0,0.9\n")
    run = read_run(path)
    assert run.sources["policy/entropy"] == "policy/entropy" and "raw/entropy" in run.series


def test_unknown_map_target_lists_every_canonical_name(tmp_path):
    path = tmp_path / "log.csv"
    path.write_text("step,foo\n0,1\n")
    with pytest.raises(DreamscopeError) as error:
        read_run(path, mapping={"foo": "entropy"})
    message = str(error.value)
    assert "--map foo=entropy" in message and all(name in message for name in CANONICAL_METRICS)


def test_a_config_that_is_not_yaml_or_has_bad_values_costs_a_warning(tmp_path):
    folder = copy("official2024_cartpole", tmp_path)
    (folder / "config.yaml").write_text("agent: {policy: {minstd: 1.0, maxstd: 0.1}, imag_loss: {actent: -1}}\n")
    run = read_run(folder)
    assert "std_min" not in run.meta and "eta" not in run.meta
    assert any("not increasing" in w for w in run.warnings) and any("actent = -1" in w for w in run.warnings)
    (folder / "config.yaml").write_text("agent: [unclosed\n")
    run = read_run(folder)
    assert any(w.startswith(f"{folder / 'config.yaml'}: not readable as YAML") for w in run.warnings)


@pytest.mark.parametrize("task, dim", [("dmc_walker_walk", 6), ("Pendulum-v1", 1), ("gym_MountainCarContinuous-v0", 1),
                                       ("cartpole_swingup_sparse", 1), ("HalfCheetah-v5", 6), ("crafter_reward", None)])
def test_task_action_dims(task, dim):
    assert task_action_dim(task) == dim


def test_every_lookalike_target_is_canonical():
    from dreamscope.logs import names

    for table in (*names.TABLES.values(), names.LOOKALIKES):
        for source, target in table.exact.items():
            assert target in CANONICAL_METRICS or target.startswith(("loss/", "perf/")), (table.implementation, source)


def test_a_loose_log_does_not_take_a_config_from_the_folder_above(tmp_path):
    (tmp_path / "config.yaml").write_text("task: dmc_walker_walk\nactent: 0.1\n")
    (tmp_path / "logs").mkdir()
    path = tmp_path / "logs" / "metrics.jsonl"
    path.write_text('{"step": 1, "actor_entropy": 1.0}\n')
    run = read_run(path)
    assert "eta" not in run.meta and "action_dim" not in run.meta and "config_file" not in run.meta


def test_naturaldreamer_run_folder_layout_and_its_config(tmp_path):
    """NaturalDreamer writes <metricsFolder>/<environmentName>_<runName>.csv; its .yml names both."""
    (tmp_path / "metrics" / "Pixels").mkdir(parents=True)
    shutil.copy(CODEBASES / "naturaldreamer_pendulum" / "Pendulum-v1.csv", tmp_path / "metrics" / "Pixels" / "Pendulum-v1_s0.csv")
    (tmp_path / "other.yml").write_text("environmentName: Pixels/Pendulum-v1\nrunName: s1\ndreamer:\n  entropyScale: 0.1\n")
    (tmp_path / "run.yml").write_text("environmentName: Pixels/Pendulum-v1\nrunName: s0\ndreamer:\n  entropyScale: 0.003\n"
                                      "  actor:\n    min_std: 0.0001\n")
    run = read_run(tmp_path)
    assert run.format == "naturaldreamer"
    assert (run.meta["eta"], run.meta["action_dim"], run.meta["config_file"]) == (0.003, 1, str(tmp_path / "run.yml"))
    assert "std_min" not in run.meta  # NaturalDreamer's actor ignores it: log sigma is squashed into (-5, 2) in code
