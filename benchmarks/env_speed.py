"""Air-hockey env throughput (steps/s, medians) and baseline outcome rates, as tables.

    python benchmarks/env_speed.py [--steps 20000] [--repeats 5] [--episodes 200]

Throughput counts env steps (a vector step of N envs counts N) with uniform random actions
drawn before the clock starts; episodes reset as they end. The outcome table plays
``--episodes`` seeded episodes per opponent and policy and reports win/draw/loss fractions.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

os.environ.setdefault("MUJOCO_GL", "disable")

import gymnasium as gym  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402

import dreamscope  # noqa: E402,F401  (registers the env)
from dreamscope.envs import AIRHOCKEY_ID  # noqa: E402
from dreamscope.envs.airhockey import OPPONENTS, AirHockeyEnv, chase_policy  # noqa: E402
from machine import cpu_model  # noqa: E402


def time_single(env: gym.Env, actions: np.ndarray) -> float:
    env.reset(seed=0)
    start = time.perf_counter()
    for a in actions:
        _, _, terminated, truncated, _ = env.step(a)
        if terminated or truncated:
            env.reset()
    return len(actions) / (time.perf_counter() - start)


def time_vector(env: gym.vector.VectorEnv, actions: np.ndarray) -> float:
    env.reset(seed=0)
    start = time.perf_counter()
    for a in actions:
        env.step(a)
    return actions.size // 4 / (time.perf_counter() - start)


def throughput(steps: int, repeats: int) -> list[tuple[str, float]]:
    """(setting, median steps/s) for one env and for vectors of envs."""
    rng = np.random.default_rng(0)
    make = lambda: gym.make(AIRHOCKEY_ID)  # noqa: E731
    settings = [
        ("AirHockeyEnv, 1 process", lambda: AirHockeyEnv(), 1, time_single),
        ("gym.make, 1 process", make, 1, time_single),
        *[(f"SyncVectorEnv x{n}", lambda n=n: gym.vector.SyncVectorEnv([make] * n), n, time_vector)
          for n in (1, 4, 16)],
        ("AsyncVectorEnv x2 (2 workers)", lambda: gym.vector.AsyncVectorEnv([make] * 2), 2, time_vector),
    ]
    rows = []
    for name, build, n, timer in settings:
        env = build()
        shape = (steps // n, n, 4) if timer is time_vector else (steps, 4)
        actions = rng.uniform(-1, 1, shape).astype(np.float32)
        timer(env, actions[: max(1, len(actions) // 20)])  # warm-up
        rows.append((name, statistics.median(timer(env, actions) for _ in range(repeats))))
        env.close()
    return rows


def outcomes(episodes: int) -> list[tuple[str, str, float, float, float, float]]:
    """(opponent, policy, win, draw, loss, mean length) over seeded episodes."""
    rows = []
    for opponent in OPPONENTS:
        env = AirHockeyEnv(opponent=opponent)
        rng = np.random.default_rng(0)
        policies = {"random": lambda obs: rng.uniform(-1, 1, 4).astype(np.float32), "chase": chase_policy}
        for name, policy in policies.items():
            wins, lengths = [], []
            for seed in range(episodes):
                obs, _ = env.reset(seed=seed)
                for length in range(1, env.max_steps + 1):
                    obs, _, terminated, truncated, info = env.step(policy(obs))
                    if terminated or truncated:
                        break
                wins.append(info["win"])
                lengths.append(length)
            w = np.array(wins)
            rows.append((opponent, name, (w == 1).mean(), (w == 0).mean(), (w == -1).mean(), np.mean(lengths)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20_000, help="env steps per timed repeat")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--episodes", type=int, default=200, help="episodes per opponent and policy")
    args = parser.parse_args()

    print(f"machine: {cpu_model()}, {os.cpu_count()} cores; Python {platform.python_version()}, "
          f"mujoco {mujoco.__version__}, gymnasium {gym.__version__}")
    print(f"command: python {' '.join(sys.argv)}\n")
    print(f"| setting | env steps/s (median of {args.repeats} x {args.steps} steps) |")
    print("|---|---:|")
    for name, rate in throughput(args.steps, args.repeats):
        print(f"| {name} | {rate:,.0f} |")
    print(f"\n| opponent | policy | win | draw | loss | mean length ({args.episodes} episodes) |")
    print("|---|---|---:|---:|---:|---:|")
    for opponent, policy, win, draw, loss, length in outcomes(args.episodes):
        print(f"| {opponent} | {policy} | {win:.3f} | {draw:.3f} | {loss:.3f} | {length:.1f} |")


if __name__ == "__main__":
    main()
