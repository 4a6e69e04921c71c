"""Turn an env spec string into a Gymnasium env with a flat float32 observation and actions in [-1, 1].

Accepted specs:
  * ``airhockey``                      dreamscope's sparse-reward task (``dreamscope/AirHockey-v1``)
  * ``airhockey-dense``                the same with shaping (``dreamscope/AirHockeyDense-v1``)
  * ``airhockey-idle``                 sparse, against an opponent that never moves (``dreamscope/AirHockeyIdle-v1``)
  * ``airhockey-idle-dense``           the same with shaping (``dreamscope/AirHockeyIdleDense-v1``)
  * ``Pendulum-v1`` or any Gymnasium id with a Box action space
  * ``dmc:walker-walk``                DeepMind Control Suite via dm_control (domain-task)
  * ``my_package.my_module:MyEnv-v0``  imports the module (which registers the id), then makes it
"""

from __future__ import annotations

import importlib

import gymnasium as gym
import numpy as np

from dreamscope.errors import DreamscopeError

ALIASES = {"airhockey": "dreamscope/AirHockey-v1", "airhockey-dense": "dreamscope/AirHockeyDense-v1",
           "airhockey-idle": "dreamscope/AirHockeyIdle-v1", "airhockey-idle-dense": "dreamscope/AirHockeyIdleDense-v1"}


def resolve_env_id(spec: str) -> str:
    """The registered id an alias stands for today (other specs unchanged). A run records this,
    not the alias, so that it still names the env it was trained on after an alias moves on."""
    return ALIASES.get(spec, spec)


class ActionRepeat(gym.Wrapper):
    """Repeat each action ``repeat`` times, summing rewards and stopping at episode end."""

    def __init__(self, env: gym.Env, repeat: int):
        super().__init__(env)
        self.repeat = repeat

    def step(self, action):
        total = 0.0
        for _ in range(self.repeat):
            obs, reward, terminated, truncated, info = self.env.step(action)
            total += float(reward)
            if terminated or truncated:
                break
        return obs, total, terminated, truncated, info


class DMCEnv(gym.Env):
    """A dm_control suite task as a Gymnasium env (observations concatenated into one vector)."""

    metadata = {"render_modes": []}

    def __init__(self, domain: str, task: str, seed: int | None = None):
        from dm_control import suite

        try:
            self._env = suite.load(domain, task, task_kwargs={"random": seed})
        except ValueError as err:
            raise DreamscopeError(f"--env dmc:{domain}-{task}: {err}") from None
        spec = self._env.action_spec()
        self.action_space = gym.spaces.Box(spec.minimum.astype(np.float32), spec.maximum.astype(np.float32), dtype=np.float32)
        sizes = {key: int(np.prod(v.shape)) for key, v in self._env.observation_spec().items()}
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (sum(sizes.values()),), np.float32)
        self.observation_labels = [key if n == 1 else f"{key}[{i}]" for key, n in sizes.items() for i in range(n)]

    @staticmethod
    def _flat(observation) -> np.ndarray:
        return np.concatenate([np.asarray(v, np.float32).reshape(-1) for v in observation.values()])

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        if seed is not None:
            self._env.task.random.seed(seed)
        return self._flat(self._env.reset().observation), {}

    def step(self, action):
        ts = self._env.step(action)
        terminated = ts.last() and ts.discount == 0
        return self._flat(ts.observation), float(ts.reward or 0.0), bool(terminated), bool(ts.last() and not terminated), {}


def _make_base(spec: str, seed: int | None) -> gym.Env:
    if spec.startswith("dmc:"):
        domain, sep, task = spec[4:].partition("-")
        if not sep:
            raise DreamscopeError(f"--env {spec!r}: expected dmc:DOMAIN-TASK, e.g. dmc:walker-walk")
        try:
            return DMCEnv(domain, task, seed)
        except ImportError:
            raise DreamscopeError(f"--env {spec!r} needs dm_control: pip install 'dreamscope[dmc]'") from None
    env_id = resolve_env_id(spec)
    module, sep, name = env_id.rpartition(":")
    if sep and "/" not in module:
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise DreamscopeError(f"--env {spec!r}: cannot import module {module!r} ({err})") from None
        env_id = name
    try:
        return gym.make(env_id)
    except gym.error.Error as err:
        raise DreamscopeError(f"--env {spec!r}: {err}; accepted: {', '.join(ALIASES)}, a Gymnasium id (Pendulum-v1), "
                              "dmc:DOMAIN-TASK, or module:EnvId") from None


def make_env(spec: str, seed: int | None = None, action_repeat: int = 1) -> gym.Env:
    """Build one env; actions are rescaled from [-1, 1] to the env's bounds and observations flattened."""
    env = _make_base(spec, seed)
    if not isinstance(env.action_space, gym.spaces.Box):
        raise DreamscopeError(f"--env {spec!r} has a {type(env.action_space).__name__} action space; "
                              "dreamscope trains continuous (Box) actions")
    if not isinstance(env.observation_space, gym.spaces.Box) or len(env.observation_space.shape) != 1:
        env = gym.wrappers.FlattenObservation(env)
    low, high = env.action_space.low, env.action_space.high
    if not (np.allclose(low, -1) and np.allclose(high, 1)):
        ones = np.ones(env.action_space.shape, np.float32)  # float32 bounds: no precision warning
        env = gym.wrappers.RescaleAction(env, -ones, ones)
    if action_repeat > 1:
        env = ActionRepeat(env, action_repeat)
    return env


def make_vector_env(spec: str, num: int, seed: int, action_repeat: int = 1) -> gym.vector.VectorEnv:
    """``num`` copies stepped together in this process (SyncVectorEnv, next-step autoreset)."""
    fns = [lambda i=i: make_env(spec, seed + i, action_repeat) for i in range(num)]
    return gym.vector.SyncVectorEnv(fns, autoreset_mode=gym.vector.AutoresetMode.NEXT_STEP)
