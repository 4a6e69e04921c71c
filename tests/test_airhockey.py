"""Air-hockey env: rules (goals, rewards, time limit), physics sanity, determinism, API."""

import math
import os
import warnings

os.environ.setdefault("MUJOCO_GL", "disable")

import gymnasium as gym  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from PIL import Image  # noqa: E402

import dreamscope  # noqa: E402,F401  (registers the env)
from dreamscope.envs import AIRHOCKEY_ID, register_envs  # noqa: E402
from dreamscope.envs.airhockey import (  # noqa: E402
    GOAL_REWARD, L, PADDLE_HALF, PADDLE_R, PUCK_R, STRIKE_SPEED, W,
    AirHockeyEnv, chase_policy, save_episode_gif,
)
from dreamscope.errors import DreamscopeError  # noqa: E402

ZERO = np.zeros(4, np.float32)
OUT_OF_THE_WAY = ((-L + 0.125, -0.375, 0.0), (L - 0.125, -0.375, 0.0))  # paddles in the corners


def place(env, puck, puck_vel, agent=OUT_OF_THE_WAY[0], opponent=OUT_OF_THE_WAY[1]):
    """Put the bodies where a test needs them (paddles at rest)."""
    data = env.unwrapped.data
    data.qpos[:] = (*agent, *opponent, *puck)
    data.qvel[:] = 0.0
    data.qvel[6:8] = puck_vel
    mujoco.mj_forward(env.unwrapped.model, data)


def puck_energy(env):
    vx, vy = env.data.qvel[6:8]
    return 0.5 * env.model.body("puck").mass[0] * (vx * vx + vy * vy)


def play(env, policy, seed):
    """One episode; returns (rewards, infos, terminated, truncated)."""
    obs, _ = env.reset(seed=seed)
    rewards, infos = [], []
    while True:
        obs, reward, terminated, truncated, info = env.step(policy(obs))
        rewards.append(reward)
        infos.append(info)
        if terminated or truncated:
            return rewards, infos, terminated, truncated


def random_policy(seed):
    rng = np.random.default_rng(seed)
    return lambda obs: rng.uniform(-1, 1, 4).astype(np.float32)


@pytest.mark.parametrize("direction, sign", [(1, 1), (-1, -1)])
def test_goal_on_each_side_gives_the_right_reward_and_win(direction, sign):
    env = AirHockeyEnv(opponent="idle")
    env.reset(seed=0)
    place(env, puck=(0.5 * direction, 0.05), puck_vel=(4.0 * direction, 0.0))
    flags = []
    for _ in range(20):
        obs, reward, terminated, truncated, info = env.step(ZERO)
        flags.append(obs[21])
        if terminated:
            break
    assert terminated and not truncated
    assert reward == sign * GOAL_REWARD and info["win"] == sign
    assert flags[-1] == sign and all(f == 0 for f in flags[:-1])  # the goal flag marks the scoring step only
    assert env.reset(seed=1)[0][21] == 0


def test_shot_at_the_wall_beside_the_goal_is_no_goal():
    env = AirHockeyEnv(opponent="idle")
    env.reset(seed=0)
    place(env, puck=(0.5, 0.3), puck_vel=(4.0, 0.0))
    for _ in range(15):
        _, reward, terminated, _, _ = env.step(ZERO)
        assert not terminated and reward == 0.0
    assert env.data.qvel[6] < 0.0  # it came back


@pytest.mark.parametrize("puck, vel", [
    ((0.0, 0.0), (0.1, 3.0)),  # side wall to side wall, many bounces
    ((0.0, 0.0), (-0.1, -6.0)),
    ((0.0, 0.35), (3.0, 0.0)),  # end walls beside the goals, back and forth
    ((-0.3, -0.3), (-2.0, -1.0)),  # into the corners
])
def test_puck_bounces_and_never_gains_kinetic_energy(puck, vel):
    env = AirHockeyEnv(opponent="idle")
    env.reset(seed=0)
    place(env, puck=puck, puck_vel=vel)
    model, data = env.model, env.data
    start = energy = puck_energy(env)
    bounces, touching = 0, False
    for _ in range(1500):  # 7.5 s of physics, checked at every physics step
        mujoco.mj_step(model, data)
        if data.ncon:
            touching = True
            continue
        bounces += touching
        touching = False
        now = puck_energy(env)
        assert now <= energy * (1 + 1e-9)
        energy = now
        assert abs(data.qpos[7]) < W and abs(data.qpos[6]) < L
    assert bounces >= 2
    # Mild damping: drag and bounces remove energy but the puck keeps moving.
    assert 0.0 < energy < start


