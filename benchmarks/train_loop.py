"""Whole training runs per second (env steps and updates), one or several runs at once.

A sweep puts several trials on one machine, or one GPU: this measures what each trial gets
and what the machine delivers in total when P identical runs (seeds 0..P-1) share it.

    python benchmarks/train_loop.py [--config airhockey_seed_small ...] [--preset tiny] [--steps 1500]
                                    [--device cpu|cuda] [--parallel 1 4] [--threads 1] [--set KEY=VALUE ...]
                                    [--profile] [--json]

Each run is a `dreamscope train` process with ``--threads`` torch threads (default 1). Its rates
are the medians of the `perf/env_steps_per_second` and `perf/updates_per_second` lines it logged
after prefill (the first such line, which holds warm-up and compilation, is dropped).

``--profile`` runs one such run in this process under cProfile instead and splits its wall time
after prefill into updating (Agent.train_step, replay sampling), acting (Agent.act and what it
calls, the env step, adding to replay, the loop around them) and logging/checkpointing.
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


def train_argv(args: argparse.Namespace, logdir: Path, seed: int, threads: int) -> list[str]:
    """The `dreamscope train` arguments of one run."""
    argv = ["train", "--preset", args.preset, "--logdir", str(logdir), "--steps", str(args.steps), "--no-progress",
            "--set", f"run.device={args.device}", "--set", f"run.seed={seed}", "--set", f"run.threads={threads}"]
    for config in args.config:
        argv += ["--config", config]
    for pair in args.set:
        argv += ["--set", pair]
    return argv


def run_parallel(args: argparse.Namespace, parallel: int, root: Path, threads: int = 1,
                 env: dict[str, str] | None = None) -> dict:
    """Start ``parallel`` runs together, each with ``threads`` torch threads and ``env`` on top of
    this environment; their per-run median rates and the wall time of the slowest."""
    procs, logdirs = [], []
    for seed in range(parallel):
        logdir = root / f"p{parallel}_t{threads}_seed{seed}"
        cmd = [sys.executable, "-m", "dreamscope.cli", *train_argv(args, logdir, seed, threads)]
        procs.append(subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                      env={**os.environ, "OMP_NUM_THREADS": str(threads), "MUJOCO_GL": "disable",
                                           **(env or {})}))
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
            "total_updates_per_s": sum(update_rates), "per_run_updates_per_s": list(update_rates), "wall_s": wall,
            "load_average": os.getloadavg()[0]}


def _rates(metrics: Path) -> tuple[float, float]:
    lines = [json.loads(line) for line in metrics.read_text().splitlines()]
    training = [line for line in lines if line.get("perf/updates_per_second", 0) > 0][1:]
    if not training:
        sys.exit(f"{metrics}: no logged interval after warm-up; raise --steps")
    return (statistics.median(line["perf/env_steps_per_second"] for line in training),
            statistics.median(line["perf/updates_per_second"] for line in training))


#: Where a run's wall time goes: (share, cProfile functions as (file suffix, name)); a function's
#: cumulative time counts once, under the first share that lists it.
SHARES = {
    "update": [("agent/agent.py", "train_step"), ("dreamscope/replay.py", "sample")],
    "act: Agent.act": [("agent/agent.py", "act")],
    "act: env step": [("gymnasium/vector/sync_vector_env.py", "step")],
    "act: replay add": [("dreamscope/train.py", "_store")],
    "logging, checkpoints": [("dreamscope/train.py", "_write_metrics"), ("dreamscope/train.py", "_save_checkpoint")],
}


def profile_run(args: argparse.Namespace, root: Path) -> dict:
    """One run in this process under cProfile: seconds per share of the training loop (see SHARES)."""
    import cProfile
    import pstats

    from dreamscope.cli import main as cli_main

    profiler = cProfile.Profile()
    profiler.runcall(cli_main, train_argv(args, root / "profiled", 0, args.threads))
    stats = pstats.Stats(profiler).stats  # (file, line, name) -> (calls, ncalls, tottime, cumtime, callers)

    def cumulative(file_suffix: str, name: str) -> tuple[float, int]:
        found = [(v[3], v[1]) for (file, _, fn), v in stats.items() if fn == name and file.endswith(file_suffix)]
        return max(found, default=(0.0, 0))

    loop, _ = cumulative("dreamscope/train.py", "train")
    shares = {share: sum(cumulative(*fn)[0] for fn in fns) for share, fns in SHARES.items()}
    shares["act: loop (numpy, bookkeeping)"] = loop - sum(shares.values())
    act_seconds, act_calls = cumulative("agent/agent.py", "act")
    act_key = next((key for key in stats if key[2] == "act" and key[0].endswith("agent/agent.py")), None)
    # What Agent.act spends its time in: its direct callees, by their time when called from it.
    callees = sorted(((f"{Path(file).name}:{name}", v[4][act_key][3]) for (file, _, name), v in stats.items()
                      if act_key in v[4]), key=lambda item: -item[1])
    steps = json.loads((root / "profiled" / "metrics.jsonl").read_text().splitlines()[-1])["step"]
    return {"loop_s": loop, "shares_s": shares, "act_calls": act_calls,
            "act_ms_per_call": 1e3 * act_seconds / max(act_calls, 1), "env_steps": steps,
            "act_parts_ms_per_call": {name: 1e3 * seconds / max(act_calls, 1) for name, seconds in callees[:6]}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", nargs="+", default=["airhockey_seed_small"],
                        help="bundled config names or YAML files, applied in order")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--steps", type=int, default=1500, help="env steps per run (default: 1500)")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda (default: cpu)")
    parser.add_argument("--parallel", type=int, nargs="+", default=[1], metavar="P",
                        help="numbers of simultaneous runs to measure (default: 1)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads of each run (default: 1)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override for every run")
    parser.add_argument("--profile", action="store_true", help="profile one run in this process (cProfile)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if args.profile:
            result = profile_run(args, Path(tmp))
        else:
            rows = [run_parallel(args, parallel, Path(tmp), args.threads) for parallel in args.parallel]
    if args.json:
        print(json.dumps(result if args.profile else rows, indent=1))
        return
    print(describe())
    print(f"command: python benchmarks/train_loop.py {' '.join(sys.argv[1:])}")
    if args.profile:
        print_profile(result)
        return
    print(f"device {args.device}; per run: medians over its logged intervals; total: sum over the runs\n")
    header = ["parallel", "env_steps_per_s", "updates_per_s", "total_env_steps_per_s", "total_updates_per_s", "wall_s",
              "load_average"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(f"{row[h]:.3g}" if isinstance(row[h], float) else str(row[h]) for h in header) + " |")


def print_profile(result: dict) -> None:
    loop = result["loop_s"]
    print(f"one run under cProfile (which inflates Python-heavy code, i.e. acting); {result['env_steps']} env steps, "
          f"training loop {loop:.1f} s\n")
    print("| share | s | % of loop |")
    print("|---|---|---|")
    for share, seconds in result["shares_s"].items():
        print(f"| {share} | {seconds:.2f} | {100 * seconds / loop:.1f} |")
    print(f"\nAgent.act: {result['act_calls']} calls, {result['act_ms_per_call']:.2f} ms each; inside it (ms per call): "
          + ", ".join(f"{name} {ms:.2f}" for name, ms in result["act_parts_ms_per_call"].items()))


if __name__ == "__main__":
    main()
