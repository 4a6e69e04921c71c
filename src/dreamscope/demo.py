"""Why does a policy's logged entropy stay at 13.67? Answered end to end on air hockey: train, diagnose, probe, report.

The set-up is the case dreamscope was built to explain, a SAC-style DreamerV3 port's: a 4-D
tanh-squashed policy with log σ in (−5, 2), an entropy bonus η = 3e-3, sparse ±10 goal rewards. The model
is small (the ``tiny`` preset widened to 64 units, lr 3e-4) so that the whole story fits a few
minutes on two CPU cores. The settings are the bundled config ``airhockey_seed_small``, which
``train --config`` and ``sweep --config`` take by name. Running the demo again continues an
interrupted demo run instead of starting over.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from dreamscope.run_files import CONFIG

DEMO_PRESET = "tiny"
#: The bundled config the demo trains (src/dreamscope/configs/); `--config` accepts its name too.
DEMO_CONFIG = "airhockey_seed_small"
PROBE_UPDATES = 200


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--logdir", default="demo_run", help="run directory (default: demo_run)")
    parser.add_argument("--steps", type=int, help=f"agent steps (default: run.steps of the {DEMO_CONFIG} config)")
    parser.add_argument("--probe-updates", type=int, default=PROBE_UPDATES, metavar="K",
                        help=f"actor updates per probe intervention (default {PROBE_UPDATES}); 0 skips the probe")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def run(args: argparse.Namespace) -> int:
    from dreamscope.config import compose, load_run_config
    from dreamscope.diagnostics.doctor import diagnose
    from dreamscope.diagnostics.doctor_cli import render
    from dreamscope.diagnostics.probe import probe, probe_html_section
    from dreamscope.diagnostics.probe import render as render_probe
    from dreamscope.errors import DreamscopeError
    from dreamscope.logs import read_run
    from dreamscope.report.html import write_report
    from dreamscope.train import Trainer

    if args.probe_updates < 0:
        raise DreamscopeError(f"--probe-updates {args.probe_updates}: expected 0 (no probe) or more")
    logdir = Path(args.logdir)
    resume = (logdir / CONFIG).exists()
    if resume:
        cfg = load_run_config(logdir / CONFIG)
        print(f"continuing the demo run in {logdir}")
    else:
        cfg = compose(DEMO_PRESET, DEMO_CONFIG, {})
    if args.steps is not None:
        cfg.run.steps = args.steps
    Trainer(cfg, logdir, resume=resume).train(progress=not args.no_progress)

    the_run = read_run(logdir)
    diagnosis = diagnose(the_run)
    fragments = []
    if args.probe_updates:
        result = probe(logdir, updates=args.probe_updates, progress=not args.no_progress).to_dict()
        (logdir / "probe.json").write_text(json.dumps(result, indent=2, allow_nan=False, ensure_ascii=False))
        fragments.append(probe_html_section(result))
    report = logdir / "report.html"
    write_report(the_run, diagnosis, report, html_fragments=fragments)
    render(diagnosis, report=str(report))
    if args.probe_updates:
        render_probe(result)
    print(f"\nreport: {report.resolve()}")
    return 0
