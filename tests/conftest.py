"""Test-session settings (headless MuJoCo, one torch thread) and the trained run the tests share.

The tests' models are tiny; with two threads on a 2-core machine that also runs other
work, OpenMP spin-waiting made single tests 10x slower. One thread is fast and repeatable.
"""

import os
import shutil
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "disable")
os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by subprocesses (kill/resume, Ray workers)

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)

#: A tiny Pendulum run that trains in seconds: 200 prefill steps, then 20 steps of updates.
TRAINED_RUN = {"run.env": "Pendulum-v1", "run.steps": 220, "run.prefill": 200, "run.batch_size": 4,
               "run.batch_length": 16, "run.train_ratio": 16, "run.log_every": 40, "run.signals_every": 2,
               "optim.warmup": 10}


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory):
    """One finished run (config, meta, metrics, checkpoint, replay) trained once per test session,
    with the tiny preset and :data:`TRAINED_RUN`. Read it only; a test that writes takes ``run_copy``."""
    from dreamscope.config import Config, apply_overrides, apply_preset
    from dreamscope.train import Trainer

    path = tmp_path_factory.mktemp("trained") / "run"
    Trainer(apply_overrides(apply_preset(Config(), "tiny"), TRAINED_RUN), path).train(progress=False)
    return path


@pytest.fixture
def run_copy(trained_run, tmp_path):
    """A copy of the shared trained run that the test may change."""
    return Path(shutil.copytree(trained_run, tmp_path / "run"))
