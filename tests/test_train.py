"""The training loop end to end at a tiny size: determinism, kill + resume, config errors."""

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from dreamscope.cli import main
from dreamscope.config import Config, apply_overrides, apply_preset, dump_yaml, load_run_config, load_yaml
from dreamscope.errors import DreamscopeError
from dreamscope.train import Trainer

FAST = {"run.env": "Pendulum-v1", "run.steps": 360, "run.prefill": 200, "run.batch_size": 4, "run.batch_length": 16,
        "run.train_ratio": 16, "run.log_every": 40, "run.signals_every": 2, "optim.warmup": 10}


def fast_config(**extra) -> Config:
    return apply_overrides(apply_preset(Config(), "tiny"), {**FAST, **extra})


def read_metrics(logdir):
    return [json.loads(line) for line in (logdir / "metrics.jsonl").read_text().splitlines()]


def without_perf(lines):
    return [{k: v for k, v in line.items() if not k.startswith("perf/")} for line in lines]


def test_same_seed_same_metrics_and_every_signal_logged(tmp_path):
    # Two envs, so that two episodes of different scores end within one log line.
    trainers = {}
    for name in ("a", "b"):  # one after the other: a Trainer seeds torch's global generator
        trainers[name] = Trainer(fast_config(**{"run.envs": 2, "run.steps": 420}), tmp_path / name)
        trainers[name].train(progress=False)
    a, b = read_metrics(tmp_path / "a"), read_metrics(tmp_path / "b")
    assert without_perf(a) == without_perf(b)
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from dreamscope.metrics import CANONICAL_METRICS

    # Pendulum has no wins, and a fixed η has no controller target: every other canonical name is written,
    # except actor/grad_norm, which readers take from other implementations (ours logs its two terms' norms).
    expected = set(CANONICAL_METRICS) - {"episode/win", "entropy/target", "actor/grad_norm"}
    assert expected <= set().union(*a), expected - set().union(*a)
    # Each env's first episode, from the replay: its reset row, then Pendulum's 200 steps.
    replay = trainers["a"].replay.data
    assert replay["is_first"][:, [0, 201]].all() and not replay["is_first"][:, 1:201].any()
    scores = replay["reward"][:, 1:201].astype(np.float64).sum(1)
    assert abs(scores[0] - scores[1]) > 1.0
    [episodes] = [line for line in a if "episode/score" in line]
    assert episodes["episode/score"] == pytest.approx(scores.mean(), rel=1e-6)
    assert episodes["episode/score_max"] == pytest.approx(scores.max(), rel=1e-6)
    tags = set(EventAccumulator(str(tmp_path / "a" / "tb")).Reload().Tags()["scalars"])
    assert expected <= tags, expected - tags
    meta = json.loads((tmp_path / "a" / "meta.json").read_text())
    assert meta["action_dim"] == 1 and meta["dist"] == "bounded_normal"
    assert meta["entropy_max"] == pytest.approx(0.5 * np.log(2 * np.pi * np.e))


def test_resuming_on_an_env_of_other_sizes_says_why(run_copy):
    """A checkpoint of a 3-value observation (Pendulum) cannot continue on a 2-value one: the
    error names the first mismatching weight and what to do, not PyTorch's whole list."""
    cfg = load_run_config(run_copy / "config.yaml")
    cfg.run.env = "MountainCarContinuous-v0"
    with pytest.raises(DreamscopeError, match=r"size mismatch for .*other observation or action sizes than "
                                              r"'MountainCarContinuous-v0'") as err:
        Trainer(cfg, run_copy, resume=True)
    assert str(err.value).count("size mismatch") == 1


def test_refuses_to_overwrite_an_existing_run(trained_run):
    # The shared run (tests/conftest.py) is this module's fast config stopped at step 220.
    assert load_run_config(trained_run / "config.yaml").to_dict() == fast_config(**{"run.steps": 220}).to_dict()
    with pytest.raises(DreamscopeError, match="already holds a run"):
        Trainer(fast_config(), trained_run)


