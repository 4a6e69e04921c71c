"""Our update against the official DreamerV3's (JAX), side by side in one run, on the same CPU.

Same config on both sides: size1m, batch 16 x 64, imagination horizon 15, the observation and
action shapes of DMC cartpole-swingup proprio (5 observation dims, 1 action dim), the same thread
count. Each setting (ours in float32 and bfloat16, the official code in float32 and in its default
bfloat16) runs in its own warm process; the settings take turns, one update each per round, so a
load change on a shared machine hits all of them alike.

    python benchmarks/vs_official.py [--official DIR] [--repeats 10] [--threads 1] [--compile] [--json]

DIR is the official code (default: $DREAMSCOPE_OFFICIAL, else ../scratch/official beside the
repo): ``git clone https://github.com/danijar/dreamerv3 DIR && git -C DIR checkout e3f0224``.
Without DIR/.venv this creates one and installs the official requirements (jax CPU) from PyPI.
Nothing of the official code enters this repo: benchmarks/_official_update.py builds its agent
with DIR's venv. Below the table, a roofline: the update's FLOPs over this machine's measured
float32 and bfloat16 matrix-product rates, the time the update could not beat.
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

from _timing import protocol_stream, serve, xla_thread_flags
from machine import describe

HERE = Path(__file__).resolve().parent
OFFICIAL_COMMIT = "e3f0224"
OFFICIAL_URL = "https://github.com/danijar/dreamerv3"
OBS_DIM, ACTION_DIM = 5, 1  # DMC cartpole-swingup proprio: position 3 + velocity 2; a 1-D action
# The official requirements.txt pins jax for CUDA and Atari packages an update does not need; this
# is what the update needs on a CPU (the versions a working install used: jax 0.7 rejects the
# positional shardings of embodied/jax/transform.py).
OFFICIAL_PINS = ["jax[cpu]==0.4.33", "jaxlib==0.4.33", "chex==0.1.87", "optax==0.2.4"]
OFFICIAL_SKIP = ("jax", "nvidia-", "ale_py", "autorom")
ROOFLINE_MATMUL = (16384, 640, 64)  # the shape of the observe/imagine input products at size1m


def default_official() -> Path:
    return Path(os.environ.get("DREAMSCOPE_OFFICIAL") or HERE.parent.parent / "scratch" / "official")


def official_python(official: Path) -> Path:
    """DIR's venv python, creating the venv (official requirements, jax CPU) if DIR has none."""
    if not (official / "dreamerv3" / "configs.yaml").is_file():
        how = f"git clone {OFFICIAL_URL} {official} && git -C {official} checkout {OFFICIAL_COMMIT}"
        state = "does not exist" if not official.exists() else "holds no dreamerv3/configs.yaml"
        sys.exit(f"--official {official} {state}: get the official DreamerV3 code with\n    {how}\n"
                 "or point --official (or $DREAMSCOPE_OFFICIAL) at a checkout")
    python = official / ".venv" / "bin" / "python"
    if python.exists():
        return python
    requirements = official_requirements(official)
    print(f"{official}/.venv is missing: creating it and installing {', '.join(OFFICIAL_PINS + requirements)}",
          file=sys.stderr)
    for cmd in ([sys.executable, "-m", "venv", str(official / ".venv")],
                [str(python), "-m", "pip", "install", "-q", *OFFICIAL_PINS, *requirements]):
        if subprocess.run(cmd).returncode:
            sys.exit(f"setting up {official}/.venv failed at: {' '.join(cmd)}")
    return python


def official_requirements(official: Path) -> list[str]:
    """DIR/requirements.txt without the lines a CPU update does not need (OFFICIAL_SKIP)."""
    lines = [line.split("#")[0].strip() for line in (official / "requirements.txt").read_text().splitlines()]
    return [line for line in lines if line and not line.lower().startswith(OFFICIAL_SKIP)]


