"""Env specs: Gymnasium ids, dm_control tasks, module:EnvId, action rescaling and repeat."""

import os
import sys

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


def test_dmc_tests_skip_without_the_dmc_extra(monkeypatch):
    """The tests that need dm_control skip, not fail, where it is not installed (import fails)."""
    import importlib

    monkeypatch.setitem(sys.modules, "dm_control", None)  # `import dm_control` raises ModuleNotFoundError
    model_fit_tests = importlib.import_module("test_model_fit")  # the module pytest imported from tests/
    for test in (test_dmc_task_is_a_flat_gymnasium_env, model_fit_tests.test_labels_of_a_dmc_task):
        with pytest.raises(pytest.skip.Exception):
            test()
