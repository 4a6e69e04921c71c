"""The `dreamscope` command: one entry point whose sub-commands live in their own modules.

Each command module exposes ``add_arguments(parser)`` and ``run(args) -> int``. Only the chosen
command's module is imported (``dreamscope --help`` imports none), and modules keep heavy imports
(torch, mujoco) inside ``run``, so that `dreamscope entropy` starts without torch.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from dreamscope.errors import DreamscopeError

# OpenMP threads that sleep while they wait instead of spinning: with the default (spinning), a
# 2-thread run next to any other job on the cores stalled (18x slower or worse, measured in
# docs/benchmarks_speed.md); with PASSIVE it keeps its share. Read when torch loads libgomp, so
# it is set before any command imports torch, and only where the user has not chosen.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

#: sub-command -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "train": ("dreamscope.train", "train a DreamerV3 agent with every entropy signal measured"),
    "diagnose": ("dreamscope.diagnostics.doctor_cli", "read a run's logs and answer: symptom or cause?"),
    "probe": ("dreamscope.diagnostics.probe", "re-run actor updates from a checkpoint under interventions: symptom or cause?"),
    "model-fit": ("dreamscope.diagnostics.model_fit", "which observation dimensions the world model sees, posterior "
                  "and imagined"),
    "evaluate": ("dreamscope.evaluate", "play fresh episodes from checkpoints: score and win rate, sampled and mode policy"),
    "sweep": ("dreamscope.sweep", "train a grid of settings x seeds in parallel with Ray Tune and diagnose every run"),
    "entropy": ("dreamscope.fingerprint", "explain what a logged entropy value can be"),
    "demo": ("dreamscope.demo", "train briefly on air hockey, diagnose, write the HTML report"),
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The parser with every command listed and ``command``'s own options (its module imported)."""
    parser = argparse.ArgumentParser(prog="dreamscope", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        if name != command:
            sub.add_parser(name, help=help_text)
            continue
        module = importlib.import_module(module_name)
        chosen = sub.add_parser(name, help=help_text, description=(module.__doc__ or help_text).strip())
        module.add_arguments(chosen)
        chosen.set_defaults(_run=module.run)
    return parser


def _command_in(argv: list[str]) -> str | None:
    """The sub-command ``argv`` names: its first word (the top level has no options taking values)."""
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(_command_in(argv)).parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except DreamscopeError as err:
        print(f"dreamscope {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dreamscope {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