def official_commit(official: Path) -> str:
    result = subprocess.run(["git", "-C", str(official), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return result.stdout.strip() or "unknown"


# ------------------------------------------------------------------------------------- our side
def ours_update(preset: str, precision: str, compiled: bool, threads: int, overrides: dict | None = None):
    """Our agent on a fixed random batch: (one update, facts incl. the update's FLOPs); ``overrides``
    are config KEY: VALUE pairs on top (tests shrink the batch)."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from dreamscope.agent.agent import Agent
    from dreamscope.agent.precision import compute_dtype
    from dreamscope.config import Config, apply_overrides, apply_preset
    from train_step import random_batch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = apply_overrides(apply_preset(Config(), preset),
                          {"run.precision": precision, "run.compile": str(compiled), **(overrides or {})})
    agent = Agent(cfg, OBS_DIM, ACTION_DIM)
    batch = random_batch(cfg.run.batch_size, cfg.run.batch_length, OBS_DIM, ACTION_DIM)
    agent.train_step(batch)  # the first update allocates the optimiser state (and compiles)
    counter = FlopCounterMode(display=False)
    with counter:
        agent.train_step(batch)
    facts = {"impl": "ours", "precision": str(compute_dtype(precision, "cpu")).removeprefix("torch."),
             "compile": compiled, "torch": torch.__version__, "threads": torch.get_num_threads(),
             "params_M": sum(p.numel() for p in agent.parameters() if p.requires_grad) / 1e6,
             "flops": counter.get_total_flops()}
    return (lambda: agent.train_step(batch)), facts


def matmul_rates(threads: int, repeats: int = 20) -> dict:
    """GFLOP/s of a ROOFLINE_MATMUL product in float32 and bfloat16: the fastest of ``repeats`` (a
    roofline is a best case), timed in CPU seconds with one thread, which a busy machine's
    preemptions do not inflate, and in wall seconds with more."""
    import torch

    torch.set_num_threads(threads)
    clock = time.process_time if threads == 1 else time.perf_counter
    m, k, n = ROOFLINE_MATMUL
    rates = {}
    for dtype in (torch.float32, torch.bfloat16):
        a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
        times = []
        for _ in range(repeats):
            t0 = clock()
            a @ b
            times.append(clock() - t0)
        rates[str(dtype).removeprefix("torch.")] = 2 * m * k * n / min(times) / 1e9
    return rates


# ------------------------------------------------------------------------------------- workers
class Worker:
    """A timing process (benchmarks/_timing.py protocol) for one setting."""

    def __init__(self, name: str, cmd: list[str], env: dict, cpus: set[int] | None, tmp: Path):
        self.name = name
        self.log = open(tmp / f"{name.replace(' ', '_')}.log", "w+")
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.log, text=True,
                                     env=env, preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
        self.facts: dict = {}
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def _read(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            self.log.seek(0)
            sys.exit(f"{self.name} worker exited with {self.proc.returncode}:\n{self.log.read()[-4000:]}")
        return json.loads(line)

    def ready(self) -> None:
        self.facts = self._read()

    def time(self, updates: int) -> None:
        self.proc.stdin.write(f"{updates}\n")
        self.proc.stdin.flush()
        result = self._read()
        self.wall += result["wall"]
        self.cpu += result["cpu"]

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait()
        self.log.close()


def start_workers(args, official_py: Path | None, tmp: Path) -> list[Worker]:
    allowed = sorted(os.sched_getaffinity(0))
    cpus = set(allowed[:args.threads]) if args.threads < len(allowed) else None
    base = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MUJOCO_GL": "disable"}
    workers = []
    for compiled in ([False, True] if args.compile else [False]):
        for precision in args.precisions:
            name = f"ours {precision}" + (" compiled" if compiled else "")
            cmd = [sys.executable, __file__, "--worker", f"{precision},{int(compiled)}", "--preset", args.preset,
                   "--threads", str(args.threads)]
            workers.append(Worker(name, cmd, base, cpus, tmp))
    if official_py:
        for dtype in ("float32", "bfloat16"):
            cmd = [str(official_py), str(HERE / "_official_update.py"), str(args.official), "--dtype", dtype,
                   "--threads", str(args.threads)]
            env = {**base, "XLA_FLAGS": xla_thread_flags(args.threads)}
            workers.append(Worker(f"official {dtype}", cmd, env, cpus, tmp))
    for worker in workers:
        worker.ready()
    return workers


def summarise(workers: list[Worker], rates: dict) -> dict:
    rows = [{"setting": w.name, **w.facts, "s_per_update": statistics.median(w.wall),
             "cpu_s_per_update": statistics.median(w.cpu), "min_s": min(w.wall)} for w in workers]
    for row in rows:
        row.pop("ready")
    ours = [r for r in rows if r["impl"] == "ours"]
    official = [r for r in rows if r["impl"] == "official"]
    best_ours = min(ours, key=lambda r: r["s_per_update"])
    result = {"ours_s": best_ours["s_per_update"], "ours_setting": best_ours["setting"], "rows": rows,
              "matmul_gflops": rates}
    if official:
        best_official = min(official, key=lambda r: r["s_per_update"])
        result.update(official_s=best_official["s_per_update"], official_setting=best_official["setting"],
                      ratio=best_official["s_per_update"] / best_ours["s_per_update"],
                      cpu_ratio=best_official["cpu_s_per_update"] / best_ours["cpu_s_per_update"])
    flops = ours[0]["flops"]
    result["roofline_ms"] = {dtype: flops / (rate * 1e9) * 1e3 for dtype, rate in rates.items()}
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official", type=Path, default=default_official(),
                        help="the official DreamerV3 checkout (default: $DREAMSCOPE_OFFICIAL or ../scratch/official)")
    parser.add_argument("--repeats", type=_positive, default=10, help="rounds; one update per setting each (default: 10)")
    parser.add_argument("--threads", type=_positive, default=1, help="threads for every setting (default: 1)")
    parser.add_argument("--compile", action="store_true", help="also time ours with run.compile=true (minutes)")
    parser.add_argument("--precisions", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"],
                        help="run.precision settings of ours (default: both)")
    parser.add_argument("--preset", default="size1m", help="our size preset; the official side is always size1m")
    parser.add_argument("--ours-only", action="store_true", help="skip the official side")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        out = protocol_stream()
        precision, compiled = args.worker.split(",")
        serve(*ours_update(args.preset, precision, compiled == "1", args.threads), out)
        return
    official_py = None if args.ours_only else official_python(args.official.resolve())
    with tempfile.TemporaryDirectory() as tmp:
        workers = start_workers(args, official_py, Path(tmp))
        load = [os.getloadavg()[0]]
        for _ in range(args.repeats):
            for worker in workers:
                worker.time(1)
            load.append(os.getloadavg()[0])
        for worker in workers:
            worker.close()
    result = summarise(workers, matmul_rates(args.threads))
    result.update(load_average=statistics.median(load), threads=args.threads, repeats=args.repeats,
                  official_commit=None if args.ours_only else official_commit(args.official))
    if args.json:
        print(json.dumps(result, indent=1))
    else:
        print_table(result, argv if argv is not None else sys.argv[1:])


def print_table(result: dict, argv: list[str]) -> None:
    print(describe())
    print(f"command: python benchmarks/vs_official.py {' '.join(argv)}")
    print(f"batch 16 x 64, imagination 1024 starts x 15 steps, obs 5 / action 1 (cartpole-swingup proprio); "
          f"{result['threads']} thread(s); official commit {result['official_commit'] or '(not run)'}; "
          f"medians of {result['repeats']} interleaved updates; load average {result['load_average']:.1f} during them\n")
    header = ["setting", "precision", "params_M", "s_per_update", "cpu_s_per_update", "min_s", "flops"]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in result["rows"]:
        print("| " + " | ".join(f"{row[h]:.3g}" if isinstance(row[h], float) else str(row[h]) for h in header) + " |")
    if "ratio" in result:
        print(f"\nratio {result['ratio']:.2f} (wall; CPU time {result['cpu_ratio']:.2f}): "
              f"{result['official_setting']} {result['official_s']:.3f} s / {result['ours_setting']} "
              f"{result['ours_s']:.3f} s per update")
    rates, floor = result["matmul_gflops"], result["roofline_ms"]
    m, k, n = ROOFLINE_MATMUL
    print(f"roofline: our update's {result['rows'][0]['flops'] / 1e9:.1f} GFLOP over a {m} x {k} x {n} product's "
          + ", ".join(f"{rates[d]:.0f} GFLOP/s in {d} -> >= {floor[d]:.0f} ms" for d in rates))


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


if __name__ == "__main__":
    main()
