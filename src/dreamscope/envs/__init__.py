"""Environments. Importing this package stays cheap: MuJoCo loads only when an env is made."""

from __future__ import annotations

from gymnasium.envs.registration import register, registry

AIRHOCKEY_ID = "dreamscope/AirHockey-v1"
#: The same task with the documented shaping term, named as Gymnasium-Robotics names its dense
#: variants; a control for the sparse task: does a remedy help once a learning signal exists?
AIRHOCKEY_DENSE_ID = "dreamscope/AirHockeyDense-v1"
#: The sparse task against an opponent that never moves (an open goal): random play scores in
#: about 5% of episodes, so a policy that learned shows as a score far above that.
AIRHOCKEY_IDLE_ID = "dreamscope/AirHockeyIdle-v1"
#: The open goal with the shaping term: the easiest variant, where a remedy that frees the
#: policy has both a learning signal and goals within reach.
AIRHOCKEY_IDLE_DENSE_ID = "dreamscope/AirHockeyIdleDense-v1"
#: The variants' keyword arguments. v1 added the goal flag to the observation (21 -> 22 values);
#: the v0 ids stay registered without it, so that runs and results recorded on them reproduce.
_VARIANTS = {"AirHockey": {}, "AirHockeyDense": {"reward": "dense"}, "AirHockeyIdle": {"opponent": "idle"},
             "AirHockeyIdleDense": {"opponent": "idle", "reward": "dense"}}


def register_envs() -> None:
    """Register dreamscope's Gymnasium ids; calling it again is a no-op.

    The env counts its own steps (the time left is part of the observation) and truncates at
    ``max_steps`` (250), so no ``max_episode_steps`` is registered: a TimeLimit wrapper would
    only duplicate that. Pass ``max_steps=`` to ``gym.make`` to change it.
    """
    entry = "dreamscope.envs.airhockey:AirHockeyEnv"
    for name, kwargs in _VARIANTS.items():
        for version, goal_flag in (("v0", False), ("v1", True)):
            env_id = f"dreamscope/{name}-{version}"
            if env_id not in registry:
                register(id=env_id, entry_point=entry, kwargs={**kwargs, "goal_flag": goal_flag})
