"""`dreamscope sweep`: the grid, its up-front checks, and a tiny local Ray Tune sweep end to end."""

import argparse
import csv
import importlib.util
import json
import math
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from dreamscope import sweep
from dreamscope.config import Config, apply_overrides, dump_yaml
from dreamscope.envs.factory import resolve_env_id
from dreamscope.errors import DreamscopeError

HAS_RAY = importlib.util.find_spec("ray") is not None
FAST = {"run.prefill": 200, "run.batch_size": 4, "run.batch_length": 16, "run.train_ratio": 16, "run.log_every": 40,
        "run.signals_every": 2, "optim.warmup": 10, "run.compile": False}


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    sweep.add_arguments(parser)
    return parser.parse_args(list(argv))


def fast_args(logdir, *extra: str) -> argparse.Namespace:
    sets = [f"--set={k}={v}" for k, v in FAST.items()]
    return parse("--logdir", str(logdir), "--env", "Pendulum-v1", "--preset", "tiny", "--steps", "250", *sets, *extra)


def test_grid_expands_to_the_cartesian_product_times_seeds(tmp_path):
    args = parse("--logdir", str(tmp_path), "--grid", "actor.entropy_scale=0,3e-4,3e-3",
                 "--grid", "run.reward_smoothing=none,gaussian", "--seeds", "0", "1")
    grid, trials = sweep.plan(args)
    assert grid == {"actor.entropy_scale": ["0", "3e-4", "3e-3"], "run.reward_smoothing": ["none", "gaussian"]}
    expected = [("0", "none", "0"), ("0", "none", "1"), ("0", "gaussian", "0"), ("0", "gaussian", "1"),
                ("3e-4", "none", "0"), ("3e-4", "none", "1"), ("3e-4", "gaussian", "0"), ("3e-4", "gaussian", "1"),
                ("3e-3", "none", "0"), ("3e-3", "none", "1"), ("3e-3", "gaussian", "0"), ("3e-3", "gaussian", "1")]
    assert [(t.settings["actor.entropy_scale"], t.settings["run.reward_smoothing"], t.settings["seed"])
            for t in trials] == expected
    last = trials[-1]
    assert last.name == "actor.entropy_scale=3e-3,run.reward_smoothing=gaussian,seed=1"
    assert last.directory == str(tmp_path.resolve() / last.name)
    assert last.config["actor.entropy_scale"] == 3e-3 and last.config["run.reward_smoothing"] == "gaussian"
    assert last.config["run.seed"] == 1 and last.config["run.threads"] == 1
    assert [t.name for t in sweep.plan(parse("--logdir", str(tmp_path), "--seeds", "3"))[1]] == ["seed=3"]


def test_variants_set_several_keys_at_once_fill_the_rest_from_the_shared_config_and_cross_the_grid(tmp_path):
    args = parse("--logdir", str(tmp_path), "--set", "actor.entropy_scale=3e-3",
                 "--variant", "actor.entropy_space=distribution",
                 "--variant", "actor.entropy_space=action, actor.entropy_control=target",
                 "--grid", "run.reward_smoothing=none,gaussian", "--seeds", "0", "1")
    axes, trials = sweep.plan(args)
    assert axes == {"actor.entropy_space": ["distribution", "action"], "actor.entropy_control": ["fixed", "target"],
                    "run.reward_smoothing": ["none", "gaussian"]}
    assert len(trials) == 8
    first, last = trials[0], trials[-1]
    assert first.name == "actor.entropy_space=distribution,actor.entropy_control=fixed,run.reward_smoothing=none,seed=0"
    assert last.name == "actor.entropy_space=action,actor.entropy_control=target,run.reward_smoothing=gaussian,seed=1"
    assert (first.config["actor.entropy_control"], last.config["actor.entropy_control"]) == ("fixed", "target")
    assert all(t.config["actor.entropy_scale"] == 3e-3 for t in trials)
    assert [t.settings["run.reward_smoothing"] for t in trials[:4]] == ["none", "none", "gaussian", "gaussian"]


