"""How long the doctor takes on a 1M-line log: read_run, then diagnose (target: ≤ 2 s in all, one core).

Generates two logs in a temporary directory: one shaped like ours (every line all signals)
and one like the official DreamerV3's (episode lines, a wide training line every 100th).
Each step is timed by the wall clock and by the process's CPU time: on a shared machine the
wall clock counts other jobs' time too, the CPU time only ours. Pin it to one core:

    taskset -c 0 python benchmarks/read_and_diagnose.py [--lines 1000000] [--repeats 3] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

from machine import describe

OURS_KEYS = ("policy/entropy", "policy/entropy_action", "policy/std_mean", "policy/std_at_upper_frac",
             "policy/saturation_frac", "actor/logstd_push_pg", "actor/logstd_push_ent", "adv_norm/abs_mean",
             "return/scale", "value/explained_var", "episode/score")


def write_ours(path: Path, lines: int) -> None:
    rnd = random.Random(0)
    with open(path, "w") as f:
        for i in range(lines):
            row = {k: round(rnd.gauss(0, 1), 6) for k in OURS_KEYS}
            row["policy/std_mean"] = round(2.7 ** rnd.gauss(0, 1), 6)  # plausible ranges, not just noise
            for k in ("policy/std_at_upper_frac", "policy/saturation_frac"):
                row[k] = round(rnd.random(), 6)
            f.write(json.dumps({"step": 16 * i, **row}) + "\n")
    (path.parent / "meta.json").write_text(json.dumps({"action_dim": 4, "dist": "tanh_normal", "eta": 3e-3,
                                                       "std_min": 0.006738, "std_max": 7.389}))


def write_official(path: Path, lines: int) -> None:
    rnd = random.Random(0)
    train_keys = [f"train/loss/k{i}" for i in range(56)]
    step = 0
    with open(path, "w") as f:
        for i in range(lines):
            step += rnd.randint(1, 50)
            if i % 100 == 0:
                row = {"step": step, "train/ent/action": rnd.random(), "train/adv": rnd.random(),
                       "train/adv_std": rnd.random(), "train/val": rnd.random(), **{k: rnd.random() for k in train_keys}}
            else:
                row = {"step": step, "episode/score": rnd.random() * 10, "episode/length": float(rnd.randint(10, 250))}
            f.write(json.dumps(row) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    args = parser.parse_args()

    from dreamscope.diagnostics.doctor import diagnose
    from dreamscope.logs import read_run

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        warm = Path(tmp) / "warm-up"  # imports (pyarrow, the doctor's modules) are not what is measured
        warm.mkdir()
        write_ours(warm / "metrics.jsonl", 100)
        diagnose(read_run(warm), action_dim=4)
        for shape, write in (("dreamscope", write_ours), ("official DreamerV3", write_official)):
            folder = Path(tmp) / shape.split()[0]
            folder.mkdir()
            path = folder / "metrics.jsonl"
            write(path, args.lines)
            times: dict[str, list[float]] = {"read_s": [], "diagnose_s": [], "read_cpu_s": [], "diagnose_cpu_s": []}
            for _ in range(args.repeats):
                t0, c0 = time.perf_counter(), time.process_time()
                run = read_run(folder)
                t1, c1 = time.perf_counter(), time.process_time()
                diagnose(run, action_dim=4)
                t2, c2 = time.perf_counter(), time.process_time()
                for key, value in (("read_s", t1 - t0), ("diagnose_s", t2 - t1), ("read_cpu_s", c1 - c0),
                                   ("diagnose_cpu_s", c2 - c1)):
                    times[key].append(value)
            rows.append({"log": shape, "mb": round(path.stat().st_size / 1e6),
                         **{key: round(statistics.median(values), 3) for key, values in times.items()}})

    command = f"python benchmarks/read_and_diagnose.py {' '.join(sys.argv[1:])}".strip()
    if args.json:
        print(json.dumps({"machine": describe(), "command": command, "lines": args.lines, "repeats": args.repeats,
                          "cpu_affinity": sorted(os.sched_getaffinity(0)), "rows": rows}))
        return
    print(describe())
    print(f"command: {command} (CPU affinity {sorted(os.sched_getaffinity(0))})")
    print(f"{args.lines:,} lines per log; medians of {args.repeats}; wall clock, with CPU time in brackets\n")
    print("| log shape | MB | read_run s | diagnose s | total s |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['log']} | {r['mb']} | {r['read_s']:.2f} ({r['read_cpu_s']:.2f}) | {r['diagnose_s']:.2f} "
              f"({r['diagnose_cpu_s']:.2f}) | {r['read_s'] + r['diagnose_s']:.2f} "
              f"({r['read_cpu_s'] + r['diagnose_cpu_s']:.2f}) |")


if __name__ == "__main__":
    main()