def test_kill_and_resume_continues_counters_and_replay(tmp_path):
    logdir = tmp_path / "run"
    cmd = [sys.executable, "-m", "dreamscope.cli", "train", "--preset", "tiny", "--logdir", str(logdir), "--no-progress",
           *[f"--set={k}={v}" for k, v in {**FAST, "run.steps": 5000, "run.checkpoint_every": 0.5}.items()]]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt = logdir / "checkpoint.pt"
    deadline = time.time() + 120
    while time.time() < deadline and not (ckpt.exists() and len(read_metrics(logdir) if (logdir / "metrics.jsonl").exists() else []) >= 8):
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert ckpt.exists(), proc.stderr.read().decode()

    import torch

    saved_step = int(torch.load(ckpt, weights_only=True)["counters"]["step"])
    saved_updates = int(torch.load(ckpt, weights_only=True)["counters"]["updates"])
    target = saved_step + 120
    assert main(["train", "--resume", str(logdir), "--steps", str(target), "--no-progress"]) == 0
    state = torch.load(ckpt, weights_only=True)
    assert int(state["counters"]["step"]) == target
    assert int(state["counters"]["updates"]) > saved_updates
    with np.load(logdir / "replay.npz") as replay:
        assert int(replay["total"]) == target  # the replay kept every row up to the checkpoint
    steps = [line["step"] for line in read_metrics(logdir)]
    assert steps == sorted(set(steps)) and steps[-1] == target
    assert all(step % FAST["run.log_every"] == 0 for step in steps[:-1])  # the same grid before and after the kill


class _Killed(BaseException):
    """Stands for SIGKILL at one exact point of a checkpoint write."""


@pytest.mark.parametrize("kill_at", ["checkpoint", "replay rename"])
def test_a_kill_while_checkpointing_resumes_with_the_replay_of_that_checkpoint(run_copy, monkeypatch, kill_at):
    """The checkpoint and the replay are two files: a kill between their writes must not resume the
    counters of one with the rows of the other (rows collected twice, or lost)."""
    import os

    import torch

    real_save, real_replace = torch.save, os.replace

    def save(obj, path, *args, **kwargs):
        if kill_at == "checkpoint" and str(path).endswith("checkpoint.pt.tmp"):
            raise _Killed
        return real_save(obj, path, *args, **kwargs)

    def replace(src, dst):
        if kill_at == "replay rename" and str(dst).endswith("replay.npz"):
            raise _Killed
        return real_replace(src, dst)

    monkeypatch.setattr(torch, "save", save)
    monkeypatch.setattr(os, "replace", replace)
    cfg = load_run_config(run_copy / "config.yaml")
    cfg.run.steps = 300
    with pytest.raises(_Killed):
        Trainer(cfg, run_copy, resume=True).train(progress=False)
    monkeypatch.undo()

    saved = int(torch.load(run_copy / "checkpoint.pt", weights_only=True)["counters"]["step"])
    assert saved == (220 if kill_at == "checkpoint" else 300)
    resumed = Trainer(cfg, run_copy, resume=True)
    assert resumed.step == saved and resumed.replay.total == saved
    assert not (run_copy / "replay.staged.npz").exists()
    resumed.train(progress=False)
    with np.load(run_copy / "replay.npz") as replay:
        assert int(replay["total"]) == 300


def test_a_replay_that_belongs_to_no_checkpoint_is_refused(run_copy):
    with np.load(run_copy / "replay.npz") as saved:
        arrays = dict(saved)
    arrays["total"] = np.int64(180)
    np.savez(run_copy / "replay.npz", **arrays)
    with pytest.raises(DreamscopeError, match=r"saved with 220 replay rows, but replay.npz holds 180; delete replay.npz"):
        Trainer(load_run_config(run_copy / "config.yaml"), run_copy, resume=True)