@pytest.mark.parametrize("argv, message", [
    (["--variant", "actor.entropy_space"], "expected KEY=VALUE"),
    (["--variant", "actor.entropy_space=action,actor.entropy_space=distribution"], "actor.entropy_space is given twice"),
    (["--variant", "run.seed=3"], "run.seed cannot be swept"),
    (["--variant", "actor.entropy_space=sideways"], "accepted: distribution, action"),
    (["--variant", "actor.entropy_space=action", "--grid", "actor.entropy_space=action,distribution"],
     "both in --grid and --variant"),
    (["--variant", "actor.entropy_scale=0", "--set", "actor.entropy_scale=1"], "both in --variant and --set"),
    # The second variant fills entropy_space from the shared config: the same setting as the first.
    (["--variant", "actor.entropy_space=distribution", "--variant", "actor.entropy_control=fixed"],
     "the same setting as --variant actor.entropy_space=distribution"),
])
def test_bad_variants_name_the_item_and_what_is_accepted(tmp_path, argv, message):
    with pytest.raises(DreamscopeError, match=re.escape(message)):
        sweep.plan(parse("--logdir", str(tmp_path), *argv))


def test_config_file_is_shared_by_every_trial_and_set_overrides_it(tmp_path):
    config = tmp_path / "seed.yaml"
    config.write_text("actor:\n  dist: tanh_normal\n  entropy_scale: 3.0e-3\nrun:\n  train_ratio: 128\n")
    args = parse("--logdir", str(tmp_path / "s"), "--config", str(config), "--set", "actor.entropy_scale=1e-3",
                 "--grid", "actor.entropy_space=distribution,action")
    _, trials = sweep.plan(args)
    assert [t.config["actor.entropy_space"] for t in trials] == ["distribution", "action"]
    for t in trials:
        assert t.config["actor.dist"] == "tanh_normal" and t.config["run.train_ratio"] == 128.0
        assert t.config["actor.entropy_scale"] == 1e-3
    with pytest.raises(DreamscopeError, match="--config .*missing.yaml: no such file"):
        sweep.plan(parse("--logdir", str(tmp_path / "s"), "--config", str(tmp_path / "missing.yaml")))


@pytest.mark.parametrize("argv, message", [
    (["--grid", "actor.entropy_scal=0,1"], "unknown config key 'actor.entropy_scal'; did you mean actor.entropy_scale"),
    (["--grid", "actor.entropy_scale=0,abc"], "actor.entropy_scale='abc' is not a valid float"),
    (["--grid", "actor.entropy_scale=0,-1"], "actor.entropy_scale=-1.0 must be >= 0"),
    (["--grid", "run.reward_smoothing=none,box"], "run.reward_smoothing='box'; accepted: none"),
    (["--grid", "actor.entropy_scale="], "actor.entropy_scale has no values"),
    (["--grid", "actor.entropy_scale=0,,1"], "actor.entropy_scale has an empty value"),
    (["--grid", "actor.entropy_scale"], "'actor.entropy_scale': expected KEY=V1,V2"),
    (["--grid", "=0,1"], "'=0,1': expected KEY=V1,V2"),
    (["--grid", "actor.entropy_scale=3e-3,0.003"], "actor.entropy_scale=3e-3,0.003: a value is repeated"),
    (["--grid", "actor.entropy_scale=0", "--grid", "actor.entropy_scale=1"], "already swept"),
    (["--grid", "run.seed=0,1"], "run.seed cannot be swept (use --seeds)"),
    (["--grid", "actor.entropy_scale=0,1", "--set", "actor.entropy_scale=1"], "both in --grid and --set"),
    (["--seeds", "0", "0"], "a seed is repeated"),
    (["--max-concurrent", "0"], "--max-concurrent 0"),
    (["--gpus-per-trial", "2"], "--gpus-per-trial 2: a trial trains on one device; accepted: a share in (0, 1]"),
    (["--gpus-per-trial", "-0.5"], "--gpus-per-trial -0.5: a trial trains on one device"),
    (["--gpus-per-trial", "0.5", "--set", "run.device=cpu"], "a GPU share needs run.device=cuda"),
    (["--gpus-per-trial", "1", "--set", "run.device=cuda:1"], "run.device='cuda:1': Ray shows each trial only"),
    (["--set", "run.device=cuda"], "run.device='cuda' needs --gpus-per-trial: Ray hides the GPUs"),
    (["--grid", "run.device=cpu,cuda"], "run.device='cuda' needs --gpus-per-trial"),
    (["--grid", "run.prefill_policy=random,dreamscope.envs.airhockey:chaser"],
     "run.prefill_policy='dreamscope.envs.airhockey:chaser': module 'dreamscope.envs.airhockey' has no attribute"),
])
def test_bad_input_is_refused_before_anything_starts(tmp_path, argv, message):
    logdir = tmp_path / "sweep"
    with pytest.raises(DreamscopeError, match=re.escape(message)):
        sweep.run(parse("--logdir", str(logdir), *argv))
    assert not logdir.exists()


