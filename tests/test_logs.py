"""Log readers: every format, the real logs in ../shared/realruns, malformed input, step repair.

Counts on real logs are checked against numbers the test computes its own way (plain text
search over the raw lines), not against the reader's own bookkeeping.
"""

from __future__ import annotations

import csv
import json
import math
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from dreamscope.errors import DreamscopeError
from dreamscope.logs import FORMATS, Series, detect_format, jsonl, read_run
from dreamscope.logs.steps import RESTART_FRACTION, repair_steps

FIXTURES = Path(__file__).parent / "fixtures" / "logs"
REALRUNS = Path(__file__).resolve().parents[2] / "shared" / "realruns"
STEP = re.compile(r'^\s*\{"step": (-?\d+)')


def realrun(name: str) -> Path:
    path = REALRUNS / name
    if not (path / "metrics.jsonl").is_file():
        pytest.skip(f"real logs not found at {path} (shared/ must sit beside the clone)")
    return path


def write_lines(path: Path, lines) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def same_series(a, b) -> bool:
    return np.array_equal(a.steps, b.steps) and np.array_equal(a.values, b.values, equal_nan=True)


# ---------------------------------------------------------------- the real logs, in full

REAL = {
    "dreamerv3_crafter_yap-cod": "dreamerv3",
    "dreamerv3_home-nav": "dreamerv3",
    "dreamerv3-torch_ajayghimire": "dreamerv3-torch",
    "dreamerv3-torch_turtlebot_stage1_10": "dreamerv3-torch",
    "dreamerv3-torch_turtlebot_stage2_10": "dreamerv3-torch",
}


def text_lines(path: Path) -> list[str]:
    return path.read_text().splitlines()


def superseded_lines(lines: list[str]) -> set[int]:
    """Independent of the reader: 1-based lines a resume (a drop to > 10% of the old step) replaces."""
    steps = [int(STEP.match(line).group(1)) for line in lines]
    dropped: set[int] = set()
    for i in range(1, len(steps)):
        back, ahead = steps[i] < steps[i - 1], i + 1 < len(steps) and steps[i + 1] >= steps[i - 1]
        if back and not ahead and steps[i] > RESTART_FRACTION * steps[i - 1]:
            dropped |= {j + 1 for j in range(i) if steps[j] > steps[i]}
    return dropped


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_log_format_keys_and_counts(name):
    path = realrun(name)
    lines = text_lines(path / "metrics.jsonl")
    assert detect_format(path) == REAL[name]
    run = read_run(path)
    assert run.format == REAL[name]
    dropped = superseded_lines(lines)
    # Every key of the file is in the run: mapped (sources) or kept as raw/<key>.
    keys = {k for line in lines for k in re.findall(r'"([^"]+)": ', line)} - {"step"}
    read = {v for v in run.sources.values() if not v.startswith("derived")}
    read |= {k[len("raw/"):] for k in run.series if k.startswith("raw/")}
    assert read == keys
    # Each series has one point per line carrying its key, less the lines a resume superseded.
    for name_, source in run.sources.items():
        if source.startswith("derived"):
            continue
        expected = sum(1 for i, line in enumerate(lines, 1) if f'"{source}": ' in line and i not in dropped)
        assert len(run.series[name_]) == expected, (name_, source)
        assert np.all(np.diff(run.series[name_].steps) >= 0)


def test_real_crafter_restarts_are_shifted_and_discrete_policy_inferred():
    path = realrun("dreamerv3_crafter_yap-cod")
    lines = text_lines(path / "metrics.jsonl")
    steps = [int(STEP.match(line).group(1)) for line in lines]
    drops = [i for i in range(1, len(steps)) if steps[i] < steps[i - 1]]
    assert [i + 1 for i in drops] == [57, 134]  # 1-based line numbers of the two restarts
    run = read_run(path)
    shift = sum(steps[i - 1] for i in drops)
    assert run.get("episode/score").steps[-1] == steps[-1] + shift == 1122023
    assert any(":57: step counter restarts (9030 -> 218)" in w for w in run.warnings)
    assert any(":134: step counter restarts (13000 -> 110)" in w for w in run.warnings)
    assert run.meta["dist"] == "discrete" and run.meta["action_dim"] == 17  # README: 17 discrete actions
    assert run.get("policy/entropy_max").values[0] == pytest.approx(math.log(17), abs=1e-6)
    assert run.get("policy/entropy_min_ref").values[0] == pytest.approx(0.0, abs=1e-6)
    assert run.sources["adv_norm/mean"] == "train/adv" and "adv/mean" in run.missing()


def test_real_home_nav_resume_supersedes_the_abandoned_stretch():
    path = realrun("dreamerv3_home-nav")
    lines = text_lines(path / "metrics.jsonl")
    assert len(lines) == 18536 and sum('"train/ent/action"' in line for line in lines) == 171  # README
    run = read_run(path)
    assert run.meta["action_dim"] == 5 and run.meta["dist"] == "discrete"  # README: 5 discrete actions
    (event,) = run.meta["step_events"]
    assert event["kind"] == "resume" and event["at"].endswith(":12641")
    assert (event["from"], event["to"]) == (371104, 359509)
    assert event["superseded"] == len(superseded_lines(lines))
    entropy = run.get("policy/entropy")
    assert entropy.steps[-1] == 497488 and len(entropy) == 171 - 4
    assert run.get("episode/score").steps[-1] == 499982


