"""Reader for the official dreamerv3 ``scope/`` folder: one ``.float`` file per scalar metric.

danijar/scope (used by elements.logger.ScopeOutput) appends 16-byte records, an int64 step and
a float64 value, with ``struct`` format ``'>qd'`` — big-endian — and names the file after the
key with ``/`` replaced by ``-`` (``train/ent/action`` → ``train-ent-action.float``). Other
writers nest folders instead, or write little-endian, so both layouts and both byte orders are
read: the byte order is decided per file from the steps, which are small non-negative integers
in the right order and astronomically large (or negative) in the wrong one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dreamscope.errors import DreamscopeError
from dreamscope.logs.schema import Series
from dreamscope.logs.steps import repair_steps

RECORD = 16
#: Steps at or above 2**53 cannot come from a training counter (nor survive a float64 round trip).
_MAX_STEP = 2**53
#: scope's text, image and video columns: not scalars, listed in meta and otherwise skipped.
_NOT_SCALAR = {".txt", ".png", ".jpg", ".mp4", ".webm", ".gif"}
EXPECTED = "a dreamerv3 scope/ folder of <key>.float files, each a sequence of (int64 step, float64 value) records"


def scope_root(path: Path) -> Path:
    return path / "scope" if (path / "scope").is_dir() else path


def float_files(path: Path) -> list[Path]:
    return [path] if path.is_file() else sorted(scope_root(path).rglob("*.float"))


def key_of(file: Path, root: Path) -> str:
    """``train-ent-action.float`` and ``train/ent/action.float`` both name ``train/ent/action``."""
    parts = file.relative_to(root).with_suffix("").parts if file != root else (file.stem,)
    return "/".join(parts).replace("-", "/")


def _decode(data: bytes) -> tuple[np.ndarray, np.ndarray, str]:
    """Both byte orders, keep the one whose steps are plausible (see module docstring)."""
    readings = []
    for order, name in ((">", "big"), ("<", "little")):
        table = np.frombuffer(data, dtype=np.dtype([("step", order + "i8"), ("value", order + "f8")]))
        steps, values = table["step"].astype(np.int64), table["value"].astype(np.float64)
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            sane = np.isfinite(values) & ((values == 0) | (np.abs(values) > 1e-30) & (np.abs(values) < 1e30))
        valid = len(steps) == 0 or steps.min() >= 0
        readings.append((not valid, int(steps.max(initial=0)), -int(sane.sum()), name, steps, values))
    best = min(readings, key=lambda r: r[:3])
    return best[4], best[5], best[3]


def read_scope(path: Path) -> tuple[dict[str, Series], list[str], dict]:
    """One Series per .float file under ``path`` (a run dir, its scope/ folder, or one file)."""
    files = float_files(path)
    if not files:
        raise DreamscopeError(f"{path}: no .float files found; expected {EXPECTED}")
    root = path if path.is_file() else scope_root(path)
    series: dict[str, Series] = {}
    warnings: list[str] = []
    orders: dict[str, int] = {}
    events: list[dict] = []
    for file in files:
        data = file.read_bytes()
        usable = len(data) - len(data) % RECORD
        if usable != len(data):
            warnings.append(f"{file}: {len(data) % RECORD} trailing byte(s) after record {usable // RECORD} "
                            f"(a partial record: the writer was stopped mid-write); ignored")
        steps, values, order = _decode(data[:usable])
        if len(steps) and (steps.min() < 0 or steps.max() >= _MAX_STEP):
            bad = int(np.flatnonzero((steps < 0) | (steps >= _MAX_STEP))[0])
            raise DreamscopeError(f"{file}: record {bad + 1} (byte {bad * RECORD}): step {int(steps[bad])} is not a "
                                  f"plausible step in either byte order; expected {EXPECTED}")
        orders[order] = orders.get(order, 0) + 1
        fixed, keep, step_warnings, file_events = repair_steps(
            steps, lambda i: f"{file}: record {i + 1} (byte {i * RECORD})")
        warnings.extend(step_warnings)
        events.extend(file_events)
        fixed, values = fixed[keep], values[keep]
        by_step = np.argsort(fixed, kind="stable")
        series[key_of(file, root)] = Series(fixed[by_step], values[by_step])
    meta: dict = {"byte_order": orders if len(orders) > 1 else next(iter(orders))}
    if events:
        meta["step_events"] = events
    if path.is_dir():
        skipped = sorted(p.name for p in scope_root(path).iterdir() if p.suffix in _NOT_SCALAR)
        if skipped:
            meta["not_scalar"] = skipped
    return series, warnings, meta
