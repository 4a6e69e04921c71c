"""benchmarks/vs_official.py cannot rot: its arguments, the missing-official error, our side in-process,
and (where the official venv exists) the official worker's batch against the official agent's spaces."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCH))

import vs_official  # noqa: E402


def _run(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH / "vs_official.py"), *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)


def test_missing_official_dir_exits_nonzero_and_names_it(tmp_path):
    missing = tmp_path / "no_official_here"
    result = _run("--official", str(missing))
    assert result.returncode == 1
    assert str(missing) in result.stderr
    assert vs_official.OFFICIAL_COMMIT in result.stderr and vs_official.OFFICIAL_URL in result.stderr
    assert not missing.exists()  # nothing created for a directory that is not there


def test_official_dir_from_environment_and_not_a_checkout(tmp_path):
    (tmp_path / "README.md").write_text("not dreamerv3")
    result = _run(DREAMSCOPE_OFFICIAL=str(tmp_path))
    assert result.returncode == 1
    assert str(tmp_path) in result.stderr and "dreamerv3/configs.yaml" in result.stderr
    assert not (tmp_path / ".venv").exists()


def test_official_venv_installs_cpu_jax_not_the_cuda_and_atari_pins(tmp_path):
    (tmp_path / "requirements.txt").write_text(
        "ale_py==0.9.0\nautorom[accept-rom-license]==0.6.1\nchex\njax[cuda12]==0.4.33\n"
        "numpy<2  # DMLab: <2\nnvidia-cuda-nvcc-cu12<=12.2\noptax\n\nninjax>=3.5.1\n")
    assert vs_official.official_requirements(tmp_path) == ["chex", "numpy<2", "optax", "ninjax>=3.5.1"]
    assert "jax[cpu]==0.4.33" in vs_official.OFFICIAL_PINS


@pytest.mark.parametrize("args", [["--repeats", "0"], ["--threads", "-1"], ["--precisions", "float16"]])
def test_bad_arguments_are_usage_errors(args):
    result = _run(*args)
    assert result.returncode == 2
    assert args[0] in result.stderr


def test_our_side_in_process_counts_flops_and_updates():
    import torch

    threads = torch.get_num_threads()
    try:
        update, facts = vs_official.ours_update("tiny", "float32", False, 1,
                                                {"run.batch_size": "4", "run.batch_length": "16"})
    finally:
        torch.set_num_threads(threads)
    update()
    assert facts["impl"] == "ours" and facts["precision"] == "float32" and facts["threads"] == 1
    # The tiny preset's update at batch 4 x 16 (16 x fewer rows than 16 x 64's 0.62 GFLOP), by FlopCounterMode.
    assert 1e7 < facts["flops"] < 1e8
    assert 0.001 < facts["params_M"] < 0.1


def test_summary_ratio_takes_each_side_at_its_faster_setting():
    class Done:
        def __init__(self, name, impl, wall):
            self.name, self.wall, self.cpu = name, wall, [w / 2 for w in wall]
            self.facts = {"ready": True, "impl": impl, "flops": 2e9}

    workers = [Done("ours float32", "ours", [0.9, 1.0, 0.8]), Done("ours bfloat16", "ours", [0.5, 0.6, 0.4]),
               Done("official float32", "official", [1.2, 1.2, 1.3]), Done("official bfloat16", "official", [3.0])]
    result = vs_official.summarise(workers, {"float32": 100.0, "bfloat16": 400.0})
    assert result["ours_s"] == 0.5 and result["ours_setting"] == "ours bfloat16"
    assert result["official_s"] == 1.2 and result["official_setting"] == "official float32"
    assert result["ratio"] == pytest.approx(2.4)
    assert result["roofline_ms"] == pytest.approx({"float32": 20.0, "bfloat16": 5.0})
    json.dumps(result)  # --json prints it


def _official_python():
    python = vs_official.default_official() / ".venv" / "bin" / "python"
    return python if python.exists() else None


@pytest.mark.skipif(_official_python() is None, reason="the official DreamerV3 venv is absent")
def test_official_worker_batch_matches_the_agent_spaces():
    """Builds the official spaces and batch (no compile): every key the official train step asserts."""
    code = (f"import sys; sys.path[:0] = [{str(BENCH)!r}, {str(vs_official.default_official())!r}]\n"
            "import json, numpy as np, elements, _official_update as o\n"
            "class A: spaces = {'position': elements.Space(np.float32, (3,)), 'action': elements.Space(np.float32, (1,), -1, 1),"
            " 'dyn/stoch': elements.Space(np.float32, (32, 4)), 'consec': elements.Space(np.int32),"
            " 'reward': elements.Space(np.float32), 'is_first': elements.Space(bool)}\n"
            "b = o.random_batch(A, 16, 65, np.random.default_rng(0))\n"
            "print(json.dumps({k: [list(v.shape), str(v.dtype), float(v.min()), float(v.max())] for k, v in b.items()}"
            " | {'stoch_sums': sorted(set(b['dyn/stoch'].sum(-1).ravel().tolist()))}))\n")
    result = subprocess.run([str(_official_python()), "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    batch = json.loads(result.stdout)
    assert batch["position"][:2] == [[16, 65, 3], "float32"]
    assert batch["action"][0] == [16, 65, 1] and -1 <= batch["action"][2] and batch["action"][3] <= 1
    assert batch["dyn/stoch"][1:] == ["float32", 0.0, 1.0] and batch["stoch_sums"] == [1.0]  # one-hot
    assert batch["consec"][1:] == ["int32", 0.0, 0.0] and batch["is_first"][1] == "bool"
    assert batch["reward"][3] == 10.0