def test_config_errors_name_the_key(tmp_path, capsys):
    with pytest.raises(DreamscopeError, match="unknown config key 'actor.entropy_scal'.*actor.entropy_scale"):
        apply_overrides(Config(), {"actor.entropy_scal": "1"})
    with pytest.raises(DreamscopeError, match="actor.entropy_scale='lots' is not a valid float"):
        apply_overrides(Config(), {"actor.entropy_scale": "lots"})
    with pytest.raises(DreamscopeError, match="actor.dist='gauss'; accepted: bounded_normal, tanh_normal"):
        apply_overrides(Config(), {"actor.dist": "gauss"})
    bad = tmp_path / "bad.yaml"
    bad.write_text("actor:\n  units: many\n")
    with pytest.raises(DreamscopeError, match="bad.yaml: actor.units='many' is not a valid int"):
        load_yaml(bad)
    assert main(["train", "--env", "NoSuchEnv-v9", "--preset", "tiny", "--logdir", str(tmp_path / "x"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "NoSuchEnv-v9" in err


def test_a_run_written_before_a_key_existed_keeps_what_it_did(tmp_path):
    """A run's config.yaml holds every key, so a key it lacks is younger than the run: resumed,
    probed or re-swept, the run keeps the old behaviour (no replay value loss, thresholded
    continuation) instead of the new default; a user's config file that leaves the keys out gets
    the defaults."""
    dump_yaml(Config(), tmp_path / "config.yaml")
    recorded = load_run_config(tmp_path / "config.yaml")
    assert (recorded.critic.replay_loss, recorded.behavior.continuation) == (0.3, "prob")
    young = ("replay_loss", "continuation")
    old = "\n".join(line for line in (tmp_path / "config.yaml").read_text().splitlines()
                    if not any(key in line for key in young))
    (tmp_path / "config.yaml").write_text(old)
    legacy = load_run_config(tmp_path / "config.yaml")
    assert (legacy.critic.replay_loss, legacy.behavior.continuation) == (0.0, "threshold")
    users = load_yaml(tmp_path / "config.yaml")
    assert (users.critic.replay_loss, users.behavior.continuation) == (0.3, "prob")


def test_a_run_records_the_env_id_so_an_old_alias_still_means_v0(tmp_path):
    """The air-hockey aliases moved to v1 (the goal flag: 22 values). A new run records the id
    itself; a run that recorded an alias predates v1 and resumes on v0, its 21 values."""
    trainer = Trainer(fast_config(**{"run.env": "airhockey-idle"}), tmp_path / "new")
    assert trainer.envs.single_observation_space.shape == (22,)
    trainer.envs.close()
    recorded = load_run_config(tmp_path / "new" / "config.yaml")
    assert recorded.run.env == "dreamscope/AirHockeyIdle-v1"
    old = (tmp_path / "new" / "config.yaml").read_text().replace("dreamscope/AirHockeyIdle-v1", "airhockey-idle")
    (tmp_path / "old.yaml").write_text(old)
    assert load_run_config(tmp_path / "old.yaml").run.env == "dreamscope/AirHockeyIdle-v0"
    assert load_yaml(tmp_path / "old.yaml").run.env == "airhockey-idle"  # a user's file: today's alias


def test_reward_scale_and_smoothing_change_only_what_replay_stores(tmp_path):
    trainer = Trainer(fast_config(**{"run.steps": 450, "run.reward_scale": 0.0}), tmp_path / "zero")
    trainer.train(progress=False)
    assert np.all(trainer.replay.data["reward"] == 0)
    assert all(line["episode/score"] < -100 for line in read_metrics(tmp_path / "zero") if "episode/score" in line)

    smooth = Trainer(fast_config(**{"run.steps": 450, "run.reward_smoothing": "uniform"}), tmp_path / "smooth")
    smooth.train(progress=False)
    assert smooth.replay.total == 402  # two whole episodes (reset row + 200 steps); the third is held
    stored = smooth.replay.data["reward"][0, 1:201]
    assert np.all(stored < 0) and np.abs(np.diff(stored)).max() < 3.0

    # The held third episode survives a kill: the resume replays it, smoothed, as a truncated episode.
    held = [row["reward"] for row in smooth.pending[0]]
    resumed = Trainer(load_run_config(tmp_path / "smooth" / "config.yaml"), tmp_path / "smooth", resume=True)
    assert resumed.replay.total == 450 and resumed.step == 450
    from dreamscope.rewards import smooth_rewards

    expected = smooth_rewards(np.array(held, dtype=np.float32).reshape(-1), "uniform", 3.0, 9, 0.33)
    np.testing.assert_allclose(resumed.replay.data["reward"][0, 402:450], expected, rtol=1e-6)


@pytest.mark.parametrize("device, message", [("gpu0", "not a torch device"), ("mps", "runs on cpu or cuda")])
def test_a_device_this_machine_cannot_use_is_named_before_anything_is_built(tmp_path, device, message):
    with pytest.raises(DreamscopeError, match=f"run.device='{device}'.*{message}"):
        Trainer(fast_config(**{"run.device": device}), tmp_path / "run")
    assert not (tmp_path / "run").exists()


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has a CUDA GPU")
def test_cuda_on_a_machine_without_one_says_so(tmp_path):
    with pytest.raises(DreamscopeError, match="run.device='cuda'.*sees no CUDA GPU; use run.device=cpu"):
        Trainer(fast_config(**{"run.device": "cuda"}), tmp_path)


def test_a_scripted_prefill_policy_plays_the_prefill_and_the_random_one_stays_uniform(tmp_path):
    """``run.prefill_policy=module:function`` fills the replay with that policy's play, so the
    stored action after every row is the function of that row's observation."""
    from dreamscope.envs.airhockey import chase_policy

    trainer = Trainer(fast_config(**{"run.env": "airhockey-idle", "run.steps": 300, "run.prefill": 300,
                                     "run.prefill_policy": "dreamscope.envs.airhockey:chase_policy"}), tmp_path / "chase")
    trainer.train(progress=False)
    data = {k: v[0, :trainer.replay.total] for k, v in trainer.replay.data.items()}
    follows = np.flatnonzero(~data["is_first"][1:])  # rows whose next row continues the episode
    assert len(follows) > 250
    expected = np.stack([chase_policy(o) for o in data["obs"][follows]])
    np.testing.assert_array_equal(data["prev_action"][follows + 1], expected)
    assert data["is_terminal"].any()  # the open goal: the chase policy scores within 300 steps

    from dreamscope.train import load_prefill_policy

    obs = np.zeros((3, 22), np.float32)
    drawn = load_prefill_policy("random", 4)(obs, np.random.default_rng(9))
    np.testing.assert_array_equal(drawn, np.random.default_rng(9).uniform(-1, 1, (3, 4)).astype(np.float32))


@pytest.mark.parametrize("spec, message", [
    ("chase", "run.prefill_policy='chase'; accepted: random, or module:function"),
    ("no_such_module:f", "No module named 'no_such_module'"),
    ("dreamscope.envs.airhockey:no_such_policy", "has no attribute 'no_such_policy'"),
    ("dreamscope.envs.airhockey:GOAL_REWARD", "is not a function"),
])
def test_a_prefill_policy_that_cannot_be_loaded_is_named(spec, message):
    from dreamscope.train import load_prefill_policy

    with pytest.raises(DreamscopeError, match=message.replace("(", r"\(")):
        load_prefill_policy(spec, 4)


def test_a_prefill_policy_that_cannot_be_loaded_leaves_no_run_directory(tmp_path):
    """The policy is loaded before the run directory is made, so a typo leaves nothing to clean up."""
    from dreamscope.train import Trainer

    cfg = apply_overrides(Config(), {"run.env": "Pendulum-v1", "run.prefill_policy": "no_such_module:act"})
    with pytest.raises(DreamscopeError, match="No module named 'no_such_module'"):
        Trainer(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_prefill_policy_with_the_wrong_action_size_is_named():
    from dreamscope.train import load_prefill_policy

    act = load_prefill_policy("dreamscope.envs.airhockey:chase_policy", 2)
    with pytest.raises(DreamscopeError, match=r"returned actions of shape \(4,\); this env needs \(2,\)"):
        act(np.zeros((1, 22), np.float32), np.random.default_rng(0))


def test_meta_records_the_return_normaliser_and_has_one_format(tmp_path):
    """meta.json carries the normaliser's kind and limit, so the doctor uses the run's limit instead of
    assuming 1; the instrument API writes the same keys for the same policy."""
    from dreamscope.diagnostics.doctor import diagnose
    from dreamscope.instrument import ActorSignals
    from dreamscope.logs import read_run

    cfg = fast_config(**{"behavior.retnorm": "std", "behavior.retnorm_limit": 2.0})
    Trainer(cfg, tmp_path / "train").envs.close()  # the constructor writes meta.json
    meta = json.loads((tmp_path / "train" / "meta.json").read_text())
    assert (meta["return_norm"], meta["return_limit"]) == ("std", 2.0)
    ActorSignals(tmp_path / "instrumented", action_dim=1, dist="bounded_normal", std_bounds=(0.1, 1.0), eta=3e-4,
                 return_norm="std", return_limit=2.0, env="Pendulum-v1")
    instrumented = json.loads((tmp_path / "instrumented" / "meta.json").read_text())
    # The same keys but the head's parametrisation (std_bound); the instrument API takes bounds in log σ.
    trained = {key: value for key, value in meta.items() if key not in ("std_bound", "implementation")}
    assert instrumented.pop("implementation") == "instrumented" and instrumented.keys() == trained.keys()
    for key, value in trained.items():
        assert instrumented[key] == (pytest.approx(value, rel=1e-12) if isinstance(value, float) else value), key

    (tmp_path / "train" / "metrics.jsonl").write_text('{"step": 0, "policy/entropy": 0.5}\n')
    assert diagnose(read_run(tmp_path / "train")).return_limit == 2.0


def test_resume_applies_what_can_change_and_records_it_beside_the_config(run_copy, capsys):
    started = (run_copy / "config.yaml").read_text()
    argv = ["train", "--resume", str(run_copy), "--steps", "300", "--set", "optim.lr=1e-3",
            "--set", "actor.entropy_scale=0.01", "--seed", "0", "--preset", "tiny", "--no-progress"]
    assert main(argv) == 0
    assert (run_copy / "config.yaml").read_text() == started  # as the run was started
    [line] = [json.loads(text) for text in (run_copy / "config_changes.jsonl").read_text().splitlines()]
    assert line == {"step": 220, "changes": {
        "run.steps": {"from": 220, "to": 300, "by": "--steps 300"},
        "actor.entropy_scale": {"from": 3e-4, "to": 0.01, "by": "--set actor.entropy_scale=0.01"},
        "optim.lr": {"from": 4e-5, "to": 1e-3, "by": "--set optim.lr=1e-3"}}}
    cfg = load_run_config(run_copy / "config.yaml")  # what a later resume, probe or evaluation sees
    assert (cfg.run.steps, cfg.optim.lr, cfg.actor.entropy_scale) == (300, 1e-3, 0.01)
    etas = {line["step"]: line["entropy/eta"] for line in read_metrics(run_copy) if "entropy/eta" in line}
    assert all(eta == pytest.approx(3e-4 if step <= 220 else 0.01, rel=1e-9) for step, eta in etas.items())
    assert max(etas) == 300
    assert json.loads((run_copy / "meta.json").read_text())["eta"] == 0.01
    import torch

    state = torch.load(run_copy / "checkpoint.pt", weights_only=True)
    assert state["counters"]["step"] == 300
    assert state["optimizer"]["opt"]["param_groups"][0]["lr"] == pytest.approx(1e-3)


@pytest.mark.parametrize("argv, option, key", [
    (["--seed", "1"], "--seed 1", "run.seed=1"),
    (["--env", "MountainCarContinuous-v0"], "--env MountainCarContinuous-v0", "run.env='MountainCarContinuous-v0'"),
    (["--set", "world_model.deter=64"], "--set world_model.deter=64", "world_model.deter=64"),
    (["--preset", "size1m"], "--preset size1m", "world_model.deter=512"),
    (["--set", "run.steps=400", "--set", "behavior.retnorm_limit=2"], "--set behavior.retnorm_limit=2",
     "behavior.retnorm_limit=2.0"),
])
def test_resume_refuses_what_cannot_change_and_touches_nothing(tmp_path, capsys, argv, option, key):
    cfg = fast_config(**{"run.steps": 220})
    dump_yaml(cfg, tmp_path / "config.yaml")  # the refusal comes before the run is opened
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["train", "--resume", str(tmp_path), *argv, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert f"{option}: {key} (the run has" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_resume_refuses_another_logdir_and_accepts_its_own(tmp_path, capsys):
    cfg = fast_config(**{"run.steps": 220})
    dump_yaml(cfg, tmp_path / "config.yaml")
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(["train", "--resume", str(tmp_path), "--logdir", str(tmp_path / "elsewhere"), "--no-progress"]) == 2
    assert "--logdir" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_resume_options_that_repeat_the_run_change_nothing(tmp_path):
    import argparse

    from dreamscope.envs.factory import resolve_env_id
    from dreamscope.resume import option_sources, requested_changes

    cfg = fast_config(**{"run.env": "dreamscope/AirHockey-v1"})
    args = argparse.Namespace(preset="tiny", config=None, set=["run.prefill=200"], env="airhockey", steps=360, seed=0)
    same, changes = requested_changes(cfg, option_sources(args), resolve_env_id)
    assert changes == {} and same.to_dict() == cfg.to_dict()


def test_every_config_key_is_decided_for_resume():
    from dreamscope.config import _all_keys
    from dreamscope.resume import APPLIES, REFUSED

    keys = set(_all_keys(Config()))
    assert not APPLIES.keys() & REFUSED.keys()
    assert APPLIES.keys() | REFUSED.keys() == keys


def test_resume_refuses_a_new_eta_where_the_checkpoint_holds_it():
    from dreamscope.resume import requested_changes

    fixed, target = fast_config(), fast_config(**{"actor.entropy_control": "target"})
    set_eta = [("--set actor.entropy_scale=0.01", lambda cfg: apply_overrides(cfg, {"actor.entropy_scale": "0.01"}))]
    assert requested_changes(fixed, set_eta)[0].actor.entropy_scale == 0.01
    with pytest.raises(DreamscopeError, match=r"--set actor.entropy_scale=0.01: actor.entropy_scale=0.01 .*"
                                              r"entropy_control=target"):
        requested_changes(target, set_eta)
