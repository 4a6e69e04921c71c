"""`dreamscope demo`: the seed's set-up trained, diagnosed and probed into one report."""

import json

import pytest

from dreamscope.cli import main
from dreamscope.config import BUNDLED_CONFIGS, bundled_config_names, compose
from dreamscope.demo import DEMO_CONFIG, DEMO_PRESET
from dreamscope.errors import DreamscopeError


def test_every_bundled_config_loads_by_name_and_path_and_the_demos_is_the_seeds_set_up():
    assert DEMO_CONFIG in bundled_config_names()
    for name in bundled_config_names():
        by_name = compose("tiny", name, {})  # every key known, every value of the right type
        assert by_name == compose("tiny", BUNDLED_CONFIGS / f"{name}.yaml", {}) == compose("tiny", f"{name}.yaml", {})
    demo = compose(DEMO_PRESET, DEMO_CONFIG, {})
    assert (demo.actor.dist, demo.actor.logstd_max, demo.actor.entropy_scale) == ("tanh_normal", 2.0, 3e-3)
    assert (demo.run.env, demo.run.steps) == ("airhockey", 5000)


def test_config_files_layer_in_order_and_the_remedy_changes_only_what_it_says(tmp_path):
    seed = compose("tiny", "airhockey_seed_small", {})
    remedy = compose("tiny", ["airhockey_seed_small", "airhockey_remedy_small"], {})
    assert (remedy.actor.entropy_space, seed.actor.entropy_space) == ("action", "distribution")
    assert (remedy.world_model.stoch, remedy.world_model.classes, remedy.world_model.deter) == (32, 16, 256)
    assert remedy.run.prefill_policy.endswith(":chase_policy") and remedy.run.train_ratio == 64
    # the seed's policy stays: the squashed Gaussian, its log-σ bounds and η
    assert (remedy.actor.dist, remedy.actor.logstd_max, remedy.actor.entropy_scale) == ("tanh_normal", 2.0, 3e-3)
    no_bonus = tmp_path / "no_bonus.yaml"
    no_bonus.write_text("actor:\n  entropy_scale: 0.0\n")
    assert compose("tiny", ["airhockey_seed_small", no_bonus], {}).actor.entropy_scale == 0.0
    assert compose("tiny", [no_bonus, "airhockey_seed_small"], {}).actor.entropy_scale == 3e-3  # the later file wins


def test_unknown_config_names_the_value_and_the_bundled_ones(tmp_path):
    with pytest.raises(DreamscopeError, match=f"--config nope.*{DEMO_CONFIG}"):
        compose("tiny", "nope", {})
    with pytest.raises(DreamscopeError, match="no such file"):  # a path is never looked up among the bundled
        compose("tiny", tmp_path / f"{DEMO_CONFIG}.yaml", {})


def test_short_demo_writes_report_with_probe_and_continues_instead_of_overwriting(tmp_path, capsys):
    logdir = tmp_path / "demo"
    assert main(["demo", "--logdir", str(logdir), "--steps", "600", "--probe-updates", "2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    probe = json.loads((logdir / "probe.json").read_text())
    assert probe["settings"]["updates"] == 2 and probe["conclusion"] in ("cause", "symptom", "undecided")
    page = (logdir / "report.html").read_text(encoding="utf-8")
    assert "<section" in page and probe["conclusion"].upper() in page.upper()
    assert "report:" in out and probe["conclusion"].upper() in out.upper()
    metrics = (logdir / "metrics.jsonl").read_text()
    assert main(["demo", "--logdir", str(logdir), "--steps", "650", "--probe-updates", "0", "--no-progress"]) == 0
    assert "continuing the demo run" in capsys.readouterr().out
    assert (logdir / "metrics.jsonl").read_text().startswith(metrics)  # appended, never rewritten
    assert json.loads((logdir / "metrics.jsonl").read_text().splitlines()[-1])["step"] == 650


def test_negative_probe_updates_is_refused(tmp_path, capsys):
    assert main(["demo", "--logdir", str(tmp_path / "d"), "--probe-updates", "-1", "--no-progress"]) == 2
    assert "--probe-updates -1" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()

