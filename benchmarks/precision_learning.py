"""Does bfloat16 learn as float32 does? The same runs (seeds, config) in both precisions, side by side.

    python benchmarks/precision_learning.py [--root runs/precision] [--preset tiny] [--config pendulum_check]
        [--env Pendulum-v1] [--seeds 0 1] [--parallel 2] [--plot docs/precision_pendulum.png] [--json]

Each run is a `dreamscope train` process with one torch thread; a run directory that already
holds a finished run is read, not trained again, and an interrupted one continues (--resume),
so a killed comparison resumes too. Prints, per precision and seed, the first and last scores,
the median updates/s and the wall time, and a one-sided Mann-Whitney p that the bfloat16 runs'
final scores are lower (needs two seeds or more); --plot draws the score curves.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from machine import describe

PRECISIONS = ("float32", "bfloat16")


def _lines(run: Path) -> list[dict]:
    path = run / "metrics.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []


def _finished(run: Path, steps: int) -> bool:
    return any(line.get("step", 0) >= steps for line in _lines(run))


def _command(args: argparse.Namespace, precision: str, seed: int, run: Path) -> list[str]:
    if (run / "checkpoint.pt").is_file():
        return [sys.executable, "-m", "dreamscope.cli", "train", "--resume", str(run), "--no-progress"]
    return [sys.executable, "-m", "dreamscope.cli", "train", "--preset", args.preset, "--config", args.config,
            "--env", args.env, "--steps", str(args.steps), "--seed", str(seed), "--logdir", str(run), "--no-progress",
            "--set", f"run.precision={precision}", "--set", "run.threads=1", *sum((["--set", s] for s in args.set), [])]


def train_all(args: argparse.Namespace, runs: dict[tuple[str, int], Path]) -> dict[tuple[str, int], float]:
    """Train every unfinished run, ``args.parallel`` at a time; returns each trained run's wall seconds."""
    todo = [key for key, run in runs.items() if not _finished(run, args.steps)]
    walls, active = {}, {}
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MUJOCO_GL": os.environ.get("MUJOCO_GL", "disable")}
    while todo or active:
        while todo and len(active) < args.parallel:
            key = todo.pop(0)
            log = open(runs[key].with_suffix(".log"), "a")
            active[key] = (subprocess.Popen(_command(args, *key, runs[key]), stdout=log, stderr=log, env=env),
                           time.perf_counter(), log)
        time.sleep(2)
        for key, (proc, start, log) in list(active.items()):
            if proc.poll() is not None:
                log.close()
                del active[key]
                if proc.returncode:
                    sys.exit(f"{runs[key]}: dreamscope train exited {proc.returncode}; see {runs[key].with_suffix('.log')}")
                walls[key] = time.perf_counter() - start
    return walls


def summarise(run: Path) -> dict:
    lines = _lines(run)
    scores = [(line["step"], line["episode/score"]) for line in lines if "episode/score" in line]
    rates = [line["perf/updates_per_second"] for line in lines if line.get("perf/updates_per_second", 0) > 0][1:]
    if len(scores) < 7:
        sys.exit(f"{run}: {len(scores)} episodes logged; a comparison needs at least 7 (raise --steps)")
    return {"first": statistics.mean(s for _, s in scores[:2]), "final": statistics.mean(s for _, s in scores[-5:]),
            "updates_per_s": statistics.median(rates) if rates else float("nan"), "curve": scores}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="runs/precision", help="folder of the run directories")
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--config", default="pendulum_check", help="bundled config name or YAML file")
    parser.add_argument("--env", default="Pendulum-v1")
    parser.add_argument("--steps", type=int, default=6000)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--parallel", type=int, default=2, help="runs at once (one thread each)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override for every run")
    parser.add_argument("--plot", metavar="PNG", help="draw the score curves here")
    parser.add_argument("--json", action="store_true", help="print the table as JSON")
    args = parser.parse_args()
    root = Path(args.root)
    root.mkdir(parents=True, exist_ok=True)
    runs = {(p, s): root / f"{p}_seed{s}" for p in PRECISIONS for s in args.seeds}
    walls = train_all(args, runs)
    rows = [{"precision": p, "seed": s, "run": str(run), "wall_s": walls.get((p, s), float("nan")),
             **summarise(run)} for (p, s), run in runs.items()]
    finals = {p: [r["final"] for r in rows if r["precision"] == p] for p in PRECISIONS}
    p_lower = float("nan")
    if len(args.seeds) >= 2:
        from scipy.stats import mannwhitneyu

        p_lower = float(mannwhitneyu(finals["bfloat16"], finals["float32"], alternative="less").pvalue)
    if args.plot:
        _plot(rows, args, Path(args.plot))
    if args.json:
        print(json.dumps({"rows": [{k: v for k, v in r.items() if k != "curve"} for r in rows],
                          "bfloat16_lower_p": p_lower}, indent=1))
        return
    print(describe())
    print(f"command: python benchmarks/precision_learning.py {' '.join(sys.argv[1:])}")
    print(f"{args.env}, preset {args.preset}, config {args.config}, {args.steps} steps; first = mean of the first "
          "2 episodes, final = mean of the last 5; wall = this invocation's training (nan: read from disk)\n")
    print("| precision | seed | first | final | updates/s | wall s |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['precision']} | {r['seed']} | {r['first']:.0f} | {r['final']:.0f} | {r['updates_per_s']:.3g} "
              f"| {r['wall_s']:.0f} |")
    print(f"\nbfloat16 final scores lower than float32's: one-sided Mann-Whitney p = {p_lower:.3g}")


def _plot(rows: list[dict], args: argparse.Namespace, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    colours = {"float32": "tab:blue", "bfloat16": "tab:orange"}
    for r in rows:
        steps, scores = zip(*r["curve"])
        ax.plot(steps, scores, color=colours[r["precision"]], alpha=0.8,
                label=f"{r['precision']} seed {r['seed']}", linestyle="-" if r["seed"] == args.seeds[0] else "--")
    ax.set_xlabel("agent steps")
    ax.set_ylabel("episode score")
    ax.set_title(f"{args.env}: float32 vs bfloat16 update, same seeds")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