def test_real_ajayghimire_stray_line_kept_and_collapsed_entropy_visible():
    path = realrun("dreamerv3-torch_ajayghimire")
    run = read_run(path)
    assert [e["kind"] for e in run.meta["step_events"]] == ["stray"]
    assert any(w.endswith("a stray line; kept at its logged step") and ":38:" in w for w in run.warnings)
    assert run.meta["implementation"] == "dreamerv3-torch-style"
    assert len(run.get("perf/fps")) == 160 and run.get("perf/fps").steps[0] == 0
    # 1-D Gaussian at its std floor 0.1: 0.5 ln(2 pi e) + ln 0.1 = -0.8837.
    assert run.get("policy/entropy").values[-1] == pytest.approx(0.5 * math.log(2 * math.pi * math.e) + math.log(0.1),
                                                                 abs=1e-3)


@pytest.mark.parametrize("name", ["dreamerv3-torch_turtlebot_stage1_10", "dreamerv3-torch_turtlebot_stage2_10"])
def test_real_turtlebot_return_scale_is_the_percentile_gap(name):
    path = realrun(name)
    rows = [json.loads(line) for line in text_lines(path / "metrics.jsonl") if '"EMA_005"' in line]
    run = read_run(path)
    assert run.meta["implementation"] == "dreamerv3-torch"
    assert run.sources["return/scale"] == "derived: EMA_095 - EMA_005"
    np.testing.assert_allclose(run.get("return/scale").values, [r["EMA_095"] - r["EMA_005"] for r in rows])
    assert run.get("return/scale").steps.tolist() == [r["step"] for r in rows]
    assert len(run.get("episode/score")) == sum(1 for line in text_lines(path / "metrics.jsonl") if "train_return" in line)


@pytest.mark.parametrize("name", sorted(REAL))
def test_vectorised_and_per_line_paths_agree_on_real_logs(name, monkeypatch):
    path = realrun(name)
    fast = read_run(path)
    monkeypatch.setattr(jsonl, "_arrow_table", lambda data, fields, lines: None)
    careful = read_run(path)
    assert fast.series.keys() == careful.series.keys()
    assert all(same_series(fast.series[k], careful.series[k]) for k in fast.series)
    assert fast.warnings == careful.warnings


# ---------------------------------------------------------------- excerpts (run without shared/)

def test_excerpt_resume():
    run = read_run(FIXTURES / "dreamerv3_home-nav_resume.jsonl")
    assert run.format == "dreamerv3"
    assert run.get("policy/entropy").steps.tolist() == [359152]
    assert run.get("episode/score").steps[0] == 359152 + 357  # first resumed episode line: 359509
    assert len(run.get("episode/score")) == 10
    assert run.meta["step_events"][0]["superseded"] == 12
    assert any("dreamerv3_home-nav_resume.jsonl:14: step counter goes back (371104 -> 359509)" in w
               for w in run.warnings)


def test_excerpt_restart():
    run = read_run(FIXTURES / "dreamerv3_crafter_restart.jsonl")
    score = run.get("episode/score")
    assert score.steps.tolist() == [7878, 8118, 8290, 8446, 8620, 8876] + [9030 + s for s in (218, 373, 505, 596, 720, 874)]
    assert run.get("policy/entropy").steps.tolist() == [9030]
    assert "dreamerv3_crafter_restart.jsonl:8: step counter restarts" in run.warnings[0]


def test_excerpt_stray_and_sparse_lines():
    run = read_run(FIXTURES / "dreamerv3-torch_ajayghimire_stray.jsonl")
    assert run.format == "dreamerv3-torch"
    assert run.get("perf/fps").steps.tolist() == [0] + [146] * 29 + [200, 232, 232, 400, 600, 800, 1000]
    assert run.get("policy/entropy").steps.tolist() == [200, 400, 600, 800, 1000]


def test_excerpt_turtlebot_bare_step_line_and_derived_scale():
    run = read_run(FIXTURES / "dreamerv3-torch_turtlebot_head.jsonl")
    assert run.get("episode/score").steps.tolist() == [0, 0, 0, 501]
    assert run.get("episode/score").values.tolist() == [-10.0, -10.0, 100.0, 100.0]
    assert run.get("return/scale").values[0] == pytest.approx(-0.0008225129568018019 + 0.007307678926736116)
    assert run.get("reward/imag_mean") is not None and run.get("return/lo").steps.tolist() == [500]


# ---------------------------------------------------------------- synthetic logs, every format

def official_lines():
    """Episode lines and sparse training lines, as the official writer interleaves them."""
    lines = []
    for i in range(1, 40):
        lines.append({"step": 100 * i, "episode/score": float(i), "episode/length": 100.0})
        if i % 5 == 0:
            ent = 1.6 - 0.03 * i
            lines.append({"step": 100 * i, "train/ent/action": ent, "train/rand/action": ent / math.log(5),
                          "train/adv": 0.01, "train/adv_std": 0.1, "train/tar": 2.0, "train/val": 1.9,
                          "train/loss/policy": 0.5, "usage/psutil/proc_ram_gb": 3.2})
        if i == 20:
            lines.append({"step": 100 * i, "epstats/reward_rate": float("nan")})
    return lines


