"""`dreamscope demo`: the seed's set-up trained, diagnosed and probed into one report."""

import json
from pathlib import Path

from dreamscope.cli import main
from dreamscope.config import Config, apply_overrides, apply_preset, compose, flatten
from dreamscope.demo import DEMO_PRESET, DEMO_SETTINGS

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def test_every_shipped_config_loads_and_the_seed_config_is_the_demos():
    for path in CONFIGS.glob("*.yaml"):
        compose("tiny", path, {})  # every key known, every value of the right type
    shipped = flatten(compose(DEMO_PRESET, CONFIGS / "airhockey_seed_small.yaml", {}).to_dict())
    demo = flatten(apply_overrides(apply_preset(Config(), DEMO_PRESET), {k: str(v) for k, v in DEMO_SETTINGS.items()}).to_dict())
    assert shipped == demo
    assert (demo["actor.dist"], demo["actor.logstd_max"], demo["actor.entropy_scale"]) == ("tanh_normal", 2.0, 3e-3)


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

