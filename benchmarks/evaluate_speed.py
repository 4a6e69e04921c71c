"""Throughput of `dreamscope evaluate`'s episode loop (agent + air hockey) by model and --envs.

    python benchmarks/evaluate_speed.py [--models tiny remedy-small size1m] [--envs 1 8 32] [--episodes 32] [--repeats 3]

An untrained agent (a step costs the same whatever the weights) plays --episodes episodes of
AirHockeyIdle-v1 with the sampled policy, through the same `play` and `AgentPolicy` that
`dreamscope evaluate` uses, on one torch thread as a sweep's trial has. A row is the median over
--repeats of env steps per second and the seconds 200 episodes of that length would take.
Untrained play mostly runs to the 250-step time-out, so a trained policy that scores (shorter
episodes) takes less.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

os.environ.setdefault("MUJOCO_GL", "disable")

from machine import describe  # noqa: E402

#: model name -> (preset, bundled configs layered on it)
MODELS = {
    "tiny": ("tiny", []),
    "remedy-small": ("tiny", ["airhockey_seed_small", "airhockey_remedy_small"]),
    "size1m": ("size1m", []),
}


def measure(model: str, envs: int, episodes: int, repeats: int) -> dict:
    import torch

    from dreamscope.agent.agent import Agent
    from dreamscope.config import compose
    from dreamscope.envs.factory import make_vector_env
    from dreamscope.evaluate import AgentPolicy, play

    preset, configs = MODELS[model]
    cfg = compose(preset, configs, {})
    vector_env = make_vector_env("dreamscope/AirHockeyIdle-v1", envs, seed=0)
    agent = Agent(cfg, vector_env.single_observation_space.shape[0], vector_env.single_action_space.shape[0]).eval()
    rates, lengths = [], []
    for repeat in range(repeats + 1):  # the first plays once to warm up
        torch.manual_seed(repeat)
        start = time.perf_counter()
        played = play(vector_env, AgentPolicy(agent, explore=True, device="cpu"), episodes, seed=repeat)
        seconds = time.perf_counter() - start
        if repeat:
            rates.append(played["length"].sum() / seconds)
            lengths.append(played["length"].mean())
    vector_env.close()
    rate, length = statistics.median(rates), statistics.median(lengths)
    return {"model": model, "envs": envs, "steps_per_s": rate, "length": length, "s_per_200": 200 * length / rate}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--envs", nargs="+", type=int, default=[1, 8, 32])
    parser.add_argument("--episodes", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    print(describe())
    print("command: python " + " ".join(sys.argv))
    print(f"\n| model | --envs | env steps/s (median of {args.repeats}) | mean length | s per 200 episodes |")
    print("|---|---:|---:|---:|---:|")
    for model in args.models:
        for envs in args.envs:
            row = measure(model, envs, max(args.episodes, envs), args.repeats)
            print(f"| {row['model']} | {row['envs']} | {row['steps_per_s']:,.0f} | {row['length']:.0f} | "
                  f"{row['s_per_200']:.0f} |", flush=True)


if __name__ == "__main__":
    main()