def test_a_gpu_share_trains_every_trial_on_cuda_and_is_reserved_through_ray(tmp_path, monkeypatch):
    import torch

    args = parse("--logdir", str(tmp_path), "--gpus-per-trial", "0.25", "--seeds", "0", "1")
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    with pytest.raises(DreamscopeError, match=re.escape("--gpus-per-trial 0.25: this machine has no CUDA GPU")):
        sweep.plan(args)
    joining = parse("--logdir", str(tmp_path), "--gpus-per-trial", "0.25", "--address", "auto")
    assert sweep.plan(joining)[1][0].config["run.device"] == "cuda"  # the cluster's GPUs, not this machine's
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    _, trials = sweep.plan(args)
    assert [t.config["run.device"] for t in trials] == ["cuda", "cuda"]
    assert sweep.trial_resources(args) == {"cpu": 1, "gpu": 0.25}
    assert sweep.trial_resources(parse("--logdir", str(tmp_path))) == {"cpu": 1}
    # A CPU sweep's finished trial resumes on the GPU rather than counting as another run.
    cpu_trial = sweep.plan(parse("--logdir", str(tmp_path), "--seeds", "0"))[1][0]
    (tmp_path / "seed=0").mkdir()
    # as `dreamscope train` records it, with its default of torch's own thread count
    recorded = {**cpu_trial.config, "run.env": resolve_env_id(cpu_trial.config["run.env"]), "run.threads": 0}
    dump_yaml(apply_overrides(Config(), recorded), tmp_path / "seed=0" / "config.yaml")
    assert [t.name for t in sweep.plan(args)[1]] == ["seed=0", "seed=1"]


def test_never_writes_into_another_run_or_a_foreign_directory(tmp_path):
    args = parse("--logdir", str(tmp_path), "--preset", "tiny", "--grid", "actor.entropy_scale=0,3e-3")
    foreign = tmp_path / "actor.entropy_scale=0,seed=0"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(DreamscopeError, match="is not a dreamscope run"):
        sweep.plan(args)
    (foreign / "notes.txt").unlink()
    dump_yaml(apply_overrides(Config(), {"actor.entropy_scale": "0.5"}), foreign / "config.yaml")
    with pytest.raises(DreamscopeError, match="holds a run with another config"):
        sweep.plan(args)


def test_without_ray_the_error_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail as if it were not installed
    _, trials = sweep.plan(parse("--logdir", str(tmp_path)))
    with pytest.raises(DreamscopeError, match=re.escape("pip install 'dreamscope[sweep]'")):
        sweep.run_with_ray(trials, parse("--logdir", str(tmp_path)))


