"""Whole training runs per second (env steps and updates), one or several runs at once.

A sweep puts several trials on one machine, or one GPU: this measures what each trial gets
and what the machine delivers in total when P identical runs (seeds 0..P-1) share it.

    python benchmarks/train_loop.py [--config airhockey_seed_small] [--preset tiny] [--steps 1500]
                                    [--device cpu|cuda] [--parallel 1 4] [--set KEY=VALUE ...]

Each run is a `dreamscope train` process with one torch thread. Its rates are the medians of
the `perf/env_steps_per_second` and `perf/updates_per_second` lines it logged after prefill
(the first such line, which holds warm-up and compilation, is dropped).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from machine import describe


def run_parallel(args: argparse.Namespace, parallel: int, root: Path) -> dict:
    """Start ``parallel`` runs together; their per-run median rates and the wall time of the slowest."""
    procs, logdirs = [], []
    for seed in range(parallel):
        logdir = root / f"p{parallel}_seed{seed}"
        cmd = [sys.executable, "-m", "dreamscope.cli", "train", "--preset", args.preset, "--config", args.config,
               "--logdir", str(logdir), "--steps", str(args.steps), "--no-progress",
               "--set", f"run.device={args.device}", "--set", f"run.seed={seed}", "--set", "run.threads=1"]
        for pair in args.set:
            cmd += ["--set", pair]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                      env={**os.environ, "OMP_NUM_THREADS": "1", "MUJOCO_GL": "disable"}))
        logdirs.append(logdir)
    start = time.perf_counter()
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode:
            sys.exit(f"{args.device}, {parallel} runs: a run failed:\n{err}")
    wall = time.perf_counter() - start
    env_rates, update_rates = zip(*(_rates(logdir / "metrics.jsonl") for logdir in logdirs))
    return {"parallel": parallel, "env_steps_per_s": statistics.median(env_rates),
            "updates_per_s": statistics.median(update_rates), "total_env_steps_per_s": sum(env_rates),
            "total_updates_per_s": sum(update_rates), "wall_s": wall}


def _rates(metrics: Path) -> tuple[float, float]:
    lines = [json.loads(line) for line in metrics.read_text().splitlines()]
    training = [line for line in lines if line.get("perf/updates_per_second", 0) > 0][1:]
    if not training:
        sys.exit(f"{metrics}: no logged interval after warm-up; raise --steps")
    return (statistics.median(line["perf/env_steps_per_second"] for line in training),
            statistics.median(line["perf/updates_per_second"] for line in training))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="airhockey_seed_small", help="bundled config name or YAML file")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--steps", type=int, default=1500, help="env steps per run (default: 1500)")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda (default: cpu)")
    parser.add_argument("--parallel", type=int, nargs="+", default=[1], metavar="P",
                        help="numbers of simultaneous runs to measure (default: 1)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override for every run")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = [run_parallel(args, parallel, Path(tmp)) for parallel in args.parallel]
    print(describe())
    print(f"command: python benchmarks/train_loop.py {' '.join(sys.argv[1:])}")
    print(f"device {args.device}; per run: medians over its logged intervals; total: sum over the runs\n")
    header = ["parallel", "env_steps_per_s", "updates_per_s", "total_env_steps_per_s", "total_updates_per_s", "wall_s"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(f"{row[h]:.3g}" if isinstance(row[h], float) else str(row[h]) for h in header) + " |")


if __name__ == "__main__":
    main()
