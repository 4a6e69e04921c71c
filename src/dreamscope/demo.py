"""Train briefly on air hockey with the seed's set-up, diagnose the run, and write the HTML report.

The set-up is the one from the question dreamscope was built to answer: a 4-D tanh-squashed
policy with log σ in (−5, 2), an entropy bonus η = 3e-3, sparse ±10 goal rewards. Running
the demo again continues an interrupted demo run instead of starting over.
"""

from __future__ import annotations

import argparse
from pathlib import Path

#: The embedded default run (size1m preset), sized to finish in about ten minutes on 2 cores.
DEMO_SETTINGS = {
    "run.env": "airhockey",
    "run.steps": 12_000,
    "run.prefill": 2_000,
    "run.train_ratio": 64,
    "run.log_every": 500,
    "run.signals_every": 5,
    "actor.dist": "tanh_normal",
    "actor.std_bound": "logstd_squash",
    "actor.logstd_min": -5.0,
    "actor.logstd_max": 2.0,
    "actor.entropy_scale": 3e-3,
    "optim.warmup": 100,
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--logdir", default="demo_run", help="run directory (default: demo_run)")
    parser.add_argument("--steps", type=int, help=f"agent steps (default {DEMO_SETTINGS['run.steps']})")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from dreamscope.config import Config, apply_overrides, apply_preset, load_yaml
    from dreamscope.diagnostics.doctor import diagnose
    from dreamscope.diagnostics.doctor_cli import render
    from dreamscope.logs import read_run
    from dreamscope.report.html import write_report
    from dreamscope.train import Trainer

    logdir = Path(args.logdir)
    resume = (logdir / "config.yaml").exists()
    if resume:
        cfg = load_yaml(logdir / "config.yaml")
        print(f"continuing the demo run in {logdir}")
    else:
        cfg = apply_overrides(apply_preset(Config(), "size1m"), {k: str(v) for k, v in DEMO_SETTINGS.items()})
    if args.steps is not None:
        cfg.run.steps = args.steps
    Trainer(cfg, logdir, resume=resume).train(progress=not args.no_progress)

    the_run = read_run(logdir)
    diagnosis = diagnose(the_run)
    report = logdir / "report.html"
    write_report(the_run, diagnosis, report)
    render(diagnosis, report=str(report))
    print(f"\nreport: {report.resolve()}")
    return 0