def _descendants() -> list[str]:
    """Live processes below this one (read from /proc), as 'pid name'."""
    parents, names = {}, {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, rest = text[text.index("(") + 1:text.rindex(")")], text[text.rindex(")") + 2:].split()
        if rest[0] != "Z":
            pid = int(stat.parent.name)
            parents[pid], names[pid] = int(rest[1]), name
    found, frontier = [], {os.getpid()}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier}
        found += [f"{pid} {names[pid]}" for pid in frontier]
    return found


@pytest.mark.skipif(not HAS_RAY, reason="ray[tune] is not installed (pip install 'dreamscope[sweep]')")
def test_local_sweep_trains_diagnoses_writes_results_and_does_not_retrain(tmp_path, capsys):
    import ray
    import torch

    from dreamscope.diagnostics.doctor import VERDICTS, diagnose
    from dreamscope.logs import read_run

    logdir = tmp_path / "sweep"
    args = fast_args(logdir, "--grid", "actor.entropy_scale=0,3e-3", "--json", "--no-progress")
    assert sweep.run(args) == 0
    assert not ray.is_initialized()
    printed = json.loads(capsys.readouterr().out)
    saved = json.loads((logdir / "sweep.json").read_text())
    assert printed == saved
    names = ["actor.entropy_scale=0,seed=0", "actor.entropy_scale=3e-3,seed=0"]
    assert [t["name"] for t in saved["trials"]] == names
    for trial, eta in zip(saved["trials"], ("0", "3e-3")):
        run_dir = logdir / trial["name"]
        assert trial["settings"] == {"actor.entropy_scale": eta} and trial["seed"] == 0
        assert trial["directory"] == str(run_dir.resolve()) and trial["status"] == "trained"
        assert trial["verdict"] in VERDICTS and trial["verdict"] == diagnose(read_run(run_dir)).verdict
        assert trial["answer"] == VERDICTS[trial["verdict"]].answer
        assert torch.load(run_dir / "checkpoint.pt", weights_only=True)["counters"]["step"] == 250
        assert trial["score"] < 0 and 0 <= trial["saturation_frac"] <= 1 and trial["error"] is None
        assert trial["prefill_steps"] == FAST["run.prefill"]  # what the plot shades
        logged = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        assert trial["std"] == pytest.approx([m["policy/std_mean"] for m in logged if "policy/std_mean" in m][-1])
        hits = [m["reward/head_hit_rate"] for m in logged if m.get("reward/head_hit_rate") is not None]
        assert hits and trial["head_hit_rate"] == pytest.approx(np.mean(hits[-math.ceil(0.2 * len(hits)):]))
    assert [g["settings"] for g in saved["settings"]] == [{"actor.entropy_scale": "0"}, {"actor.entropy_scale": "3e-3"}]
    assert saved["settings"][0]["score_mean"] == saved["trials"][0]["score"]
    with open(logdir / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["actor.entropy_scale"], r["verdict"], r["directory"]) for r in rows] == \
        [(t["settings"]["actor.entropy_scale"], t["verdict"], t["directory"]) for t in saved["trials"]]
    assert (logdir / "sweep.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    deadline = time.time() + 15
    while _descendants() and time.time() < deadline:
        time.sleep(0.5)
    assert _descendants() == []  # Ray's processes stopped with it

    checkpoints = {name: (logdir / name / "checkpoint.pt").stat().st_mtime_ns for name in names}
    assert sweep.run(fast_args(logdir, "--grid", "actor.entropy_scale=0,3e-3", "--no-progress",
                               "--baseline", "actor.entropy_scale=0")) == 0
    assert {name: (logdir / name / "checkpoint.pt").stat().st_mtime_ns for name in names} == checkpoints
    again = json.loads((logdir / "sweep.json").read_text())
    assert [t["status"] for t in again["trials"]] == ["done", "done"]
    assert [t["score"] for t in again["trials"]] == [t["score"] for t in saved["trials"]]
    # One seed a side: the other setting's p is 1/2 when its score is the higher, else 1.
    higher = again["trials"][1]["score"] > again["trials"][0]["score"]
    assert again["baseline"] == {"actor.entropy_scale": "0"}
    assert [g["beats_baseline_p"] for g in again["settings"]] == [None, 0.5 if higher else 1.0]
    assert not ray.is_initialized()

    # --report trains nothing: seed 1 has not started, and at --steps 300 seed 0's trials stand at 250.
    assert sweep.run(fast_args(logdir, "--grid", "actor.entropy_scale=0,3e-3", "--seeds", "0", "1", "--steps", "300",
                               "--report", "--no-progress")) == 0
    report = json.loads((logdir / "sweep.json").read_text())
    assert [t["status"] for t in report["trials"]] == ["at 250", "missing", "at 250", "missing"]
    assert [t["score"] for t in report["trials"][::2]] == [t["score"] for t in saved["trials"]]
    assert (report["trials"][1]["error"], report["trials"][1]["verdict"]) == ("not started", "-")
    assert not (logdir / "actor.entropy_scale=0,seed=1").exists()
    assert {name: (logdir / name / "checkpoint.pt").stat().st_mtime_ns for name in names} == checkpoints
    with pytest.raises(DreamscopeError, match="no such directory; --report summarises"):
        sweep.run(fast_args(tmp_path / "nothing", "--report"))

    # More steps asked of a finished trial: it resumes from its checkpoint (run here without Ray).
    trial = sweep.plan(fast_args(logdir, "--grid", "actor.entropy_scale=0", "--steps", "280"))[1][0]
    assert sweep.run_trial(vars(trial))["status"] == "resumed"
    assert torch.load(Path(trial.directory) / "checkpoint.pt", weights_only=True)["counters"]["step"] == 280


def test_score_panel_draws_a_running_mean_per_trial_coloured_by_setting_and_skips_failed_trials():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dreamscope.logs.schema import Run, Series

    scores = np.array([0.0, 10.0, 0.0, 0.0, -10.0, 10.0, 10.0, float("nan"), 0.0])
    run = Run(path="a", format="dreamscope", series={"episode/score": Series(np.arange(1, 10) * 1000, scores)})
    groups = [{"settings": {"run.reward_smoothing": "none"}}, {"settings": {"run.reward_smoothing": "gaussian"}}]
    result = {"settings": groups, "trials": [
        {"settings": groups[0]["settings"], "directory": "a", "error": None},
        {"settings": groups[1]["settings"], "directory": "b", "error": None},
        {"settings": groups[1]["settings"], "directory": "c", "error": "crashed"}]}
    fig, ax = plt.subplots()
    sweep._plot_curves(ax, result, {"a": run, "b": run}, "episode/score", "score", smooth=sweep.SCORE_SMOOTHING)
    assert len(ax.lines) == 2 and ax.lines[0].get_color() != ax.lines[1].get_color()
    # The NaN point is dropped, then each value is the mean of 5 consecutive points (by hand).
    assert ax.lines[0].get_xdata().tolist() == [5000, 6000, 7000, 9000]
    assert np.allclose(ax.lines[0].get_ydata(), [0.0, 2.0, 2.0, 2.0])
    assert [line.get_label() for line in ax.lines] == ["reward_smoothing=none", "reward_smoothing=gaussian"]
    plt.close(fig)


def test_setting_labels_name_only_the_keys_that_tell_settings_apart():
    groups = [{"settings": {"actor.entropy_space": "distribution", "actor.entropy_control": "fixed", "run.steps": "9"}},
              {"settings": {"actor.entropy_space": "action", "actor.entropy_control": "target", "run.steps": "9"}}]
    assert sweep._setting_labels(groups, ", ") == ["entropy_space=distribution, entropy_control=fixed",
                                                   "entropy_space=action, entropy_control=target"]
    assert sweep._setting_labels(groups[:1]) == ["entropy_space=distribution\nentropy_control=fixed\nsteps=9"]
    assert sweep._setting_labels([{"settings": {}}]) == ["all"]


def test_pooled_rise_p_is_fishers_combination_and_the_table_shows_it_per_setting(tmp_path):
    from scipy.stats import combine_pvalues

    assert sweep.pooled_rise_p([0.3]) == pytest.approx(0.3)  # one seed: its own p
    assert sweep.pooled_rise_p([0.05, 0.05]) == pytest.approx(math.exp(-2 * math.log(20)) * (1 + 2 * math.log(20)))
    for ps in ([0.04, 0.03, 0.35], [0.5, 0.9, 0.2, 0.7], [1e-6, 1.0]):
        assert sweep.pooled_rise_p(ps) == pytest.approx(combine_pvalues(ps, method="fisher").pvalue)
    assert sweep.pooled_rise_p([]) is None

    args = parse("--logdir", str(tmp_path), "--grid", "actor.entropy_space=distribution,action", "--seeds", "0", "1", "2")
    grid, trials = sweep.plan(args)
    rise = {"distribution": [0.16, 0.6, None], "action": [0.04, 0.03, 0.35]}
    outcomes = {t.name: {**dict.fromkeys(sweep._MEASURED), "score": 1.0, "verdict": "UNDECIDED", "answer": "undecided",
                         "status": "trained", "seconds": 1.0, "prefill_steps": 0,
                         "score_rise_p": rise[t.settings["actor.entropy_space"]][int(t.settings["seed"])]}
                for t in trials}
    groups = sweep.collect(args, grid, trials, outcomes)["settings"]
    assert [(g["rose"], g["rise_tested"]) for g in groups] == [(0, 2), (2, 3)]
    assert groups[1]["rise_p_pooled"] == pytest.approx(combine_pvalues([0.04, 0.03, 0.35], method="fisher").pvalue)
    from rich.console import Console

    console = Console(record=True, width=300)
    sweep.render(sweep.collect(args, grid, trials, outcomes), console)
    assert f"{groups[1]['rise_p_pooled']:.3g} (2/3 rose)" in console.export_text()


def test_report_shows_a_trial_that_has_written_no_log_yet_without_failing(tmp_path):
    trial = sweep.plan(parse("--logdir", str(tmp_path), "--seeds", "0"))[1][0]
    assert sweep.report_trial(vars(trial)) == {"error": "not started", "status": "missing"}
    Path(trial.directory).mkdir()
    dump_yaml(apply_overrides(Config(), trial.config), Path(trial.directory) / "config.yaml")  # a run's first file
    row = sweep.report_trial(vars(trial))
    assert row["status"] == "at 0" and "no log found" in row["error"]


def _mann_whitney_tail(x: list[float], y: list[float]) -> float:
    """The exact one-sided p by enumeration: the share of all ways to call len(x) of the pooled
    scores "x" whose U (pairs with x above y) is at least the observed one (no ties)."""
    import itertools

    def u(xs, ys):
        return sum(a > b for a in xs for b in ys)

    pooled, observed = x + y, u(x, y)
    splits = list(itertools.combinations(range(len(pooled)), len(x)))
    return sum(u([pooled[i] for i in chosen], [pooled[i] for i in range(len(pooled)) if i not in chosen]) >= observed
               for chosen in splits) / len(splits)


def test_beats_baseline_p_is_the_exact_mann_whitney_tail(tmp_path):
    assert sweep.beats_baseline_p([3.0, 4.0, 5.0], [0.0, 1.0, 2.0]) == pytest.approx(1 / 20)  # 1 of C(6, 3) splits
    assert sweep.beats_baseline_p([0.0, 1.0, 2.0], [3.0, 4.0, 5.0]) == pytest.approx(1.0)
    assert sweep.beats_baseline_p([3.0, 1.0], [2.0]) == pytest.approx(2 / 3)  # U ≥ 1 in 2 of 3 splits
    remedy, control = [1.75, 1.63, -0.20, 0.35, 0.63], [0.84, -0.12, 0.24]  # the 100k finals in docs/airhockey_case_study.md
    assert sweep.beats_baseline_p(remedy, control) == pytest.approx(_mann_whitney_tail(remedy, control))
    assert sweep.beats_baseline_p([], control) is None and sweep.beats_baseline_p(remedy, []) is None


def test_a_baseline_setting_is_compared_with_every_other_in_table_and_csv(tmp_path):
    args = parse("--logdir", str(tmp_path), "--grid", "actor.entropy_space=distribution,action",
                 "--seeds", "0", "1", "2", "--baseline", "actor.entropy_space=distribution")
    grid, trials = sweep.plan(args)
    baseline = sweep.find_baseline(args.baseline, trials)
    assert baseline == {"actor.entropy_space": "distribution"}
    scores = {"distribution": [0.84, -0.12, 0.24], "action": [1.75, 1.63, -0.20]}
    outcomes = {t.name: {**dict.fromkeys(sweep._MEASURED), "verdict": "UNDECIDED", "answer": "undecided",
                         "status": "trained", "seconds": 1.0, "prefill_steps": 0,
                         "score": scores[t.settings["actor.entropy_space"]][int(t.settings["seed"])]}
                for t in trials}
    result = sweep.collect(args, grid, trials, outcomes, baseline)
    control, remedy = result["settings"]
    assert control["beats_baseline_p"] is None
    assert remedy["beats_baseline_p"] == pytest.approx(_mann_whitney_tail(scores["action"], scores["distribution"]))
    assert remedy["beats_baseline_p"] == pytest.approx(7 / 20)  # U = 6 of 9, reached by 3 + 2 + 1 + 1 of 20 splits
    from rich.console import Console

    console = Console(record=True, width=300)
    sweep.render(result, console)
    text = console.export_text()
    assert "(baseline)" in text and f"(> baseline p {remedy['beats_baseline_p']:.3g})" in text
    sweep.write_csv(result, tmp_path / "sweep.csv")
    with open(tmp_path / "sweep.csv") as f:
        rows = list(csv.DictReader(f))
    assert [r["beats_baseline_p"] for r in rows[:3]] == ["", "", ""]
    assert [float(r["beats_baseline_p"]) for r in rows[3:]] == pytest.approx([0.35] * 3)
    # Without --baseline nothing is compared.
    assert all(g["beats_baseline_p"] is None for g in sweep.collect(args, grid, trials, outcomes)["settings"])


def test_baseline_values_are_compared_as_the_config_holds_them(tmp_path):
    _, trials = sweep.plan(parse("--logdir", str(tmp_path), "--grid", "actor.entropy_scale=0,3e-3"))
    assert sweep.find_baseline("actor.entropy_scale=0.003", trials) == {"actor.entropy_scale": "3e-3"}
    assert sweep.find_baseline(None, trials) is None


@pytest.mark.parametrize("baseline, message", [
    ("actor.entropy_space", "expected KEY=VALUE"),
    ("actor.entropy_control=fixed", "actor.entropy_control is not a key the sweep varies; accepted: "
                                    "actor.entropy_scale, run.reward_smoothing"),
    ("actor.entropy_scale=1", "names 0 of the sweep's settings"),
    ("actor.entropy_scale=0", "names 2 of the sweep's settings; it must name exactly one of: "
                              "actor.entropy_scale=0,run.reward_smoothing=none;"),
    ("actor.entropy_scale=x", "actor.entropy_scale"),
])
def test_bad_baselines_name_the_value_and_what_is_accepted(tmp_path, baseline, message):
    _, trials = sweep.plan(parse("--logdir", str(tmp_path), "--grid", "actor.entropy_scale=0,3e-3",
                                 "--grid", "run.reward_smoothing=none,gaussian"))
    with pytest.raises(DreamscopeError, match=re.escape(message)):
        sweep.find_baseline(baseline, trials)


def test_score_curve_never_averages_the_prefill_with_the_agent():
    """A scripted prefill scoring 6 must not smear into the agent's first points as a slow decline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dreamscope.logs.schema import Series

    result = {"settings": [{"settings": {}}], "trials": [{"settings": {}, "directory": "run"}]}
    score = Series([1, 2, 3, 4, 5, 6], [6.0, 6.0, 6.0, 0.0, 1.0, 2.0])
    runs = {"run": type("Run", (), {"get": lambda self, name: score})()}
    _, ax = plt.subplots()
    sweep._plot_curves(ax, result, runs, "episode/score", "score", smooth=2, split_at=3)
    assert [list(line.get_ydata()) for line in ax.lines] == [[6.0, 6.0], [0.5, 1.5]]
    assert [list(line.get_xdata()) for line in ax.lines] == [[2, 3], [5, 6]]
    plt.close("all")


def test_score_trend_reads_the_episodes_after_the_prefill():
    """Early score and the one-sided Mann–Kendall p of a rise, against hand-computed values."""
    # Five episodes after a prefill ending at step 100, rising strictly: S = 10, var = 5·4·15/18,
    # z = (10 − 1)/√var, one-sided p = ½ erfc(z/√2) = 0.0137. The prefill's episodes are ignored.
    steps = [50, 90, 150, 200, 250, 300, 350]
    scores = [10.0, 10.0, -1.0, 0.0, 1.0, 2.0, 3.0]
    z = 9 / math.sqrt(5 * 4 * 15 / 18)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sweep, "MIN_TREND_POINTS", 5)
        early, rise_p = sweep.score_trend(steps, scores, prefill=100)
        assert early == -1.0  # the first fifth of five episodes is one episode
        assert rise_p == pytest.approx(0.5 * math.erfc(z / math.sqrt(2)))
        assert rise_p == pytest.approx(0.0137, abs=1e-4)
        _, fall_p = sweep.score_trend(steps, scores[:2] + scores[:1:-1], prefill=100)
        assert fall_p == pytest.approx(1 - rise_p)
        _, flat_p = sweep.score_trend(steps, [0.0] * 7, prefill=100)
        assert flat_p == 0.5
    # A goal halfway through draws is no trend; too few episodes give no answer.
    early, rise_p = sweep.score_trend(range(1, 41), [0.0] * 20 + [10.0] + [0.0] * 19, prefill=0)
    assert early == 0.0 and rise_p == pytest.approx(0.5, abs=0.05)
    assert sweep.score_trend([1, 2, 3], [0.0, 1.0, 2.0], prefill=0) == (None, None)


def test_score_by_mode_scores_each_trial_on_new_episodes_once(tmp_path, monkeypatch):
    from dreamscope import evaluate

    args = fast_args(tmp_path, "--score-by", "mode", "--eval-episodes", "3")
    grid, trials = sweep.plan(args)
    trial = vars(trials[0])
    row = sweep.run_trial(trial)  # trained here without Ray
    (played,) = evaluate.evaluate_run(trial["directory"], ["mode"], 3, 3, evaluate.DEFAULT_SEED)
    assert row["score"] == pytest.approx(played.score_mean) and row["win_rate"] is None  # Pendulum has no wins
    logged = sweep.summarise(Path(trial["directory"]))["score"]
    assert row["score"] != logged  # not the training episodes' score
    cached = json.loads((Path(trial["directory"]) / "evaluation.json").read_text())
    assert list(cached) == [f"mode,3 episodes,seed {evaluate.DEFAULT_SEED},step 250"]

    monkeypatch.setattr(evaluate, "evaluate_run", lambda *a, **k: pytest.fail("the cached evaluation was replayed"))
    assert sweep.report_trial(trial)["score"] == row["score"]
    result = sweep.collect(args, grid, trials, {trial["name"]: {**row, "status": "done", "seconds": 1.0}})
    assert result["final_score"] == "mean score of 3 new episodes, the policy's mode (dreamscope evaluate)"
    with pytest.raises(DreamscopeError, match="--eval-episodes 0: must be at least 1"):
        sweep.plan(fast_args(tmp_path, "--score-by", "sample", "--eval-episodes", "0"))