@pytest.mark.parametrize("speed", [0.5, 2.0, 4.0, 8.0])
def test_bounce_restitution_is_in_the_documented_range(speed):
    env = AirHockeyEnv(opponent="idle")
    env.reset(seed=0)
    place(env, puck=(0.0, 0.35), puck_vel=(0.0, speed))
    while not env.data.ncon:
        incoming = env.data.qvel[7]
        mujoco.mj_step(env.model, env.data)
    while env.data.ncon:
        mujoco.mj_step(env.model, env.data)
    assert 0.8 < -env.data.qvel[7] / incoming < 1.0


def max_x_extent(x, angle, side):
    """The paddle capsule's furthest x towards the centre line."""
    return x + side * (PADDLE_HALF * abs(math.sin(angle)) + PADDLE_R)


def test_paddles_cannot_cross_the_centre_line_under_max_force():
    env = AirHockeyEnv(opponent="idle")  # idle never writes the opponent's controls
    env.reset(seed=1)
    deepest_agent, deepest_opponent = -1.0, 1.0
    for k in range(150):
        env.data.ctrl[3:6] = (-1.0, math.sin(k / 5), 1.0)  # push the opponent at the line too
        env.step(np.array([1.0, math.sin(k / 7), 1.0 if k % 40 < 20 else -1.0, 1.0], np.float32))
        q = env.data.qpos
        deepest_agent = max(deepest_agent, max_x_extent(q[0], q[2], +1))
        deepest_opponent = min(deepest_opponent, max_x_extent(q[3], q[5], -1))
    assert -0.03 < deepest_agent <= 0.0  # it did reach the line...
    assert 0.0 <= deepest_opponent < 0.03  # ...and so did the opponent, neither crossed


@pytest.mark.parametrize("opponent", ["idle", "defender", "attacker"])
def test_random_episodes_end_by_250_steps_and_bookkeeping_matches(opponent):
    env = AirHockeyEnv(opponent=opponent)
    policy = random_policy(0)
    for seed in range(10):
        rewards, infos, terminated, truncated = play(env, policy, seed)
        assert len(rewards) <= 250 and terminated != truncated
        assert truncated == (len(rewards) == 250)
        assert all(r == 0.0 for r in rewards[:-1]) and all(i["win"] == 0 for i in infos[:-1])
        win = infos[-1]["win"]
        assert rewards[-1] == GOAL_REWARD * win and terminated == (win != 0)


def test_gym_make_truncates_once_at_250_steps():
    env = gym.make(AIRHOCKEY_ID, opponent="idle")
    assert env.spec.max_episode_steps is None  # the env owns the limit; no TimeLimit on top
    env.reset(seed=0)
    for step in range(1, 251):
        obs, _, terminated, truncated, _ = env.step(ZERO)
        assert not terminated and truncated == (step == 250)
    assert obs[18] == 0.0


def test_v0_is_v1_without_the_goal_flag():
    """v1 added the goal flag; the v0 ids stay for runs recorded before it: the same game, the
    same 21 values, and nothing else changed."""
    actions = np.random.default_rng(5).uniform(-1, 1, (300, 4)).astype(np.float32)
    old, new = gym.make("dreamscope/AirHockeyIdle-v0"), gym.make("dreamscope/AirHockeyIdle-v1")
    assert old.observation_space.shape == (21,) and new.observation_space.shape == (22,)
    o_old, o_new = old.reset(seed=4)[0], new.reset(seed=4)[0]
    for a in actions:
        assert np.array_equal(o_old, o_new[:21])
        o_old, r_old, term_old, trunc_old, _ = old.step(a)
        o_new, r_new, term_new, trunc_new, _ = new.step(a)
        assert (r_old, term_old, trunc_old) == (r_new, term_new, trunc_new)
        if term_new or trunc_new:
            o_old, o_new = old.reset(seed=5)[0], new.reset(seed=5)[0]


def test_same_seed_and_actions_give_bitwise_equal_trajectories():
    actions = np.random.default_rng(3).uniform(-1, 1, (400, 4)).astype(np.float32)

    def trajectory(seed):
        env = AirHockeyEnv(opponent="attacker")
        out = [env.reset(seed=seed)[0]]
        for a in actions:
            obs, reward, terminated, truncated, _ = env.step(a)
            out.append(np.append(obs, reward))
            if terminated or truncated:
                out.append(env.reset()[0])
        return np.concatenate(out)

    first = trajectory(7)
    assert first.tobytes() == trajectory(7).tobytes()
    assert first.tobytes() != trajectory(8).tobytes()


