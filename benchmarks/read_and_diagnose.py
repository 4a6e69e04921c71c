"""How long the doctor takes on a 1M-line log: read_run, then diagnose (target: ≤ 5 s in all).

Generates two logs in a temporary directory: one shaped like ours (every line all signals)
and one like the official DreamerV3's (episode lines, a wide training line every 100th).

    python benchmarks/read_and_diagnose.py [--lines 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
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
    args = parser.parse_args()

    from dreamscope.diagnostics.doctor import diagnose
    from dreamscope.logs import read_run

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for shape, write in (("dreamscope", write_ours), ("official DreamerV3", write_official)):
            folder = Path(tmp) / shape.split()[0]
            folder.mkdir()
            path = folder / "metrics.jsonl"
            write(path, args.lines)
            reads, diagnoses = [], []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                run = read_run(folder)
                t1 = time.perf_counter()
                diagnose(run, action_dim=4)
                diagnoses.append(time.perf_counter() - t1)
                reads.append(t1 - t0)
            rows.append((shape, f"{path.stat().st_size / 1e6:.0f}", statistics.median(reads), statistics.median(diagnoses)))

    print(describe())
    print(f"command: python benchmarks/read_and_diagnose.py {' '.join(sys.argv[1:])}")
    print(f"{args.lines:,} lines per log; medians of {args.repeats}\n")
    print("| log shape | MB | read_run s | diagnose s | total s |")
    print("|---|---:|---:|---:|---:|")
    for shape, mb, read_s, diag_s in rows:
        print(f"| {shape} | {mb} | {read_s:.2f} | {diag_s:.2f} | {read_s + diag_s:.2f} |")


if __name__ == "__main__":
    main()