def test_official_jsonl_sparse_lines_merged_by_step(tmp_path):
    run = read_run(write_lines(tmp_path / "metrics.jsonl", official_lines()))
    assert run.format == "dreamerv3" and run.meta["implementation"] == "dreamerv3"
    assert run.get("episode/score").steps.tolist() == [100 * i for i in range(1, 40)]
    assert run.get("policy/entropy").steps.tolist() == [500, 1000, 1500, 2000, 2500, 3000, 3500]
    assert run.sources["return/mean"] == "train/tar" and run.sources["loss/policy"] == "train/loss/policy"
    assert run.get("raw/usage/psutil/proc_ram_gb").values.tolist() == [3.2] * 7
    assert np.isnan(run.get("raw/epstats/reward_rate").values).all()
    assert run.meta["action_dim"] == 5 and run.meta["dist"] == "discrete"


def test_official_2023_names(tmp_path):
    lines = [{"step": 10 * i, "train/policy_entropy_mean": 2.0 - 0.1 * i, "train/policy_logprob_mean": -1.0,
              "train/adv_mean": 0.0, "train/extr_return_raw_mean": 3.0, "train/extr_critic_mean": 2.5,
              "train/image_loss_mean": 9.0} for i in range(5)]
    run = read_run(write_lines(tmp_path / "metrics.jsonl", lines))
    assert run.format == "dreamerv3"
    assert run.sources == {"policy/entropy": "train/policy_entropy_mean", "policy/logprob_mean":
                           "train/policy_logprob_mean", "adv_norm/mean": "train/adv_mean",
                           "return/mean": "train/extr_return_raw_mean", "value/mean": "train/extr_critic_mean",
                           "loss/image": "train/image_loss_mean"}


def test_dreamerv3_torch_jsonl(tmp_path):
    lines = [{"step": 0, "dataset_size": 100.0, "train_return": -10.0, "train_length": 100.0},
             {"step": 500},
             {"step": 500, "actor_entropy": 1.2, "EMA_005": -1.0, "EMA_095": 3.0, "imag_action_mean": 0.1,
              "actor_loss": 0.3, "reward_loss": 2.0, "kl": 1.5},
             {"step": 1000, "eval_return": 50.0, "eval_length": 20.0}]
    run = read_run(write_lines(tmp_path / "metrics.jsonl", lines))
    assert run.format == "dreamerv3-torch" and run.meta["implementation"] == "dreamerv3-torch"
    assert run.get("return/scale").values.tolist() == [4.0]
    assert run.sources["loss/reward"] == "reward_loss" and run.sources["loss/policy"] == "actor_loss"
    assert {"raw/kl", "raw/imag_action_mean", "raw/eval_return", "raw/dataset_size"} <= set(run.series)


def test_r2dreamer_jsonl_text_values_left_out(tmp_path):
    lines = [{"step": 0, "config/yaml": "```yaml\nseed: 0\n```"},
             {"step": 10, "episode/score": 5.0, "episode/length": 30.0},
             {"step": 20, "train/action_entropy": 0.9, "train/ret_005": 0.0, "train/ret_095": 0.5,
              "train/adv": 0.01, "train/tar": 1.0, "train/loss/policy": 0.1, "fps/fps": 300.0}]
    run = read_run(write_lines(tmp_path / "metrics.jsonl", lines))
    assert run.format == "r2dreamer"
    assert run.sources["policy/entropy"] == "train/action_entropy" and run.sources["perf/fps"] == "fps/fps"
    assert run.get("return/scale").values.tolist() == [0.5]
    assert "raw/config/yaml" not in run.series
    assert any("metrics.jsonl:1: 'config/yaml' holds str values, not numbers; left out" in w for w in run.warnings)


def test_dreamscope_run_dir_with_meta(tmp_path):
    lines = [{"step": 16 * i, "policy/entropy": 13.6, "policy/std_mean": 7.3, "episode/win": -1, "time": 1.0}
             for i in range(50)]
    write_lines(tmp_path / "metrics.jsonl", lines)
    (tmp_path / "meta.json").write_text(json.dumps({"action_dim": 4, "dist": "tanh_normal", "eta": 3e-3,
                                                    "std_min": 0.0067, "std_max": 7.389, "task": "airhockey"}))
    assert detect_format(tmp_path) == "dreamscope"
    run = read_run(tmp_path)
    assert run.meta["action_dim"] == 4 and run.meta["dist"] == "tanh_normal" and run.meta["task"] == "airhockey"
    assert run.get("episode/win").values[0] == -1.0 and "raw/time" in run.series
    assert "policy/saturation_frac" in run.missing() and "policy/entropy" not in run.missing()


