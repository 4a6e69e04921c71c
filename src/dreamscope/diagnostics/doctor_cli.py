"""Diagnose a run's policy entropy: is it a symptom (no learning signal), a cause (the bonus), or expected?

Reads the run's logs (ours or another Dreamer implementation's), splits them into step
windows, and prints the verdict with its evidence, ranked fixes and the intervention that
would confirm it; --json prints the same as one JSON object, --html writes a report.
"""

from __future__ import annotations

import argparse
import json

from dreamscope.cli_args import int_option
from dreamscope.diagnostics.doctor import DISTS, diagnose
from dreamscope.errors import DreamscopeError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # Values are checked in run() so that every bad one gets the CLI's one-line error naming it.
    parser.add_argument("path", metavar="PATH", help="run directory or log file")
    parser.add_argument("--format", metavar="F", help="log format (default: detected from PATH)")
    parser.add_argument("--map", metavar="OLD=NEW", action="append", default=[],
                        help="read the log's OLD metric as canonical NEW (repeatable), "
                             "e.g. entropy_mean=policy/entropy")
    parser.add_argument("--action-dim", metavar="D", help="action dimensions (default: from the run's meta)")
    parser.add_argument("--dist", metavar="{" + ",".join(DISTS) + "}",
                        help="policy distribution (default: run meta, else read off the logged entropy)")
    parser.add_argument("--task", metavar="NAME",
                        help="the task's name (e.g. MountainCarContinuous-v0): whether only a goal pays (a plateau "
                             "without a positive score is no signal yet) or every step does (default: run meta)")
    parser.add_argument("--windows", metavar="N", default="4", help="number of step windows to judge (default 4)")
    parser.add_argument("--json", action="store_true", help="print the diagnosis as JSON")
    parser.add_argument("--html", metavar="REPORT", help="also write a self-contained HTML report here")
    parser.add_argument("--probe", metavar="PROBE_JSON",
                        help="add the result of `dreamscope probe RUN --json > PROBE_JSON` to the HTML report")
    parser.add_argument("--model-fit", metavar="FIT_JSON",
                        help="add the result of `dreamscope model-fit RUN --json > FIT_JSON` to the HTML report")
    parser.add_argument("--evaluation", metavar="EVAL_JSON",
                        help="add the result of `dreamscope evaluate RUN --json > EVAL_JSON` to the HTML report")


def parse_map(items: list[str]) -> dict[str, str]:
    """--map OLD=NEW pairs; NEW must be a canonical metric name (an unknown one is named with the list)."""
    from dreamscope.logs.names import check_mapping

    mapping: dict[str, str] = {}
    for item in items:
        old, sep, new = item.partition("=")
        old, new = old.strip(), new.strip()
        if not sep or not old or not new:
            raise DreamscopeError(f"--map {item!r} is not OLD=NEW; e.g. --map entropy_mean=policy/entropy")
        if old in mapping and mapping[old] != new:
            raise DreamscopeError(f"--map {item!r}: {old!r} is already mapped to {mapping[old]!r}")
        mapping[old] = new
    return check_mapping(mapping)


def load_run(path: str, fmt: str | None, mapping: dict[str, str]):
    """Read the run through the log readers, checking the format name first."""
    from pathlib import Path

    from dreamscope.logs import FORMATS, read_run

    if fmt is not None and fmt not in FORMATS:
        raise DreamscopeError(f"--format {fmt!r} is not a known log format; accepted: {', '.join(FORMATS)}")
    if not Path(path).exists():
        raise DreamscopeError(f"{path}: no such file or directory")
    return read_run(path, format=fmt, mapping=mapping or None)


def _saved_fragment(path: str, option: str, command: str, key: str, section) -> str:
    """The HTML section of another command's saved --json output (``key`` tells it is one)."""
    try:
        with open(path) as f:
            result = json.load(f)
    except (OSError, ValueError) as err:
        raise DreamscopeError(f"{option} {path}: cannot read it as the JSON that `{command} --json` writes ({err})") from None
    if not isinstance(result, dict) or key not in result:
        raise DreamscopeError(f"{option} {path}: not the output of `{command} --json` (no {key!r} key)")
    try:
        return section(result)
    except (KeyError, TypeError, ValueError) as err:
        raise DreamscopeError(f"{option} {path}: incomplete `{command} --json` output ({err!r})") from None


def _saved_fragments(args: argparse.Namespace) -> list[str]:
    """Sections for the report from saved probe / model-fit / evaluate results. Each module is
    imported only when its result is given: they load torch, which a plain diagnosis never needs."""
    fragments = []
    if args.probe is not None:
        from dreamscope.diagnostics.probe import probe_html_section

        fragments.append(_saved_fragment(args.probe, "--probe", "dreamscope probe RUN", "interventions",
                                         probe_html_section))
    if args.model_fit is not None:
        from dreamscope.diagnostics.model_fit import model_fit_html_section

        fragments.append(_saved_fragment(args.model_fit, "--model-fit", "dreamscope model-fit RUN", "dims",
                                         model_fit_html_section))
    if args.evaluation is not None:
        from dreamscope.evaluate import evaluation_html_section

        fragments.append(_saved_fragment(args.evaluation, "--evaluation", "dreamscope evaluate RUN", "evaluations",
                                         evaluation_html_section))
    return fragments


