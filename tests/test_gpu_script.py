"""benchmarks/gpu.sh runs on the CPU at toy sizes, so that the one call a lent GPU machine gets cannot rot."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_gpu_script_runs_every_step_on_the_cpu(tmp_path):
    env = {**os.environ, "DEVICE": "cpu", "QUICK": "1", "PYTHON": sys.executable, "STEP_TIMEOUT": "300"}
    result = subprocess.run(["bash", "benchmarks/gpu.sh", str(tmp_path)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=900)
    log = (tmp_path / "gpu_session.txt").read_text()
    ends = [line for line in log.splitlines() if line.startswith("=== ") and ": rc " in line]
    steps = {line.split()[1].rstrip(":"): int(line.split(": rc ")[1].split(",")[0]) for line in ends}
    assert set(steps) == {"cpu_train", "cpu_diagnose", "cpu_probe", "cpu_probe_of_cpu_run", "train_step_cpu",
                          "train_loop_cpu"}, result.stdout
    assert all(rc == 0 for rc in steps.values()), log[-3000:]
    assert result.returncode == 0
    assert "| cpu | tiny | False | bfloat16 |" in log  # the update timed in both precisions