def test_observation_stays_finite_and_on_the_table_over_10000_random_steps():
    env = AirHockeyEnv(opponent="attacker", reward="dense")
    actions = np.random.default_rng(0).uniform(-1.5, 1.5, (10_000, 4)).astype(np.float32)
    obs, _ = env.reset(seed=0)
    for a in actions:
        obs, reward, terminated, truncated, _ = env.step(a)
        assert obs.dtype == np.float32 and obs.shape == (22,)
        assert np.isfinite(obs).all() and math.isfinite(reward)
        assert abs(obs[15]) < W and abs(obs[14]) < L + 0.3
        if terminated or truncated:
            obs, _ = env.reset()


def test_chase_policy_beats_idle_more_often_than_random():
    env = AirHockeyEnv(opponent="idle")
    rand = random_policy(1)
    chase_wins = sum(play(env, chase_policy, seed)[1][-1]["win"] == 1 for seed in range(100))
    random_wins = sum(play(env, rand, seed)[1][-1]["win"] == 1 for seed in range(100))
    assert chase_wins > random_wins + 20


def test_strike_kicks_a_puck_in_reach_then_recharges():
    env = AirHockeyEnv(opponent="idle")
    env.reset(seed=0)
    touching = PADDLE_R + PUCK_R + 0.01
    place(env, agent=(-0.5, 0.0, 0.0), puck=(-0.5 + touching, 0.0), puck_vel=(0.0, 0.0))
    obs, *_ = env.step(np.array([0, 0, 0, 1], np.float32))
    assert obs[16] == pytest.approx(STRIKE_SPEED, rel=0.05) and obs[19] == pytest.approx(0.9)
    place(env, agent=(-0.5, 0.0, 0.0), puck=(-0.5 + touching, 0.0), puck_vel=(0.0, 0.0))
    obs, *_ = env.step(np.array([0, 0, 0, 1], np.float32))
    assert abs(obs[16]) < 0.05  # still recharging


def test_keep_mode_holds_the_puck_and_shoot_releases_it():
    env = AirHockeyEnv(opponent="idle", keep_mode=True)
    env.reset(seed=0)
    place(env, agent=(-0.5, 0.0, 0.0), puck=(-0.5 + PADDLE_R + PUCK_R, 0.0), puck_vel=(0.0, 0.0))
    hold = np.array([0.0, 1.0, 0.0, 0.0], np.float32)  # drag the puck sideways
    for _ in range(10):
        obs, *_ = env.step(hold)
    assert obs[20] == pytest.approx(10 / 25)
    assert obs[1] > 0.2 and abs(obs[15] - obs[1]) < 0.02  # the puck came along
    obs, *_ = env.step(np.array([0.0, 0.0, 0.0, 1.0], np.float32))
    assert obs[20] == 0.0 and obs[16] > 2.0  # released with a strike towards +x


def test_keep_mode_releases_the_puck_by_itself():
    env = AirHockeyEnv(opponent="idle", keep_mode=True)
    env.reset(seed=0)
    place(env, agent=(-0.5, 0.0, 0.0), puck=(-0.5 + PADDLE_R + PUCK_R, 0.0), puck_vel=(0.0, 0.0))
    held = [env.step(ZERO)[0][20] > 0 for _ in range(30)]
    assert held[:25] == [True] * 25 and not held[25]


def test_dense_reward_is_the_sparse_reward_plus_small_shaping():
    actions = np.random.default_rng(5).uniform(-1, 1, (250, 4)).astype(np.float32)
    totals = {}
    for mode in ("sparse", "dense"):
        env = AirHockeyEnv(opponent="attacker", reward=mode)
        env.reset(seed=11)
        totals[mode] = []
        for a in actions:
            _, reward, terminated, truncated, _ = env.step(a)
            totals[mode].append(reward)
            if terminated or truncated:
                break
    sparse, dense = np.array(totals["sparse"]), np.array(totals["dense"])
    assert len(sparse) == len(dense)
    shaping = dense - sparse
    assert np.abs(shaping).max() < 0.5 and abs(shaping.sum()) < 3.0 and shaping.std() > 0


@pytest.mark.parametrize("bad", [
    [np.nan, 0, 0, 0], [0, np.inf, 0, 0], [0, 0, -np.inf, 0],
])
def test_non_finite_action_raises_naming_it(bad):
    env = AirHockeyEnv()
    env.reset(seed=0)
    with pytest.raises(DreamscopeError, match=r"action \[.*(nan|inf).*\].*accepted"):
        env.step(np.array(bad, np.float32))


def test_wrong_action_shape_raises():
    env = AirHockeyEnv()
    env.reset(seed=0)
    with pytest.raises(DreamscopeError, match=r"shape \(4,\).*\(3,\)"):
        env.step([0.0, 0.0, 0.0])


