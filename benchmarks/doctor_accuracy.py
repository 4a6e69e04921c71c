"""The doctor's accuracy on a labelled corpus of runs of other implementations.

Each run of ``CORPUS/manifest.jsonl`` (one JSON object a line: id, implementation, task,
action_dim, dist, fault, label, accepted, archive, ...) is extracted from its archive into a
temporary directory, read by the log readers and diagnosed through the Python API, told only
what a user would pass on the command line (--action-dim, --dist where the doctor knows the
distribution, and the task). A verdict is right when it is one of the run's ``accepted`` codes.

Prints a confusion matrix (label × verdict), accuracy per implementation and per fault, and
leave-one-implementation-out accuracy: for each implementation, the few tunable thresholds
(``dreamscope.diagnostics.thresholds.TUNABLE``) are grid-searched on the *other*
implementations' runs and the held-out runs are diagnosed with that choice.

    python benchmarks/doctor_accuracy.py [--corpus corpus/] [--json] [--no-tune]
"""

from __future__ import annotations

import argparse
import itertools
import json
import shlex
import sys
import tarfile
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from dreamscope.diagnostics.doctor import DISTS, diagnose
from dreamscope.diagnostics.thresholds import DEFAULT, TUNABLE, Thresholds
from dreamscope.errors import DreamscopeError
from dreamscope.logs import read_run

#: Keys every manifest row needs.
REQUIRED = ("id", "implementation", "task", "action_dim", "dist", "fault", "label", "accepted", "archive")
#: The manifest's dist names the doctor knows as one of its own (the rest: left for it to infer).
DIST_AS = {"bounded_normal": "bounded_normal", "tanh_normal_pretanh_entropy": "tanh_normal", "discrete": "discrete"}
#: Verdicts that call a run's entropy a cause.
CAUSES = ("BONUS_DOMINATES", "COLLAPSE")


def load_manifest(corpus: Path) -> list[dict]:
    path = corpus / "manifest.jsonl"
    if not path.is_file():
        raise DreamscopeError(f"{path}: no manifest; expected one JSON object a line with keys {', '.join(REQUIRED)}")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError as err:
            raise DreamscopeError(f"{path}:{n}: not JSON ({err})") from None
        missing = [k for k in REQUIRED if k not in row] if isinstance(row, dict) else list(REQUIRED)
        if missing:
            raise DreamscopeError(f"{path}:{n}: missing key(s) {', '.join(missing)}; expected {', '.join(REQUIRED)}")
        if not isinstance(row["accepted"], list) or row["label"] not in row["accepted"] + [row["label"]]:
            raise DreamscopeError(f"{path}:{n}: accepted = {row['accepted']!r}; expected a list of verdict codes")
        rows.append(row)
    return rows


#: Log files, most specific first, for runs whose logs sit deeper than their directory (NaturalDreamer's
#: metrics/<env>/<name>.csv).
LOG_PATTERNS = ("metrics.jsonl", "events.out.tfevents.*", "*.jsonl", "*.csv")


def read_log(root: Path):
    """The run under ``root`` (the archive's single top-level directory, else root), read as a user would point
    at it: the directory itself, else the one directory below it that holds its log files."""
    entries = [p for p in root.iterdir() if not p.name.startswith(".")]
    top = entries[0] if len(entries) == 1 and entries[0].is_dir() else root
    try:
        return read_run(top)
    except DreamscopeError:
        for pattern in LOG_PATTERNS:
            parents = sorted({p.parent for p in top.rglob(pattern)})
            if len(parents) == 1:
                return read_run(parents[0])
        raise


def read(corpus: Path, row: dict, tmp: Path):
    """(run, error): the run read from its archive, or the one-line reason it could not be."""
    archive = corpus / row["archive"]
    target = tmp / row["id"]
    target.mkdir()
    try:
        with tarfile.open(archive) as tar:
            tar.extractall(target, filter="data")
        run = read_log(target)
    except (OSError, tarfile.TarError, DreamscopeError) as err:
        return None, f"{type(err).__name__}: {err}".splitlines()[0]
    if row.get("task") and "task" not in run.meta:
        run.meta["task"] = row["task"]  # what `--task` tells the doctor
    return run, None


def hints(row: dict, blind: bool) -> dict:
    """What a user would pass: --action-dim, and --dist where the doctor has that distribution."""
    if blind:
        return {}
    out = {}
    if isinstance(row.get("action_dim"), int) and row["action_dim"] > 0:
        out["action_dim"] = row["action_dim"]
    dist = DIST_AS.get(row.get("dist"))
    if dist in DISTS:
        out["dist"] = dist
    return out


def verdict_of(run, row: dict, th: Thresholds, blind: bool) -> tuple[str, float, str, str]:
    try:
        dx = diagnose(run, thresholds=th, **hints(row, blind))
    except DreamscopeError as err:
        return "ERROR", 0.0, "unknown", str(err).splitlines()[0]
    return dx.verdict, dx.confidence, dx.learning_blocked_by, ""


def fraction(hits: list[bool]) -> float | None:
    return sum(hits) / len(hits) if hits else None


def grid() -> list[Thresholds]:
    names = list(TUNABLE)
    return [replace(DEFAULT, **dict(zip(names, values))) for values in itertools.product(*TUNABLE.values())]


def distance(th: Thresholds) -> int:
    """How many tunable thresholds differ from their defaults (ties go to the fewest changes)."""
    return sum(getattr(th, n) != getattr(DEFAULT, n) for n in TUNABLE)