def test_dreamscope_meta_errors_name_file_line_and_accepted_values(tmp_path):
    write_lines(tmp_path / "metrics.jsonl", [{"step": 1, "policy/entropy": 1.0}])
    (tmp_path / "meta.json").write_text('{\n  "action_dim": 4,\n  "dist": "gaussian"\n}')
    with pytest.raises(DreamscopeError, match=r"meta.json:3: dist = 'gaussian'; expected bounded_normal \| tanh_normal"):
        read_run(tmp_path)
    (tmp_path / "meta.json").write_text('{"action_dim": 4,')
    with pytest.raises(DreamscopeError, match=r"meta.json:1: not valid JSON"):
        read_run(tmp_path)


def write_float(path: Path, records, order=">") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(struct.pack(order + "qd", s, v) for s, v in records))


def test_scope_float_files_both_layouts_and_byte_orders(tmp_path):
    scope = tmp_path / "scope"
    write_float(scope / "train-ent-action.float", [(100, 1.5), (200, 1.25), (300, 1.0)])  # danijar/scope naming
    write_float(scope / "episode" / "score.float", [(150, 2.0), (250, 4.0)], order="<")  # nested, little-endian
    write_float(scope / "train-rand-action.float", [(100, 1.5 / math.log(5)), (200, 1.25 / math.log(5)),
                                                    (300, 1.0 / math.log(5))])
    (scope / "report-openl.mp4").mkdir()
    assert detect_format(tmp_path) == "dreamerv3-scope"
    run = read_run(tmp_path)
    assert run.get("policy/entropy").steps.tolist() == [100, 200, 300]
    assert run.get("policy/entropy").values.tolist() == [1.5, 1.25, 1.0]
    assert run.get("episode/score").values.tolist() == [2.0, 4.0]
    assert run.meta["byte_order"] == {"big": 2, "little": 1} and run.meta["not_scalar"] == ["report-openl.mp4"]
    assert run.meta["action_dim"] == 5 and run.meta["dist"] == "discrete"


def test_scope_partial_record_and_restart(tmp_path):
    file = tmp_path / "scope" / "episode-score.float"
    write_float(file, [(1000, 1.0), (2000, 2.0), (50, 3.0)])
    file.write_bytes(file.read_bytes() + b"\x00\x01\x02")
    run = read_run(tmp_path)
    assert run.get("episode/score").steps.tolist() == [1000, 2000, 2050]
    assert any("3 trailing byte(s) after record 3" in w for w in run.warnings)
    assert any("record 3 (byte 32): step counter restarts (2000 -> 50)" in w for w in run.warnings)


def test_scope_garbage_is_an_error(tmp_path):
    (tmp_path / "x.float").write_bytes(b"this is not a scope column......")
    with pytest.raises(DreamscopeError, match=r"x.float: record 1 \(byte 0\): step .* not a plausible step"):
        read_run(tmp_path / "x.float")


NATURAL_HEADER = ["envSteps", "gradientSteps", "totalReward", "worldModelLoss", "reconstructionLoss",
                  "rewardPredictorLoss", "klLoss", "actorLoss", "criticLoss", "entropies", "logprobs", "advantages",
                  "criticValues"]


def test_naturaldreamer_csv(tmp_path):
    path = tmp_path / "CarRacing-v3_run.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(NATURAL_HEADER)
        for i in range(1, 11):
            writer.writerow([1000 * i, 100 * i, -50 + i, 5, 4, 0.5, 0.5, 0.01, 1.0, 13.676, -3.0, 0.05, 2.0])
    assert detect_format(path) == "naturaldreamer" and detect_format(tmp_path) == "naturaldreamer"
    run = read_run(path)
    assert run.get("policy/entropy").steps.tolist() == [1000 * i for i in range(1, 11)]
    assert run.get("policy/entropy").values[0] == 13.676 and run.get("adv_norm/mean").values[0] == 0.05
    assert run.get("raw/gradientSteps").values[-1] == 1000 and run.get("episode/score").values[0] == -49
    assert run.meta["step_column"] == "envSteps" and run.meta["implementation"] == "naturaldreamer"


def test_csv_bad_middle_row_and_truncated_last_row(tmp_path):
    path = tmp_path / "run.csv"
    rows = [",".join(NATURAL_HEADER)] + [",".join(str(i) for i in [1000 * k, k] + [0.5] * 11) for k in range(1, 6)]
    rows[2] = "2000,2,0.5,oops"
    path.write_text("\n".join(rows) + "\n6000,6,0.5")
    run = read_run(path)
    assert run.get("policy/entropy").steps.tolist() == [1000, 3000, 4000, 5000]
    assert run.warnings[:2] == [f"{path}:3: 4 fields where the header has 13; row skipped",
                                f"{path}:7: 3 fields where the header has 13; row skipped"]