def test_out_of_range_actions_are_clipped():
    def final_obs(scale):
        env = AirHockeyEnv(opponent="idle")
        env.reset(seed=4)
        for _ in range(20):
            obs, *_ = env.step(np.array([1.0, -1.0, 1.0, -1.0], np.float32) * scale)
        return obs
    assert final_obs(1.0).tobytes() == final_obs(50.0).tobytes()
    env = AirHockeyEnv()
    env.reset(seed=0)
    action = np.array([3.0, -2.0, 0.5, 9.0])
    env.step(action)
    assert action.tolist() == [3.0, -2.0, 0.5, 9.0]  # the caller's array is left alone


@pytest.mark.parametrize("kwargs, named", [
    ({"opponent": "goalie"}, "'goalie'.*idle, defender, attacker"),
    ({"reward": "shaped"}, "'shaped'.*sparse, dense"),
    ({"render_mode": "human"}, "'human'.*rgb_array"),
])
def test_bad_constructor_args_raise_naming_value_and_choices(kwargs, named):
    with pytest.raises(DreamscopeError, match=named):
        AirHockeyEnv(**kwargs)


def test_gym_make_after_import_passes_the_env_checker():
    from gymnasium.utils.env_checker import check_env

    register_envs()  # idempotent
    env = gym.make(AIRHOCKEY_ID, opponent="attacker", render_mode="rgb_array")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(env.unwrapped, skip_render_check=False)
    # Velocities have no hard bound, so the observation space is unbounded on purpose.
    assert all("infinity" in str(w.message) for w in caught), [str(w.message) for w in caught]
    obs, _ = env.reset(seed=0)
    assert env.observation_space.contains(obs)


def test_render_and_gif(tmp_path):
    env = AirHockeyEnv(render_mode="rgb_array", max_steps=12)
    env.reset(seed=0)
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[2] == 3
    assert frame.shape[1] > 1.5 * frame.shape[0]  # a wide table, seen from the top
    result = save_episode_gif(env, chase_policy, tmp_path / "ep.gif", seed=0)
    with Image.open(tmp_path / "ep.gif") as gif:
        assert gif.n_frames == result["length"] + 1
    with pytest.raises(DreamscopeError, match="rgb_array"):
        AirHockeyEnv().render()


def test_dense_variant_id_gives_the_shaped_rewards_of_reward_dense():
    from dreamscope.envs.factory import make_env

    actions = np.random.default_rng(5).uniform(-1, 1, (60, 4)).astype(np.float32)

    def rewards(env):
        env.reset(seed=11)
        return [env.step(a)[1] for a in actions]

    dense = rewards(make_env("airhockey-dense"))
    assert dense == rewards(AirHockeyEnv(reward="dense"))
    assert sum(r not in (0.0, GOAL_REWARD, -GOAL_REWARD) for r in dense) > 50  # shaped almost every step
    assert set(rewards(make_env("airhockey"))) <= {0.0, GOAL_REWARD, -GOAL_REWARD}


def test_idle_variant_id_is_the_sparse_task_against_a_paddle_that_never_moves():
    from dreamscope.envs.factory import make_env

    actions = np.random.default_rng(6).uniform(-1, 1, (80, 4)).astype(np.float32)

    def observations(env):
        first, _ = env.reset(seed=12)
        return np.stack([first] + [env.step(a)[0] for a in actions])

    idle = observations(make_env("airhockey-idle"))
    np.testing.assert_array_equal(idle, observations(AirHockeyEnv(opponent="idle")))
    assert np.ptp(idle[:, 7:9], axis=0).max() < 1e-6  # the opponent's paddle stays where it started
    assert np.ptp(observations(make_env("airhockey"))[:, 7:9], axis=0).max() > 0.01  # the defender moves


def test_idle_dense_variant_id_is_the_open_goal_with_shaping():
    from dreamscope.envs.factory import make_env

    actions = np.random.default_rng(7).uniform(-1, 1, (120, 4)).astype(np.float32)

    def trajectory(env):
        first, _ = env.reset(seed=3)
        steps = [env.step(a)[:2] for a in actions]
        return np.stack([first] + [obs for obs, _ in steps]), np.array([reward for _, reward in steps])

    obs, rewards = trajectory(make_env("airhockey-idle-dense"))
    ref_obs, ref_rewards = trajectory(AirHockeyEnv(opponent="idle", reward="dense"))
    np.testing.assert_array_equal(obs, ref_obs)
    np.testing.assert_array_equal(rewards, ref_rewards)
    assert np.ptp(obs[:, 7:9], axis=0).max() < 1e-6  # idle
    assert (rewards != 0).sum() > 100  # shaped on (almost) every step