def run(args: argparse.Namespace) -> int:
    if args.dist is not None and args.dist not in DISTS:
        raise DreamscopeError(f"--dist {args.dist!r} is not one of {', '.join(DISTS)}")
    action_dim = int_option("--action-dim", args.action_dim) if args.action_dim is not None else None
    windows = int_option("--windows", args.windows) if args.windows is not None else None
    mapping = parse_map(args.map)
    from dreamscope.report.html import check_writable, write_report

    if args.html is not None:  # fail before the (possibly long) read, not after
        check_writable(args.html)
    fragments = _saved_fragments(args)
    the_run = load_run(args.path, args.format, mapping)
    if args.task is not None:
        the_run.meta["task"] = args.task
    diagnosis = diagnose(the_run, action_dim=action_dim, dist=args.dist, windows=windows)
    if args.html is not None:
        write_report(the_run, diagnosis, args.html, html_fragments=fragments)
    if args.json:
        print(json.dumps(diagnosis.to_dict(), indent=2, allow_nan=False, ensure_ascii=False))
    else:
        render(diagnosis, report=args.html)
    return 0


#: Fixes shown in the terminal, so the summary fits one screen; --json and --html list all.
TERMINAL_FIXES = 3
TERMINAL_UNDECIDED = 4
_MARK = {True: ("✓", "green"), False: ("✗", "red"), None: ("?", "yellow")}


def render(diagnosis, console=None, report: str | None = None) -> None:
    """One screen: verdict and answer, findings, evidence, fixes, the probe, what is missing.

    Log-derived strings go in as :class:`rich.text.Text`, never as markup, so a metric name
    like ``[bold]`` prints as itself.
    """
    from rich.console import Console, Group
    from rich.panel import Panel
    from rich.table import Table
    from rich.text import Text

    d = diagnosis
    console = console or Console()
    from dreamscope.report.style import verdict_style
    from dreamscope.report.terminal import two_answer_lines

    style = verdict_style(d.verdict)
    head = Text.assemble((d.verdict, style), "  ", (d.answer, style), f"  confidence {d.confidence:.2f}")
    timeline = Text("windows: ")
    for w in d.windows:
        timeline.append(f"{w.start}–{w.stop} ", style="dim")
        timeline.append(f"{w.verdict} ", style=verdict_style(w.verdict))
    title = Text(f"dreamscope diagnose {d.run_path} ({d.run_format})")
    console.print(Panel(Group(head, *two_answer_lines(d.entropy_held_by, d.learning_blocked_by), Text(d.summary),
                              timeline), title=title, title_align="left"))

    for f in d.findings:
        console.print(Text.assemble((f"{f.code} ", "bold magenta"), f.message))
        if f.detail.get("explanation"):
            console.print(Text(f.detail["explanation"], style="dim"))

    table = Table(box=None, show_header=True, header_style="bold", pad_edge=False, expand=True)
    table.add_column("", width=1)
    table.add_column("evidence", no_wrap=True)
    table.add_column("steps", no_wrap=True, style="dim")
    table.add_column("what it shows", ratio=1)
    for ev in d.evidence:
        mark, colour = _MARK[ev.holds]
        steps = Text(f"{ev.window[0]}–{ev.window[1]}")
        table.add_row(Text(mark, style=colour), Text(ev.check), steps, Text(ev.implies))
    console.print(table)

    console.print(Text("Fixes, best first", style="bold"))
    for i, fix in enumerate(d.fixes[:TERMINAL_FIXES], 1):
        console.print(Text.assemble(f" {i}. ", fix.action, (" → " + fix.expected_effect, "dim")))
    if len(d.fixes) > TERMINAL_FIXES:
        console.print(Text(f" (+{len(d.fixes) - TERMINAL_FIXES} more in --json / --html)", style="dim"))
    console.print(Text.assemble(("Confirm: ", "bold"), d.intervention))

    for note in d.notes:
        console.print(Text.assemble(("Note: ", "bold"), note))
    undecided = [f"{u['check']} ({u['why']})" for u in d.undecided]
    if undecided:
        extra = len(undecided) - TERMINAL_UNDECIDED
        more = f" (+{extra} more in --json)" if extra > 0 else ""
        shown = "; ".join(undecided[:TERMINAL_UNDECIDED]) + more
        console.print(Text.assemble(("Could not decide: ", "bold yellow"), shown))
    if d.missing_signals:
        console.print(Text.assemble(("Missing signals: ", "bold"), ", ".join(m["signal"] for m in d.missing_signals)))
    for a in d.assumptions:
        console.print(Text.assemble(("Assumed: ", "bold"), a))
    if d.warnings:
        shown = d.warnings[:3]
        more = f" (+{len(d.warnings) - 3} more; see --json)" if len(d.warnings) > 3 else ""
        console.print(Text.assemble(("Reader warnings: ", "bold"), " | ".join(shown) + more))
    if report:
        console.print(Text.assemble(("Report: ", "bold"), report))
