"""Test-session settings: headless MuJoCo, and one torch thread.

The tests' models are tiny; with two threads on a 2-core machine that also runs other
work, OpenMP spin-waiting made single tests 10x slower. One thread is fast and repeatable.
"""

import os

os.environ.setdefault("MUJOCO_GL", "disable")
os.environ.setdefault("OMP_NUM_THREADS", "1")  # inherited by subprocesses (kill/resume, Ray workers)

import torch  # noqa: E402

torch.set_num_threads(1)