def evaluate(corpus: Path, tune: bool, blind: bool) -> dict:
    rows = load_manifest(corpus)
    candidates = grid() if tune else [DEFAULT]
    results = []
    correct: dict[int, list[bool]] = {}  # candidate index -> per run
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="doctor-accuracy-") as tmp:
        for row in rows:
            run, error = read(corpus, row, Path(tmp))
            accepted = set(row["accepted"]) | {row["label"]}
            for k, th in enumerate(candidates):
                verdict, conf, blocked, why = (("ERROR", 0.0, "unknown", error) if run is None
                                               else verdict_of(run, row, th, blind))
                correct.setdefault(k, []).append(verdict in accepted)
                if th == DEFAULT:
                    results.append({"id": row["id"], "implementation": row["implementation"], "task": row["task"],
                                    "fault": row["fault"], "label": row["label"], "accepted": sorted(accepted),
                                    "verdict": verdict, "confidence": round(conf, 3), "learning_blocked_by": blocked,
                                    "correct": verdict in accepted, "error": why or None})
    seconds = time.perf_counter() - started
    default_k = candidates.index(DEFAULT)
    implementations = sorted({r["implementation"] for r in results})
    left_out, chosen = [], {}
    for impl in implementations:
        inside = [i for i, r in enumerate(results) if r["implementation"] != impl]
        outside = [i for i, r in enumerate(results) if r["implementation"] == impl]
        best = max(range(len(candidates)), key=lambda k: (sum(correct[k][i] for i in inside),
                                                           -distance(candidates[k]), k == default_k))
        chosen[impl] = {n: getattr(candidates[best], n) for n in TUNABLE}
        left_out += [correct[best][i] for i in outside]
    healthy = [r for r in results if r["label"] == "HEALTHY"]
    no_reward = [r for r in results if r["label"] == "NO_SIGNAL"]
    return {
        "corpus": str(corpus),
        "implementations": implementations,
        "fault_classes": sorted({r["label"] for r in results}),
        "runs": len(results),
        "accuracy": fraction([r["correct"] for r in results]),
        "left_out_accuracy": fraction(left_out),
        "per_implementation": {i: fraction([r["correct"] for r in results if r["implementation"] == i])
                               for i in implementations},
        "per_fault": {f: fraction([r["correct"] for r in results if r["fault"] == f])
                      for f in sorted({r["fault"] for r in results})},
        "per_label": {lab: fraction([r["correct"] for r in results if r["label"] == lab])
                      for lab in sorted({r["label"] for r in results})},
        "healthy_called_a_cause": sum(r["verdict"] in CAUSES for r in healthy),
        "no_signal_called_healthy": sum(r["verdict"] == "HEALTHY" for r in no_reward),
        "thresholds_chosen_per_left_out": chosen,
        "tuned": list(TUNABLE) if tune else [],
        "grid_size": len(candidates),
        "blind": blind,
        "seconds": round(seconds, 1),
        "rows": results,
    }


def pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.0f}%"


def render(out: dict, command: str) -> None:
    from rich.console import Console
    from rich.table import Table

    from machine import cpu_model

    console = Console()
    console.print(f"machine: {cpu_model()}; command: {command}")
    console.print(f"corpus {out['corpus']}: {out['runs']} runs, {len(out['implementations'])} implementations, "
                  f"{len(out['fault_classes'])} labels; {out['seconds']} s for {out['grid_size']} threshold "
                  f"setting(s){' (blind: no --action-dim/--dist)' if out['blind'] else ''}")
    rows = out["rows"]
    verdicts = sorted({r["verdict"] for r in rows})
    confusion = Table(title="confusion: label (rows) × verdict (columns)")
    confusion.add_column("label")
    for v in verdicts:
        confusion.add_column(v, justify="right")
    for label in out["fault_classes"]:
        confusion.add_row(label, *(str(sum(r["label"] == label and r["verdict"] == v for r in rows) or "")
                                   for v in verdicts))
    console.print(confusion)
    for title, key in (("implementation", "per_implementation"), ("fault", "per_fault")):
        table = Table(title=f"accuracy per {title}")
        table.add_column(title)
        table.add_column("runs", justify="right")
        table.add_column("accuracy", justify="right")
        field = "implementation" if title == "implementation" else "fault"
        for name, acc in out[key].items():
            table.add_row(name, str(sum(r[field] == name for r in rows)), pct(acc))
        console.print(table)
    console.print(f"accuracy {pct(out['accuracy'])}; leave-one-implementation-out {pct(out['left_out_accuracy'])} "
                  f"(tuned: {', '.join(out['tuned']) or 'none'}); healthy runs called a cause: "
                  f"{out['healthy_called_a_cause']}; NO_SIGNAL runs called HEALTHY: {out['no_signal_called_healthy']}")
    misses = [r for r in rows if not r["correct"]]
    if misses:
        table = Table(title="misses")
        for col in ("id", "label", "verdict", "confidence", "error"):
            table.add_column(col)
        for r in misses:
            table.add_row(r["id"], r["label"], r["verdict"], f"{r['confidence']:.2f}", r["error"] or "")
        console.print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", default="corpus", help="corpus directory holding manifest.jsonl (default corpus/)")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the tables")
    parser.add_argument("--no-tune", action="store_true", help="default thresholds only (left-out = plain accuracy)")
    parser.add_argument("--blind", action="store_true", help="pass no --action-dim / --dist: the log alone")
    args = parser.parse_args(argv)
    try:
        out = evaluate(Path(args.corpus), tune=not args.no_tune, blind=args.blind)
    except DreamscopeError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(argv if argv is not None else sys.argv[1:])])
    if args.json:
        from machine import cpu_model

        print(json.dumps({**out, "machine": cpu_model(), "command": command}, indent=2))
    else:
        render(out, command)
    return 0


if __name__ == "__main__":
    sys.exit(main())
