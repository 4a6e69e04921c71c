"""Read a training log of any supported Dreamer implementation into one :class:`Run`.

``read_run`` finds the format (or takes it from ``format=``), reads the file streaming, maps
foreign metric names onto the canonical ones of :mod:`dreamscope.metrics` (keeping every
unmapped numeric key as ``raw/<key>``), repairs step counters that go backwards (see
:mod:`dreamscope.logs.steps`) and records what it could infer in ``Run.meta`` and every
oddity in ``Run.warnings``. Mapping tables: :mod:`dreamscope.logs.names`.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

from dreamscope.errors import DreamscopeError
from dreamscope.logs import names
from dreamscope.logs.csvlog import read_csv
from dreamscope.logs import jsonl
from dreamscope.logs.jsonl import EXPECTED as JSONL_EXPECTED, read_jsonl
from dreamscope.logs.schema import Run, Series
from dreamscope.logs.scope import float_files, read_scope
from dreamscope.logs.sidecar import naturaldreamer_config, read_config
from dreamscope.logs.tensorboard import event_dirs, read_tensorboard
from dreamscope.logs.textfile import GZIP_ERRORS, check_text, log_name, open_log, read_head

__all__ = ["FORMATS", "Run", "Series", "detect_format", "read_run"]

FORMATS: dict[str, str] = {
    "dreamscope": "dreamscope run directory: metrics.jsonl with canonical names, optional meta.json",
    "dreamerv3": "official danijar/dreamerv3 metrics.jsonl (2024+ names like train/ent/action, and 2023 names)",
    "dreamerv3-scope": "official dreamerv3 scope/ folder: per metric a <key>.float file of (int64 step, float64 value)",
    "dreamerv3-torch": "NM512/dreamerv3-torch metrics.jsonl and look-alikes (actor_entropy, EMA_005, train_return)",
    "r2dreamer": "NM512/r2dreamer metrics.jsonl (train/action_entropy, train/ret_005, episode/score)",
    "naturaldreamer": "NaturalDreamer metrics CSV (envSteps, gradientSteps, totalReward, ..., entropies, advantages)",
    "tensorboard": "TensorBoard event files (sheeprl, dreamerv3-torch, r2dreamer, official, dreamscope): scalars",
    "csv": "generic CSV or W&B export: a header with a step column (step, _step, global_step, Step); "
           "common names (behavior/entropy_mean, Grads/actor, ...) are read, others via mapping",
    "jsonl": "generic JSON lines or W&B history: a step key (step, _step, global_step) per line; "
             "common names are read, others via mapping",
}

_JSONL_FORMATS = {"dreamscope": names.DREAMSCOPE, "dreamerv3": names.DREAMERV3,
                  "dreamerv3-torch": names.DREAMERV3_TORCH, "r2dreamer": names.R2DREAMER, "jsonl": names.GENERIC}
#: Lines (and bytes) format detection reads at most before deciding from what it saw.
_SNIFF_LINES, _SNIFF_BYTES = 20000, 4 << 20
_DISTS = ("bounded_normal", "tanh_normal", "discrete")


def _formats_list() -> str:
    return "; ".join(f"{name} ({what})" for name, what in FORMATS.items())


def detect_format(path: str | Path) -> str:
    """The FORMATS name of the log at ``path`` (a file or a run directory), from names and content."""
    path = Path(path)
    if not path.exists():
        raise DreamscopeError(f"{path}: no such file or directory; expected a run directory or a log file")
    if path.is_dir():
        metrics = _metrics_file(path)
        if metrics is not None:
            return "dreamscope" if (path / "meta.json").is_file() else _jsonl_flavour(metrics)
        if float_files(path):
            return "dreamerv3-scope"
        if event_dirs(path):
            return "tensorboard"
        candidates = _logs_in(path, "jsonl") or _logs_in(path, "csv")
        if len(candidates) == 1:
            return detect_format(candidates[0])
        found = f" (several candidates: {', '.join(c.name for c in candidates[:6])}; pass one)" if candidates else ""
        raise DreamscopeError(f"{path}: no log found{found}; expected metrics.jsonl, scope/*.float, "
                              f"events.out.tfevents.* or one *.csv / *.jsonl (optionally .gz)")
    if path.name.startswith("events.out.tfevents"):
        return "tensorboard"
    if path.suffix == ".float":
        return "dreamerv3-scope"
    head = read_head(path)
    if not head.strip():
        raise DreamscopeError(f"{path}:1: the file is {'empty' if not head else 'blank'}; expected one of: "
                              f"{_formats_list()}")
    if b"brain.Event" in head[:256]:
        return "tensorboard"
    check_text(path, head, f"one of: {_formats_list()}")
    first = next(line for line in head.decode("utf-8", "replace").splitlines() if line.strip()).strip()
    if first.startswith("{"):
        if (path.parent / "meta.json").is_file() and log_name(path) == "metrics.jsonl":
            return "dreamscope"
        return _jsonl_flavour(path)
    if "," in first or log_name(path).endswith(".csv"):
        return "naturaldreamer" if "envSteps" in [c.strip() for c in first.split(",")] else "csv"
    raise DreamscopeError(f"{path}:1: neither a JSON line nor a CSV header: {first[:60]!r}; expected one of: "
                          f"{_formats_list()}")


def _metrics_file(folder: Path) -> Path | None:
    """A run directory's metrics.jsonl, or its gzip-compressed metrics.jsonl.gz."""
    return next((folder / name for name in ("metrics.jsonl", "metrics.jsonl.gz") if (folder / name).is_file()), None)


