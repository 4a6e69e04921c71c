"""Which torch thread count and OpenMP wait policy keep a run's speed when other runs share the cores.

Starts 1, 2 and 3 identical short `dreamscope train` runs at once (benchmarks/train_loop.py's
runs), each with 1 and with 2 torch threads, and with OMP_WAIT_POLICY unset (libgomp spins on
the core a while before it sleeps) and PASSIVE (it sleeps at once); one thread starts no
OpenMP workers, so the policy changes nothing there and is measured with the first policy only.
Prints each setting's per-run and total updates/s.

    python benchmarks/threads.py [--parallel 1 2 3] [--threads 1 2] [--policies unset PASSIVE]
                               [--preset size1m] [--steps 112] [--json]

Run it without taskset (it needs the machine's cores); the load average beside each row says
how busy the machine was besides.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from machine import describe
from train_loop import run_parallel

POLICIES = {"unset": {}, "PASSIVE": {"OMP_WAIT_POLICY": "PASSIVE"}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parallel", type=int, nargs="+", default=[1, 2, 3], metavar="P",
                        help="numbers of simultaneous runs (default: 1 2 3)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="torch threads per run (default: 1 2)")
    parser.add_argument("--policies", nargs="+", default=list(POLICIES), choices=list(POLICIES),
                        help="OMP_WAIT_POLICY settings (default: unset PASSIVE)")
    parser.add_argument("--config", nargs="+", default=[], help="bundled config names or YAML files")
    parser.add_argument("--env", default="Pendulum-v1")
    parser.add_argument("--preset", default="size1m")
    parser.add_argument("--steps", type=int, default=112, help="env steps per run (default: 112: 12 updates)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override for every run")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    args = parser.parse_args()
    # Short runs: 100 prefill steps, then an update per env step (train ratio 1024 at 16 x 64), a line every 4 steps.
    args.set = [f"run.env={args.env}", "run.prefill=100", "run.train_ratio=1024", "run.log_every=4", *args.set]
    args.device = "cpu"
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for threads in args.threads:
            for policy in args.policies:
                env = POLICIES[policy]
                if threads == 1 and policy != args.policies[0]:
                    continue
                for parallel in args.parallel:
                    row = run_parallel(args, parallel, Path(tmp) / f"{policy}", threads, env)
                    rows.append({"threads": threads, "omp_wait_policy": policy, **row})
                    print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(describe())
    print(f"command: python benchmarks/threads.py {' '.join(sys.argv[1:])}")
    print(f"{args.preset} on {args.env}, {args.steps} env steps per run (see --set); per run: median over the runs "
          "of each run's median logged updates/s; total: sum over the runs\n")
    header = ["threads", "omp_wait_policy", "parallel", "updates_per_s", "total_updates_per_s", "per_run_updates_per_s",
              "wall_s", "load_average"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        cells = [", ".join(f"{v:.3g}" for v in row[h]) if isinstance(row[h], list)
                 else f"{row[h]:.3g}" if isinstance(row[h], float) else str(row[h]) for h in header]
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
