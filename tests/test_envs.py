"""Env specs: Gymnasium ids, dm_control tasks, module:EnvId, action rescaling and repeat."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("MUJOCO_GL", "disable")

from dreamscope.envs.factory import make_env, make_vector_env  # noqa: E402
from dreamscope.errors import DreamscopeError  # noqa: E402


def test_pendulum_actions_are_rescaled_from_unit_box():
    env = make_env("Pendulum-v1", seed=0)
    assert env.action_space.low.tolist() == [-1.0] and env.action_space.high.tolist() == [1.0]
    assert env.unwrapped.action_space.high.tolist() == [2.0]  # the env's own torque limit
    env.reset(seed=0)
    env.step(np.array([1.0], np.float32))
    assert env.unwrapped.last_u == pytest.approx(2.0)


def test_dmc_task_is_a_flat_gymnasium_env():
    pytest.importorskip("dm_control", reason="needs the [dmc] extra")
    env = make_env("dmc:walker-walk", seed=1)
    obs, _ = env.reset(seed=1)
    assert obs.shape == (24,) and obs.dtype == np.float32
    assert env.action_space.shape == (6,)
    _, reward, terminated, truncated, _ = env.step(np.zeros(6, np.float32))
    assert 0.0 <= reward <= 1.0 and not terminated and not truncated


def test_module_prefixed_id_and_action_repeat():
    env = make_env("gymnasium.envs.classic_control:MountainCarContinuous-v0", seed=0, action_repeat=4)
    env.reset(seed=0)
    _, reward, *_ = env.step(np.array([1.0], np.float32))
    assert reward == pytest.approx(-4 * 0.1 * 1.0**2)  # four steps of the action cost


def test_airhockey_alias_and_vector_env():
    envs = make_vector_env("airhockey", 2, seed=0)
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (2, 22)
    envs.close()


@pytest.mark.parametrize("spec,match", [
    ("NoSuchEnv-v9", "NoSuchEnv-v9.*accepted"),
    ("dmc:walker", "expected dmc:DOMAIN-TASK"),
    ("dmc:walker-fly", "dmc:walker-fly"),
    ("no_such_module_xyz:Env-v0", "cannot import module 'no_such_module_xyz'"),
    ("CartPole-v1", "Discrete action space"),
])
def test_bad_specs_name_the_problem(spec, match):
    with pytest.raises(DreamscopeError, match=match):
        make_env(spec)


def test_dmc_tests_skip_without_the_dmc_extra(tmp_path):
    """Run the tests that need dm_control where it is not installed: they skip, they do not fail."""
    blocker = tmp_path / "dm_control"
    blocker.mkdir()
    (blocker / "__init__.py").write_text("raise ModuleNotFoundError('dm_control blocked by the test', name='dm_control')\n")
    root = Path(__file__).resolve().parents[1]
    tests = ["tests/test_envs.py::test_dmc_task_is_a_flat_gymnasium_env",
             "tests/test_model_fit.py::test_labels_of_a_dmc_task"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(root / "src")])}
    out = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
                         cwd=root, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-2000:]
    assert re.search(r"\b2 skipped\b", out.stdout), out.stdout[-2000:]