def _logs_in(folder: Path, kind: str) -> list[Path]:
    """``*.<kind>(.gz)`` files directly in ``folder``, else under its metrics/ (NaturalDreamer's metricsFolder)."""
    return (sorted([*folder.glob(f"*.{kind}"), *folder.glob(f"*.{kind}.gz")])
            or sorted([*folder.glob(f"metrics/**/*.{kind}"), *folder.glob(f"metrics/**/*.{kind}.gz")]))


def _jsonl_flavour(file: Path) -> str:
    """Which implementation wrote a metrics.jsonl, from the keys of its first lines.

    Logs often open with many episode-only lines (keys shared by several implementations), so
    reading goes on until a characteristic key shows up or the sniff budget is spent.
    """
    keys: set[str] = set()
    first_bad = None
    size = 0
    with io.TextIOWrapper(open_log(file), encoding="utf-8", errors="replace") as f:
        for number, line in _lines_until_broken(f):
            size += len(line)
            try:
                obj = json.loads(line)
            except (ValueError, RecursionError):
                obj = None
            if not isinstance(obj, dict):
                if line.strip() and first_bad is None:
                    first_bad = (number, line.strip()[:60])
                continue
            if not keys.issuperset(obj):
                keys.update(obj)
                if names.identify(keys) not in (None, "dreamscope"):
                    break
            if number >= _SNIFF_LINES or size >= _SNIFF_BYTES:
                break
    found = names.identify(keys)
    if found:
        return "jsonl" if found == "lookalike" else found
    if keys and keys <= names.SHARED_KEYS and keys - {"step"}:
        return "dreamerv3"  # episode lines only: the official writer's first lines look exactly like this
    if not keys:
        number, text = first_bad or (1, "")
        raise DreamscopeError(f"{file}:{number}: not a JSON object line: {text!r}; expected {JSONL_EXPECTED}")
    return "jsonl"  # names no table knows: read as generic JSON lines (read_run says so)


