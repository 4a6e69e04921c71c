"""Regenerate the doctor's scenario fixtures: runs of our own agent made to fail each way.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/make_scenarios.py            # all four
    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/make_scenarios.py collapse   # one

Each scenario trains a small DreamerV3 (the ``tiny`` preset) with fixed settings and seed,
then keeps only what the doctor reads: ``metrics.jsonl`` (every logged key but perf/* and
loss/*, values rounded to 4 significant digits) and ``meta.json`` (as
the trainer wrote it, plus a ``scenario`` record: settings, seed, command, wall time,
torch version, expected verdict). They go to ``tests/fixtures/scenarios/NAME/``;
``tests/test_scenarios.py`` asserts the doctor's verdict on each. The script prints one
table row per scenario: wall time, updates, verdict, confidence, per-window verdicts; it
exits non-zero if a verdict is not the expected one. One training at a time, one thread
(``torch.set_num_threads(1)``): the timings are for one core of a shared 2-core CPU. The
settings, measured outcomes and timings are tabled in tests/fixtures/scenarios/README.md.

``--set KEY=VALUE`` changes a setting for an experiment and ``--out DIR`` writes
elsewhere; fixtures are only ever written from the settings listed here.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures" / "scenarios"

#: Shared by every scenario: Pendulum-v1 (1-D action, 200-step episodes, dense reward), the
#: tiny model, a short batch so that one update takes ~0.1 s on one thread, a metric line
#: every 100 agent steps (each of the doctor's 4 windows holds 10–20 lines), the full entropy
#: signals every 2nd update, no checkpoint but the final one.
BASE = {
    "run.env": "Pendulum-v1",
    "run.prefill": 500,
    "run.batch_size": 8,
    "run.batch_length": 32,
    "run.train_ratio": 128,
    "run.log_every": 100,
    "run.signals_every": 2,
    "run.checkpoint_every": 1e9,
    "optim.lr": 3e-4,
    "optim.warmup": 100,
}

#: name -> settings (applied over BASE), what the doctor must say, and why the settings make it so.
SCENARIOS: dict[str, dict] = {
    "healthy": {
        # tiny's 16-unit nets do not learn Pendulum in a CPU budget (8k steps: score flat); 64-unit
        # nets with action repeat 2 solve it (−1200 → −130) in ~4k agent steps.
        "preset": "tiny", "seed": 0, "steps": 6000,
        "set": {"world_model.units": 64, "world_model.deter": 64, "actor.units": 64, "critic.units": 64,
                "run.action_repeat": 2, "run.train_ratio": 256, "run.log_every": 75},
        "expect": ("HEALTHY",),
        "why": "official BoundedNormal, η = 3e-4, dense reward: the score rises to a solved swing-up while σ "
               "comes down from its init",
    },
    "bonus_dominates": {
        "preset": "tiny", "seed": 0, "steps": 4000,
        "set": {"actor.dist": "tanh_normal", "actor.logstd_min": -5.0, "actor.logstd_max": 2.0,
                "actor.entropy_scale": 1e-2},
        "expect": ("BONUS_DOMINATES",),
        "why": "SAC-style TanhNormal, log σ ∈ (−5, 2) squashed, η = 1e-2: the pre-tanh bonus walks log σ to 2, "
               "70 % of the actions saturate",
    },
    "collapse": {
        # With REINFORCE (the official estimator) η = 0 does not collapse σ here: a TanhNormal's σ
        # random-walks around its init for 6k steps, and an official head with σ ≥ 0.01 settles at
        # σ ≈ 0.1 (mid-range) over 12k steps. Backpropagating the imagined return through the
        # dynamics (DreamerV1/V2's actor gradient) does: the actor climbs to a local maximum of the
        # imagined return, where its curvature pulls σ down every update, with nothing pushing back.
        # 6k steps: the pathwise gradient still reaches the mean of a deterministic policy, and by
        # 8k the score starts to creep up (the doctor then rightly calls the last window converged).
        "preset": "tiny", "seed": 0, "steps": 6000,
        "set": {"actor.dist": "tanh_normal", "actor.logstd_min": -5.0, "actor.logstd_max": 2.0,
                "actor.entropy_scale": 0.0, "actor.grad": "backprop"},
        "expect": ("COLLAPSE",),
        "why": "TanhNormal with log σ ≥ −5, no bonus, dynamics-backprop actor: σ falls to the floor within a few "
               "hundred updates while the score stays flat",
    },
    "no_signal": {
        "preset": "tiny", "seed": 0, "steps": 4000,
        "set": {"run.reward_scale": 0.0},
        "expect": ("NO_SIGNAL",),
        "why": "official BoundedNormal with every reward removed: the advantages are 0; the bonus walks σ to its "
               "ceiling 1, which leaves the actions unsaturated",
    },
}


#: Left out of the fixtures: wall-clock counters and the loss terms (the doctor reads neither).
DROPPED = ("perf/", "loss/")


def _round(x, digits: int = 4):
    if isinstance(x, float) and math.isfinite(x) and x != 0.0:
        return float(f"{x:.{digits}g}")
    return x


def _settings(name: str, extra: dict) -> tuple[dict, dict]:
    spec = SCENARIOS[name]
    overrides = {**BASE, **spec["set"], "run.steps": spec["steps"], "run.seed": spec["seed"], **extra}
    return spec, overrides


def command_line(name: str) -> str:
    return f"OMP_NUM_THREADS=1 .venv/bin/python benchmarks/make_scenarios.py {name}"


def make(name: str, out: Path, extra: dict, keep: Path | None = None) -> dict:
    """Train scenario ``name`` and write its fixture under ``out/name``; returns the table row."""
    import torch

    from dreamscope.config import Config, apply_overrides, apply_preset
    from dreamscope.diagnostics.doctor import diagnose
    from dreamscope.logs import read_run
    from dreamscope.train import Trainer

    torch.set_num_threads(1)
    spec, overrides = _settings(name, extra)
    cfg = apply_overrides(apply_preset(Config(), spec["preset"]), overrides)
    work = Path(tempfile.mkdtemp(prefix=f"scenario-{name}-")) if keep is None else keep / name
    t0 = time.time()
    Trainer(cfg, work, overwrite=True).train(progress=False)
    wall = time.time() - t0

    dest = out / name
    dest.mkdir(parents=True, exist_ok=True)
    lines, updates = [], 0
    for raw in (work / "metrics.jsonl").read_text().splitlines():
        row = json.loads(raw)
        updates = int(row.get("perf/updates", updates))
        lines.append(json.dumps({k: _round(v) for k, v in row.items() if not k.startswith(DROPPED)}))
    (dest / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    meta = json.loads((work / "meta.json").read_text())
    meta["scenario"] = {
        "name": name, "preset": spec["preset"], "seed": spec["seed"], "steps": spec["steps"],
        "settings": overrides, "updates": updates, "command": command_line(name), "wall_seconds": round(wall, 1),
        "threads": 1, "torch": torch.__version__, "python": platform.python_version(),
        "expect": list(spec["expect"]), "why": spec["why"],
    }
    (dest / "meta.json").write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n")
    if keep is None:
        shutil.rmtree(work, ignore_errors=True)

    dx = diagnose(read_run(dest))
    return {"scenario": name, "wall_s": round(wall, 1), "updates": updates,
            "verdict": dx.verdict, "confidence": round(dx.confidence, 2),
            "windows": " ".join(w.verdict for w in dx.windows), "expected": "/".join(spec["expect"]),
            "ok": dx.verdict in spec["expect"]}


def main(argv: list[str] | None = None) -> int:
    from dreamscope.config import parse_set_args

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", help=f"scenarios (default: all of {', '.join(SCENARIOS)})")
    parser.add_argument("--out", type=Path, default=FIXTURES, help="where the fixtures go")
    parser.add_argument("--keep", type=Path, help="keep the full run directories here")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="change a setting (experiments; write them to --out elsewhere)")
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; known: {', '.join(SCENARIOS)}")
    extra = parse_set_args(args.set)
    if extra and args.out.resolve() == FIXTURES.resolve():
        parser.error("--set changes the settings: write the result elsewhere with --out")
    rows = []
    for name in args.names or list(SCENARIOS):
        row = make(name, args.out, extra, args.keep)
        rows.append(row)
        print(f"{row['scenario']:16s} {row['wall_s']:7.1f} s  {row['updates']:5d} updates  {row['verdict']:16s} conf {row['confidence']:.2f}  "
              f"windows: {row['windows']}  expected {row['expected']}  {'ok' if row['ok'] else 'MISMATCH'}",
              flush=True)
    return 0 if all(r["ok"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