def test_generic_csv_wandb_export_with_mapping(tmp_path):
    path = tmp_path / "export.csv"
    path.write_text("Step,myrun - actor/ent,myrun - actor/ent__MIN,myrun - ret/p95,myrun - note\n"
                    "100,1.5,1.4,,a\n200,1.4,1.3,9.0,b\n300,,,,c\n400,1.2,1.1,8.0,d\n")
    assert detect_format(path) == "csv"
    run = read_run(path, mapping={"actor/ent": "policy/entropy", "ret/p95": "return/hi"})
    assert run.get("policy/entropy").steps.tolist() == [100, 200, 400]
    assert run.get("return/hi").steps.tolist() == [200, 400]
    assert run.get("raw/actor/ent__MIN").values.tolist() == [1.4, 1.3, 1.1]
    assert run.meta["wandb_run"] == "myrun" and "raw/note" not in run.series
    assert any("column 'note' holds text ('a'), not numbers; left out" in w for w in run.warnings)
    with pytest.raises(DreamscopeError, match=r"--map actor/ent=policy/entropi: 'policy/entropi' is not a canonical"):
        read_run(path, mapping={"actor/ent": "policy/entropi"})
    run = read_run(path, mapping={"nope": "policy/entropy"})
    assert any("--map source(s) nope not found" in w for w in run.warnings)


def test_per_dimension_keys_reveal_action_dim(tmp_path):
    path = tmp_path / "dims.csv"
    path.write_text("global_step,policy/action_0,policy/action_1,policy/action_2,policy/action_3\n1,0,0,0,0\n")
    run = read_run(path)
    assert run.meta["action_dim"] == 4 and "action_dim" in run.meta["inferred"]
    path.write_text("global_step,policy/action_0,policy/action_2\n1,0,0\n")
    assert "action_dim" not in read_run(path).meta