def read_run(path: str | Path, format: str | None = None, mapping: dict[str, str] | None = None) -> Run:
    """Read the log at ``path`` into a :class:`Run` under canonical names.

    ``format`` overrides detection (one of :data:`FORMATS`); ``mapping`` ({foreign: canonical})
    renames keys the tables do not know, and wins over them (CLI ``--map old=new``).
    """
    if format is not None and format not in FORMATS:
        raise DreamscopeError(f"unknown log format {format!r}; accepted: {_formats_list()}")
    mapping = names.check_mapping(mapping)
    path = Path(path)
    fmt = format or detect_format(path)
    if not path.exists():
        raise DreamscopeError(f"{path}: no such file or directory; expected {FORMATS[fmt]}")
    meta: dict = {}
    if fmt in _JSONL_FORMATS:
        file = _file_in(path, "jsonl")
        columns, warnings, meta = read_jsonl(file)
        table = _JSONL_FORMATS[fmt]
        found = names.identify(columns)
        if format and found not in (None, "lookalike", fmt):
            warnings.append(f"{file}: read as {fmt} as asked, but its keys look like {found}'s; "
                            f"few of them will map (leave format out to detect it)")
        if fmt == "jsonl" and found is None:
            listed = ", ".join(sorted(k for k in columns if k not in jsonl.STEP_KEYS)[:12])
            warnings.append(f"{file}: no key is a name that dreamscope knows ({listed}); read as generic JSON lines: "
                            f"pass --map KEY=CANONICAL (e.g. --map my_entropy=policy/entropy) for the ones that matter")
        if fmt == "dreamscope":
            meta.update(_read_meta(file.parent / "meta.json"))
        if fmt == "dreamerv3-torch":
            nm512 = names.NM512_KEYS & set(columns)
            meta["implementation"] = "dreamerv3-torch" if nm512 else "dreamerv3-torch-style"
    elif fmt == "dreamerv3-scope":
        if path.is_file() and path.suffix != ".float":
            raise DreamscopeError(f"{path}: not a .float file; expected {FORMATS[fmt]}")
        columns, warnings, meta = read_scope(path)
        file, table = path, names.DREAMERV3
    elif fmt == "tensorboard":
        columns, warnings, meta = read_tensorboard(path)
        file = event_dirs(path)[0]
        table = names.TABLES.get(names.identify(columns), names.GENERIC)
    else:
        file = _file_in(path, "csv")
        columns, warnings, meta = read_csv(file, naturaldreamer=fmt == "naturaldreamer")
        table = names.NATURALDREAMER if fmt == "naturaldreamer" else names.TABLES.get(names.identify(columns),
                                                                                      names.GENERIC)
    if not any(len(series) for series in columns.values()):
        listed = ", ".join(list(columns)[:8]) or "none"
        raise DreamscopeError(f"{file}:1: not one numeric value in any metric (keys or columns: {listed}); "
                              f"expected {FORMATS[fmt]}")
    if fmt != "dreamscope":  # dreamscope's meta.json says it all
        config = naturaldreamer_config(path, file) if fmt == "naturaldreamer" and path.is_dir() else None
        read_config(file, meta, warnings, parents=fmt in ("tensorboard", "dreamerv3-scope"), file=config)
    return names.build_run(path, fmt, columns, table, mapping, warnings, meta)


def _file_in(path: Path, kind: str) -> Path:
    """The log file a directory stands for: its metrics.jsonl(.gz) for jsonl, else its only ``*.<kind>(.gz)``."""
    if not path.is_dir():
        return path
    metrics = _metrics_file(path) if kind == "jsonl" else None
    if metrics is not None:
        return metrics
    found = _logs_in(path, kind)
    if len(found) != 1:
        listed = f" ({', '.join(f.name for f in found[:6])})" if found else ""
        raise DreamscopeError(f"{path}: expected {'metrics.jsonl or ' if kind == 'jsonl' else ''}one *.{kind} here, "
                              f"found {len(found)} *.{kind}(.gz) file(s){listed}; pass the file")
    return found[0]


def _lines_until_broken(f):
    """Numbered lines of a text stream; a broken gzip stream just ends them (the reader reports it)."""
    number = 0
    try:
        for number, line in enumerate(f, 1):
            yield number, line
    except GZIP_ERRORS:
        return


def _read_meta(file: Path) -> dict:
    """dreamscope's meta.json: copied into Run.meta after checking the keys the doctor relies on."""
    if not file.is_file():
        return {}
    text = file.read_text(encoding="utf-8", errors="replace")
    example = '{"action_dim": 4, "dist": "tanh_normal", "eta": 0.0003, "std_min": 0.1, "std_max": 7.39}'
    try:
        meta = json.loads(text)
    except ValueError as error:
        raise DreamscopeError(f"{file}:{error.lineno}: not valid JSON ({error.msg}); expected an object like {example}")
    if not isinstance(meta, dict):
        raise DreamscopeError(f"{file}:1: a JSON {type(meta).__name__}, not an object; "
                              f"expected an object like {example}")

    def fail(key: str, accepted: str) -> DreamscopeError:
        line = text[: max(text.find(f'"{key}"'), 0)].count("\n") + 1
        return DreamscopeError(f"{file}:{line}: {key} = {meta[key]!r}; expected {accepted}")

    if "dist" in meta and meta["dist"] not in _DISTS:
        raise fail("dist", " | ".join(_DISTS))
    if "action_dim" in meta and not (type(meta["action_dim"]) is int and meta["action_dim"] > 0):
        raise fail("action_dim", "a positive integer")
    for key in ("eta", "std_min", "std_max"):
        if key in meta and not (type(meta[key]) in (int, float) and math.isfinite(meta[key])):
            raise fail(key, "a finite number")
    if {"std_min", "std_max"} <= meta.keys() and not meta["std_min"] < meta["std_max"]:
        raise fail("std_min", f"a value below std_max = {meta['std_max']!r}")
    return meta
