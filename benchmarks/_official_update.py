"""One timing worker for the official DreamerV3 update (run by benchmarks/vs_official.py).

Runs with the official code's own venv: ``DIR/.venv/bin/python benchmarks/_official_update.py
DIR --dtype float32|bfloat16 --threads 1``. Builds the official Agent the way its
dreamerv3/main.py does (configs.yaml ``defaults`` + ``size1m``, ``jax.platform=cpu``), for the
observation and action spaces of DMC cartpole-swingup proprio after the official env wrappers
(position 3 + velocity 2 as float32, action 1-D in [-1, 1]), without an env. The agent compiles
its train step on construction; the worker then times ``agent.train`` on one fixed random batch
(batch 16 x (64 + 1 replay-context step), with the ``consec``/``stepid``/``dyn/*`` entries the
train step expects), blocking on the new parameters after each update. Speaks the protocol of
benchmarks/_timing.py.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _timing import protocol_stream, serve, xla_thread_flags  # noqa: E402

OBS_SHAPES = {"position": (3,), "velocity": (2,)}  # DMC cartpole-swingup, proprio
ACTION_DIM = 1


def build(official: Path, dtype: str, batch_size: int, batch_length: int, logdir: str):
    """The official Agent for ``dtype`` and the config it was built from."""
    sys.path[:0] = [str(official)]
    import elements
    import numpy as np
    import ruamel.yaml as yaml
    from dreamerv3.agent import Agent

    configs = yaml.YAML(typ="safe").load((official / "dreamerv3" / "configs.yaml").read_text())
    config = elements.Config(configs["defaults"]).update(configs["size1m"])
    config = config.update({"jax.platform": "cpu", "jax.compute_dtype": dtype, "jax.prealloc": False,
                            "batch_size": batch_size, "batch_length": batch_length,
                            "logdir": logdir})
    obs_space = {key: elements.Space(np.float32, shape) for key, shape in OBS_SHAPES.items()}
    obs_space.update(reward=elements.Space(np.float32), is_first=elements.Space(bool),
                     is_last=elements.Space(bool), is_terminal=elements.Space(bool))
    act_space = {"action": elements.Space(np.float32, (ACTION_DIM,), -1, 1)}
    agent = Agent(obs_space, act_space, elements.Config(
        **config.agent, logdir=config.logdir, seed=config.seed, batch_size=config.batch_size,
        jax={**config.jax, "profiler": False},  # its trace of updates 100-120 would land in the timings
        batch_length=config.batch_length, replay_context=config.replay_context,
        report_length=config.report_length, replica=config.replica, replicas=config.replicas))
    return agent, config


def random_batch(agent, batch_size: int, length: int, rng) -> dict:
    """A batch with every key the official train step asserts (``agent.spaces``), random where it matters."""
    import numpy as np

    batch = {}
    for key, space in agent.spaces.items():
        shape = (batch_size, length, *space.shape)
        if key == "action":
            batch[key] = rng.uniform(-1, 1, shape).astype(space.dtype)
        elif key == "dyn/stoch":  # one-hot categorical latents, as the policy writes them into the replay
            batch[key] = np.eye(shape[-1], dtype=space.dtype)[rng.integers(0, shape[-1], shape[:-1])]
        elif np.issubdtype(space.dtype, np.floating):
            batch[key] = rng.normal(0, 1, shape).astype(space.dtype)
        else:  # is_first / is_last / is_terminal / consec / stepid: zeros, one long episode
            batch[key] = np.zeros(shape, space.dtype)
    batch["reward"][:, ::50] = 10.0
    return batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("official", type=Path, help="the official dreamerv3 checkout")
    parser.add_argument("--dtype", choices=["float32", "bfloat16"], default="float32")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, nargs=2, default=[16, 64], metavar=("B", "T"))
    parser.add_argument("--warmup", type=int, default=3)
    args = parser.parse_args()
    out = protocol_stream()
    # XLA reads its flags when the backend starts: start it now, before the official setup()
    # rewrites XLA_FLAGS with its GPU flags.
    os.environ["XLA_FLAGS"] = xla_thread_flags(args.threads)
    os.environ["JAX_PLATFORMS"] = "cpu"
    import jax
    import numpy as np

    jax.devices()
    batch_size, batch_length = args.batch
    with tempfile.TemporaryDirectory() as logdir:
        agent, config = build(args.official.resolve(), args.dtype, batch_size, batch_length, logdir)
        from embodied.jax import internal

        data = internal.device_put(random_batch(agent, batch_size, batch_length + config.replay_context,
                                                np.random.default_rng(0)),
                                   agent.train_sharded)
        carry = [agent.init_train(batch_size)]
        counter = [0]

        def update() -> None:
            counter[0] += 1
            seed = agent._seeds(counter[0], agent.train_mirrored)
            carry[0], _, _ = agent.train(carry[0], {**data, "seed": seed})
            jax.block_until_ready((agent.params, carry[0]))

        for _ in range(args.warmup):
            update()
        cost = agent._train.cost_analysis()
        flops = (cost[0] if isinstance(cost, list) else cost).get("flops", float("nan"))
        modules = ("dyn/", "enc/", "dec/", "rew/", "con/", "pol/", "val/")  # not the optimiser state or slow critic
        serve(update, {"impl": "official", "precision": args.dtype, "jax": jax.__version__,
                       "params_M": sum(v.size for k, v in agent.params.items() if k.startswith(modules)) / 1e6,
                       "flops": flops}, out)


if __name__ == "__main__":
    main()
