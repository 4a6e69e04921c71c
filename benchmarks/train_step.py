"""Time one DreamerV3 update (batch 16 x 64, horizon 15) and the cost of the entropy signals.

Each configuration runs in its own process so that its peak memory is its own.
Prints a table: machine, command, medians.

    python benchmarks/train_step.py [--presets size1m size12m] [--repeats 10] [--compile] [--bfloat16] [--device cuda]

On a GPU the clock is read after ``torch.cuda.synchronize()``, so a median covers the device
work, and the table adds the peak GPU memory the update allocated.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

from machine import describe


def random_batch(B: int, T: int, obs_dim: int, action_dim: int, device: str = "cpu") -> dict:
    """A replay batch of one long episode: random observations and actions, a reward every 50 steps."""
    import torch

    batch = {"obs": torch.randn(B, T, obs_dim), "prev_action": torch.rand(B, T, action_dim) * 2 - 1,
             "reward": torch.zeros(B, T), "is_first": torch.zeros(B, T, dtype=torch.bool),
             "is_terminal": torch.zeros(B, T, dtype=torch.bool)}
    batch["reward"][:, ::50] = 10.0
    return {key: value.to(device) for key, value in batch.items()}


def measure(preset: str, compiled: bool, precision: str, repeats: int, threads: int, device: str) -> dict:
    import torch

    from dreamscope.agent.agent import Agent
    from dreamscope.config import Config, apply_overrides, apply_preset
    from dreamscope.diagnostics.signals import UpdateSignals

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = apply_overrides(apply_preset(Config(), preset),
                          {"run.compile": str(compiled), "run.precision": precision, "run.device": device})
    obs_dim, action_dim, B, T = 16, 4, cfg.run.batch_size, cfg.run.batch_length
    agent = Agent(cfg, obs_dim, action_dim).to(device)
    batch = random_batch(B, T, obs_dim, action_dim, device)
    on_gpu = device.startswith("cuda")
    sync = torch.cuda.synchronize if on_gpu else (lambda: None)
    warm = time.perf_counter()
    for _ in range(3):
        agent.train_step(batch)
    sync()
    warmup_s = time.perf_counter() - warm

    signals = UpdateSignals()

    def timed(measure_signals: bool) -> tuple[float, float]:
        """Median wall and CPU seconds per update (CPU time is robust to a busy machine)."""
        wall, cpu = [], []
        for _ in range(repeats):
            t0, c0 = time.perf_counter(), time.process_time()
            agent.train_step(batch, measure=signals if measure_signals else None)
            sync()
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        return statistics.median(wall), statistics.median(cpu)

    plain, plain_cpu = timed(False)
    with_signals, _ = timed(True)
    every = cfg.run.signals_every
    return {
        "device": torch.cuda.get_device_name() if on_gpu else "cpu",
        "preset": preset, "compile": compiled, "precision": precision, "threads": torch.get_num_threads(),
        "params_M": sum(p.numel() for p in agent.parameters()) / 1e6,
        "ms_per_update": plain * 1e3, "cpu_ms_per_update": plain_cpu * 1e3, "updates_per_s": 1 / plain,
        "env_steps_per_s_at_ratio_512": (1 / plain) * B * T / 512,
        "signals_ms": (with_signals - plain) * 1e3,
        "signals_overhead_pct": 100 * (with_signals - plain) / every / plain,
        "peak_rss_MiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "peak_gpu_MiB": torch.cuda.max_memory_allocated() / 2**20 if on_gpu else float("nan"),
        "warmup_s": warmup_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["size1m", "size12m"])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--compile", action="store_true", help="also measure torch.compile")
    parser.add_argument("--bfloat16", action="store_true", help="also measure run.precision=bfloat16 (the whole update)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cuda (default: cpu)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        preset, compiled, precision = args.child.split(",")
        print(json.dumps(measure(preset, compiled == "1", precision, args.repeats, args.threads, args.device)))
        return
    rows = []
    for preset in args.presets:
        for compiled in ([False, True] if args.compile else [False]):
            for precision in (["float32", "bfloat16"] if args.bfloat16 else ["float32"]):
                cmd = [sys.executable, __file__, "--child", f"{preset},{int(compiled)},{precision}",
                       "--repeats", str(args.repeats), "--threads", str(args.threads), "--device", args.device]
                result = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "MUJOCO_GL": "disable"})
                if result.returncode:
                    sys.exit(f"{preset} compile={compiled} precision={precision} failed:\n{result.stderr}")
                rows.append(json.loads(result.stdout.strip().splitlines()[-1]))
    print(describe())
    print(f"command: python benchmarks/train_step.py {' '.join(sys.argv[1:])}")
    print(f"batch 16 x 64, imagination 1024 starts x 15 steps; medians of {args.repeats} updates\n")
    header = ["device", "preset", "compile", "precision", "threads", "params_M", "ms_per_update", "cpu_ms_per_update", "updates_per_s", "env_steps_per_s_at_ratio_512",
              "signals_ms", "signals_overhead_pct", "peak_rss_MiB"]
    if args.device.startswith("cuda"):
        header.append("peak_gpu_MiB")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(_fmt(row[h]) for h in header) + " |")


def _fmt(value) -> str:
    return f"{value:.3g}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    main()