def test_generic_csv_needs_a_step_column(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("time,loss\n1,2\n")
    with pytest.raises(DreamscopeError, match=r"x.csv:1: no step column in the header \['time', 'loss'\]"):
        read_run(path)


def test_tensorboard_sheeprl_simple_values_and_dreamerv3_torch_prefix(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(tmp_path / "version_0"))
    for i in range(5):
        writer.add_scalar("Loss/policy_loss", 0.1 * i, 1000 * i)
        writer.add_scalar("Rewards/rew_avg", float(i), 1000 * i)
        writer.add_scalar("State/kl", 2.0, 1000 * i)
    writer.add_histogram("Params/hist", np.arange(10.0), 0)
    writer.close()
    assert detect_format(tmp_path) == "tensorboard"
    run = read_run(tmp_path)
    assert run.meta["implementation"] == "sheeprl"
    assert run.get("loss/policy").steps.tolist() == [0, 1000, 2000, 3000, 4000]
    assert run.get("episode/score").values.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert "raw/State/kl" in run.series

    writer = SummaryWriter(str(tmp_path / "torch"))
    for i in range(3):
        writer.add_scalar("scalars/actor_entropy", 1.0 - 0.1 * i, 500 * i)
        writer.add_scalar("scalars/EMA_005", 0.0, 500 * i)
        writer.add_scalar("scalars/EMA_095", 2.0, 500 * i)
    writer.close()
    run = read_run(tmp_path / "torch")
    assert run.meta["implementation"] == "dreamerv3-torch" and run.sources["policy/entropy"] == "actor_entropy"
    assert run.get("return/scale").values.tolist() == [2.0, 2.0, 2.0]


def test_tensorboard_tensor_scalars_and_canonical_pass_through(tmp_path):
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.plugins.scalar import metadata
    from tensorboard.util import tensor_util
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(str(tmp_path))
    for i in range(4):
        for tag, value in (("policy/entropy", 13.6), ("policy/saturation_frac", 0.7 + 0.01 * i)):
            tensor = tensor_util.make_tensor_proto(np.float32(value))
            meta = metadata.create_summary_metadata(display_name="", description="")
            writer.file_writer.add_summary(Summary(value=[Summary.Value(tag=tag, metadata=meta, tensor=tensor)]), 10 * i)
    writer.add_text("notes", "hello", 0)
    writer.close()
    event_file = next(tmp_path.glob("events.out.tfevents*"))
    assert detect_format(event_file) == "tensorboard"
    run = read_run(event_file)
    assert run.meta["implementation"] == "dreamscope"
    assert run.get("policy/saturation_frac").values == pytest.approx([0.70, 0.71, 0.72, 0.73])
    assert run.get("policy/entropy").steps.tolist() == [0, 10, 20, 30]


def test_tensorboard_several_runs_is_an_error(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    for name in ("a", "b"):
        writer = SummaryWriter(str(tmp_path / name))
        writer.add_scalar("x", 1.0, 0)
        writer.close()
    with pytest.raises(DreamscopeError, match="holds 2 TensorBoard runs"):
        read_run(tmp_path)


# ---------------------------------------------------------------- malformed input

def test_empty_file(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("")
    with pytest.raises(DreamscopeError, match=r"metrics.jsonl:1: the file is empty"):
        read_run(path)
    with pytest.raises(DreamscopeError, match=r"metrics.jsonl:1: the file is empty; expected one JSON object"):
        read_run(path, format="dreamerv3")


def test_binary_garbage(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"step": 1}\n' + bytes(range(256)) * 4)
    with pytest.raises(DreamscopeError, match=r"metrics.jsonl:2: binary data \(byte 12 is 0x00\), not text"):
        read_run(path)
    with pytest.raises(DreamscopeError, match=r"metrics.jsonl:2: binary data .*; expected one JSON object per line"):
        read_run(path, format="dreamerv3")
    noisy = tmp_path / "noise.csv"
    noisy.write_bytes(bytes(range(1, 256)) * 8)
    with pytest.raises(DreamscopeError, match=r"noise.csv:1: binary data \(byte 0 is 0x01\), not text"):
        read_run(noisy)
    with pytest.raises(DreamscopeError, match=r"noise.csv:1: binary data .*; expected a NaturalDreamer metrics CSV"):
        read_run(noisy, format="naturaldreamer")


def test_wrong_format_forced(tmp_path):
    path = write_lines(tmp_path / "metrics.jsonl", official_lines())
    with pytest.raises(DreamscopeError, match=r"metrics.jsonl:1: the header .* has no envSteps column; expected a "
                                              r"NaturalDreamer metrics CSV"):
        read_run(path, format="naturaldreamer")
    csv_path = tmp_path / "m.csv"
    csv_path.write_text("step,loss\n1,2\n2,3\n")
    with pytest.raises(DreamscopeError, match=r"m.csv:1: not valid JSON \(Expecting value\): 'step,loss'; expected one"):
        read_run(csv_path, format="dreamerv3")
    run = read_run(path, format="dreamerv3-torch")
    assert any("read as dreamerv3-torch as asked, but its keys look like dreamerv3's" in w for w in run.warnings)


def test_unknown_format_lists_formats(tmp_path):
    with pytest.raises(DreamscopeError) as error:
        read_run(tmp_path, format="dreamer")
    assert all(name in str(error.value) for name in FORMATS)


def test_corrupt_middle_line_blank_lines_truncated_end_and_special_values(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "train/ent/action": 1.5, "episode/score": null}\n'
                    "\n"
                    '{"step": 2, "train/ent/action": NaN}\n'
                    '{"step": 3, "train/ent/action": Infinity, "train/adv": -Infinity}\n'
                    '{"step": 4, "train/ent/action": 1.4 GARBAGE\n'
                    "   \n"
                    '  {"step": 5, "train/ent/action": 1.3}\n'
                    '{"step": 6, "train/ent/action": 1.2}\n'
                    '{"step": 7, "train/ent')
    run = read_run(path, format="dreamerv3")
    entropy = run.get("policy/entropy")
    assert entropy.steps.tolist() == [1, 2, 3, 5, 6]
    assert entropy.values[0] == 1.5 and np.isnan(entropy.values[1]) and entropy.values[2] == math.inf
    assert np.isnan(run.get("episode/score").values[0])
    assert any(w.startswith(f"{path}:5: not valid JSON") for w in run.warnings)
    assert any(w.startswith(f"{path}:9: truncated last line") for w in run.warnings)
    assert any("infinite values kept as +-inf in: train/ent/action (1), train/adv (1)" in w for w in run.warnings)


def test_lines_without_step_or_with_bad_step(tmp_path):
    path = write_lines(tmp_path / "metrics.jsonl", [{"step": 1, "policy/entropy": 1.0}, {"policy/entropy": 2.0},
                                                    {"step": 2.5, "policy/entropy": 3.0}, [1, 2],
                                                    {"step": 3, "policy/entropy": 4.0}])
    run = read_run(path, format="dreamscope")
    assert run.get("policy/entropy").values.tolist() == [1.0, 4.0]
    assert any(f'{path}:2: no "step" key' in w for w in run.warnings)
    assert any(f"{path}:3: step is not an integer" in w for w in run.warnings)
    assert any(f"{path}:4: a JSON list, not an object" in w for w in run.warnings)


def test_only_bad_lines_is_an_error(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("not json\nstill not\n")
    with pytest.raises(DreamscopeError, match=r"metrics.jsonl:1: neither a JSON line nor a CSV header: 'not json'"):
        read_run(path)
    with pytest.raises(DreamscopeError, match=r"metrics.jsonl:1: not valid JSON \(Expecting value\): 'not json'"):
        read_run(path, format="dreamerv3")


def test_key_order_varying_between_lines_reads_right(tmp_path):
    lines = [{"step": 2 * i, "a/x": 1.0, "b/y": 2.0} if i % 2 else {"step": 2 * i, "b/y": 3.0, "a/x": 4.0}
             for i in range(1, 7)]
    path = write_lines(tmp_path / "m.jsonl", lines)
    run = read_run(path, format="dreamscope")
    assert run.get("raw/a/x").values.tolist() == [1.0, 4.0] * 3
    assert run.get("raw/b/y").values.tolist() == [2.0, 3.0] * 3
    assert run.get("raw/a/x").steps.tolist() == [2, 4, 6, 8, 10, 12]


def test_compact_separators_and_crlf(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b'{"step":1,"policy/entropy":1.0}\r\n{"step":2,"policy/entropy":0.5}\r\n')
    run = read_run(path, format="dreamscope")
    assert run.get("policy/entropy").values.tolist() == [1.0, 0.5]


def test_many_blocks_keep_line_numbers(tmp_path, monkeypatch):
    monkeypatch.setattr(jsonl, "_BLOCK", 64)  # force many blocks, both paths
    monkeypatch.setattr(jsonl, "MIN_TABLE_LINES", 1)
    lines = [{"step": i, "policy/entropy": float(i)} for i in range(200)]
    lines[150] = '{"step": 150, "policy/entropy": oops}'
    run = read_run(write_lines(tmp_path / "metrics.jsonl", lines), format="dreamscope")
    assert run.get("policy/entropy").steps.tolist() == [i for i in range(200) if i != 150]
    assert any(":151: not valid JSON" in w for w in run.warnings)


# ---------------------------------------------------------------- step repair

def test_repair_restart_resume_and_stray():
    where = lambda i: f"line {i + 1}"  # noqa: E731
    steps, keep, warnings, events = repair_steps(np.array([10, 20, 30, 2, 12, 22]), where)
    assert steps.tolist() == [10, 20, 30, 32, 42, 52] and keep.all()
    assert events == [{"at": "line 4", "from": 30, "to": 2, "kind": "restart", "shift": 30}]
    steps, keep, warnings, events = repair_steps(np.array([100, 200, 300, 250, 260, 310]), where)
    assert steps.tolist() == [100, 200, 300, 250, 260, 310] and keep.tolist() == [True, True, False] + [True] * 3
    assert events[0]["kind"] == "resume" and events[0]["superseded"] == 1
    steps, keep, warnings, events = repair_steps(np.array([146, 146, 0, 146, 200]), where)
    assert steps.tolist() == [146, 146, 0, 146, 200] and keep.all() and events[0]["kind"] == "stray"
    assert "line 3: step 0 is below the previous line's 146" in warnings[0]


def test_restart_offset_in_a_file(tmp_path):
    first = [{"step": s, "episode/score": 1.0} for s in (100, 500, 1000)]
    second = [{"step": s, "episode/score": 2.0} for s in (50, 400, 900)]
    run = read_run(write_lines(tmp_path / "metrics.jsonl", first + second))
    score = run.get("episode/score")
    assert score.steps.tolist() == [100, 500, 1000, 1050, 1400, 1900]
    assert run.warnings == [f"{tmp_path / 'metrics.jsonl'}:4: step counter restarts (1000 -> 50): a new run was "
                            "appended; its steps are shifted by +1000 so that the series stay monotone"]


# ---------------------------------------------------------------- detection

def test_detect_every_format(tmp_path):
    (tmp_path / "official").mkdir()
    official = write_lines(tmp_path / "official" / "metrics.jsonl", official_lines())
    assert detect_format(official) == "dreamerv3" and detect_format(official.parent) == "dreamerv3"
    (tmp_path / "torch").mkdir()
    torch_log = write_lines(tmp_path / "torch" / "metrics.jsonl", [{"step": 0}] * 50 + [{"step": 5, "actor_entropy": 1.0}])
    assert detect_format(torch_log) == "dreamerv3-torch"
    r2 = write_lines(tmp_path / "r2.jsonl", [{"step": 5, "train/action_entropy": 1.0, "train/adv": 0.0}])
    assert detect_format(r2) == "r2dreamer"
    episodes_only = write_lines(tmp_path / "ep.jsonl", [{"step": 5, "episode/score": 1.0}])
    assert detect_format(episodes_only) == "dreamerv3"
    ours = write_lines(tmp_path / "ours.jsonl", [{"step": 5, "policy/entropy": 1.0, "adv/mean": 0.0}])
    assert detect_format(ours) == "dreamscope"
    write_float(tmp_path / "sc" / "scope" / "a.float", [(1, 1.0)])
    assert detect_format(tmp_path / "sc") == "dreamerv3-scope"
    assert detect_format(tmp_path / "sc" / "scope" / "a.float") == "dreamerv3-scope"
    unknown = write_lines(tmp_path / "unknown.jsonl", [{"step": 5, "foo": 1.0}])
    assert detect_format(unknown) == "jsonl"
    run = read_run(unknown)
    assert "raw/foo" in run.series and any("no key is a name that dreamscope knows (foo)" in w for w in run.warnings)
    broken = write_lines(tmp_path / "broken.jsonl", ["", "{oops", "{still not"])
    with pytest.raises(DreamscopeError, match=r"broken.jsonl:2: not a JSON object line: '\{oops'"):
        detect_format(broken)
    with pytest.raises(DreamscopeError, match="no such file or directory"):
        detect_format(tmp_path / "missing")
    (tmp_path / "empty_dir").mkdir()
    with pytest.raises(DreamscopeError, match=r"empty_dir: no log found"):
        detect_format(tmp_path / "empty_dir")


# ---------------------------------------------------------------- the bulk (table) path and gzip

def careful_only(monkeypatch):
    monkeypatch.setattr(jsonl, "_arrow_table", lambda data, fields, lines: None)


TRICKY = [
    '{"step": %d, "x-1": 5.0, "e": 1e-05}',   # digits and 'e' inside keys: the skeleton cannot tell these apart
    '{"step": %d, "x": -15.0, "e": 2.5}',
    '{"step": %d, "x-1": NaN, "e": Infinity}',
    '{"step": %d, "e": 7, "x-1": 6}',          # the same keys in another order
    '{"step": %d, "x-1": 1, "x-1": 2}',        # a duplicate key: JSON keeps the last value
    '{"step": %d, "a,b": 3, "c:d": 4}',        # separators inside keys
    '{"step": %d, "q\\"uote": 8}',             # an escaped quote inside a key
    '{"step": %d, "x-1": 9}:',                 # text after the object
    '{"step": %d, "x-1": 1.5.5}',              # not a number
    '{"step": %d, "x-1": 12345678901234567890, "e": -0.0}',
]


def test_table_path_agrees_with_json_on_tricky_lines(tmp_path, monkeypatch):
    monkeypatch.setattr(jsonl, "MIN_TABLE_LINES", 1)
    lines = [template % (10 * rep + k) for rep in range(3) for k, template in enumerate(TRICKY)]
    path = write_lines(tmp_path / "metrics.jsonl", lines)
    bulk = read_run(path, format="dreamscope")
    careful_only(monkeypatch)
    careful = read_run(path, format="dreamscope")
    assert bulk.series.keys() == careful.series.keys()
    assert all(same_series(bulk.series[k], careful.series[k]) for k in bulk.series)
    assert bulk.warnings == careful.warnings
    expected = {}  # independent of both paths: json's own reading, line by line
    for line in lines:
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        for key, value in obj.items():
            expected.setdefault(key, []).append((obj["step"], value))
    for key, points in expected.items():
        if key != "step":
            assert same_series(bulk.get(f"raw/{key}"), Series(*zip(*points))), key


def test_table_path_reads_numbers_exactly(tmp_path, monkeypatch):
    monkeypatch.setattr(jsonl, "MIN_TABLE_LINES", 1)
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(size=300), rng.normal(size=100) * 1e-300, rng.normal(size=100) * 1e300,
                             [0.1, 1 / 3, 2.0**-1074, 1.7976931348623157e308]])
    path = write_lines(tmp_path / "metrics.jsonl", [{"step": i, "policy/entropy": float(v)} for i, v in enumerate(values)])
    run = read_run(path, format="dreamscope")
    assert run.get("policy/entropy").values.tolist() == values.tolist()  # bit for bit, as json.dumps wrote them


def test_gzip_jsonl_and_csv_read_like_plain(tmp_path):
    import gzip

    (tmp_path / "plain").mkdir()
    (tmp_path / "packed").mkdir()
    lines = [{"step": 10 * i, "train/ent/action": 1.0 - 0.01 * i, "episode/score": float(i)} for i in range(50)]
    plain = write_lines(tmp_path / "plain" / "metrics.jsonl", lines)
    packed = tmp_path / "packed" / "metrics.jsonl.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    a, b = read_run(plain), read_run(tmp_path / "packed")
    assert a.format == b.format == "dreamerv3"
    assert a.series.keys() == b.series.keys() and all(same_series(a.series[k], b.series[k]) for k in a.series)
    csv_text = "envSteps,gradientSteps,totalReward,entropies\n" + "".join(f"{100 * i},{i},{i / 2},{3 - i / 10}\n"
                                                                         for i in range(20))
    (tmp_path / "nd").mkdir()
    (tmp_path / "nd" / "metrics.csv.gz").write_bytes(gzip.compress(csv_text.encode()))
    run = read_run(tmp_path / "nd")
    assert run.format == "naturaldreamer"
    assert run.get("policy/entropy").values.tolist() == [3 - i / 10 for i in range(20)]


def test_gzip_cut_short_names_file_and_line(tmp_path):
    import gzip

    lines = [{"step": i, "policy/entropy": float(i)} for i in range(20000)]
    data = gzip.compress("".join(json.dumps(x) + "\n" for x in lines).encode())
    path = tmp_path / "metrics.jsonl.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DreamscopeError, match=r"metrics.jsonl.gz:\d+: the gzip stream breaks off"):
        read_run(path, format="dreamscope")


@pytest.mark.parametrize("values", [[1e308, -1e308, 1e307], [1e5, 2e5, 3e5], [math.nan, math.inf, 2.0]])
def test_randomness_fit_ignores_absurd_entropies(tmp_path, values):
    """Found by the fuzzer: 1e308 entropies overflowed the line fit, and a fit of 1e5 read as a categorical."""
    lines = [{"step": i, "train/ent/action": v, "train/rand/action": v / 1e5 if math.isfinite(v) else 0.5}
             for i, v in enumerate(values)]
    run = read_run(write_lines(tmp_path / "metrics.jsonl", lines), format="dreamerv3")
    assert "dist" not in run.meta and "action_dim" not in run.meta
    assert all(np.isfinite(run.series[k].values).all() for k in ("policy/entropy_max", "policy/entropy_min_ref")
               if k in run.series)


def test_carriage_return_inside_a_line(tmp_path, monkeypatch):
    """Found by the fuzzer: a lone \\r splits a line for the CSV reader, which then lacked the columns asked for."""
    monkeypatch.setattr(jsonl, "MIN_TABLE_LINES", 1)
    path = tmp_path / "metrics.jsonl"
    path.write_bytes(b"".join(b'{"step": %d,\r "x": 1, "y": 5}\n' % i for i in range(3)) + b'{"step": 4, "x": 2}\n')
    run = read_run(path, format="dreamscope")  # \r between tokens is JSON whitespace
    assert run.get("raw/x").values.tolist() == [1.0, 1.0, 1.0, 2.0] and run.get("raw/y").steps.tolist() == [0, 1, 2]
    assert run.warnings == []
