"""CSV logs: NaturalDreamer's metrics file and any CSV with a header and a step column (W&B exports).

An empty cell means "not logged at this step" (W&B exports are sparse), so it yields no point;
a cell that is not a number becomes NaN with a warning, and a column with no numbers at all
(run names, timestamps as text) is left out with a note.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from dreamscope.errors import DreamscopeError
from dreamscope.logs.textfile import GZIP_ERRORS, check_text, open_log, read_head
from dreamscope.logs.schema import Series
from dreamscope.logs.steps import repair_steps

#: Accepted step columns of a generic CSV (compared case-insensitively, so "Step" counts).
STEP_COLUMNS = ("step", "_step", "global_step")
NATURALDREAMER_COLUMNS = ("envSteps", "gradientSteps", "totalReward", "worldModelLoss", "reconstructionLoss",
                          "rewardPredictorLoss", "klLoss", "actorLoss", "criticLoss", "entropies", "logprobs",
                          "advantages", "criticValues")
_SHOWN_BAD_ROWS = 5


def _expected(naturaldreamer: bool) -> str:
    if naturaldreamer:
        return f"a NaturalDreamer metrics CSV with the header {', '.join(NATURALDREAMER_COLUMNS)}"
    return f"a CSV whose header has a step column ({', '.join(STEP_COLUMNS)} or Step) and metric columns"


def _header(path: Path, rows, naturaldreamer: bool) -> tuple[int, list[str]]:
    for row in rows:
        if any(cell.strip() for cell in row):
            return rows.line_num, [cell.strip() for cell in row]
    raise DreamscopeError(f"{path}:1: the file is empty; expected {_expected(naturaldreamer)}")


def _strip_wandb_prefix(names: list[str], step: int) -> tuple[list[str], str | None]:
    """W&B panel exports name columns '<run> - <key>'; with one run the prefix carries nothing."""
    others = [n for j, n in enumerate(names) if j != step]
    prefixes = {n.split(" - ", 1)[0] for n in others if " - " in n}
    if len(prefixes) != 1 or not all(" - " in n for n in others):
        return names, None
    prefix = prefixes.pop()
    return [n if j == step else n.split(" - ", 1)[1] for j, n in enumerate(names)], prefix


def _rows(path: Path, rows, naturaldreamer: bool):
    """Header line, column names, step column, data rows and their line numbers, bad rows."""
    header_line, names = _header(path, rows, naturaldreamer)
    if naturaldreamer:
        if "envSteps" not in names:
            raise DreamscopeError(f"{path}:{header_line}: the header {names[:6]} has no envSteps column; "
                                  f"expected {_expected(True)}")
        step = names.index("envSteps")
    else:
        step = next((j for j, n in enumerate(names) if n.lower() in STEP_COLUMNS), None)
        if step is None:
            raise DreamscopeError(f"{path}:{header_line}: no step column in the header {names[:6]}; "
                                  f"expected {_expected(False)}")
    table, lines, bad = [], [], []
    for row in rows:
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(names):
            bad.append((rows.line_num, f"{len(row)} fields where the header has {len(names)}"))
            continue
        table.append(row)
        lines.append(rows.line_num)
    return header_line, names, step, table, lines, bad


def read_csv(path: Path, naturaldreamer: bool) -> tuple[dict[str, Series], list[str], dict]:
    """One Series per numeric column, on the step column (envSteps for NaturalDreamer)."""
    check_text(path, read_head(path, 8192), _expected(naturaldreamer))
    with io.TextIOWrapper(open_log(path), encoding="utf-8", errors="replace", newline="") as f:
        rows = csv.reader(f)
        try:
            header_line, names, step, table, lines, bad = _rows(path, rows, naturaldreamer)
        except csv.Error as error:
            raise DreamscopeError(f"{path}:{rows.line_num}: not CSV ({error}); "
                                  f"expected {_expected(naturaldreamer)}") from None
        except GZIP_ERRORS as error:
            raise DreamscopeError(f"{path}:{rows.line_num + 1}: the gzip stream breaks off or is corrupt "
                                  f"({error}); expected a complete gzip file") from None
    names, run_prefix = _strip_wandb_prefix(names, step)

    warnings: list[str] = []
    steps = np.full(len(table), np.nan)
    for i, row in enumerate(table):
        try:
            steps[i] = float(row[step])
        except ValueError:
            pass
    good = np.isfinite(steps) & (steps == np.round(steps)) & (np.abs(steps) < 2.0**62)
    bad.extend((lines[i], f"step {table[i][step]!r} is not an integer") for i in np.flatnonzero(~good))
    bad.sort()
    for number, reason in bad[:_SHOWN_BAD_ROWS]:
        warnings.append(f"{path}:{number}: {reason}; row skipped")
    if len(bad) > _SHOWN_BAD_ROWS:
        warnings.append(f"{path}: {len(bad) - _SHOWN_BAD_ROWS} more bad row(s) skipped: "
                        f"{', '.join(str(b[0]) for b in bad[_SHOWN_BAD_ROWS:][:20])}")
    keep_rows = np.flatnonzero(good)
    if len(keep_rows) == 0:
        where = f"{path}:{bad[0][0]}: {bad[0][1]}" if bad else f"{path}:{header_line}: no rows after the header"
        raise DreamscopeError(f"{where}; expected {_expected(naturaldreamer)}")
    table = [table[i] for i in keep_rows]
    lines = np.asarray(lines)[keep_rows]
    fixed, keep, step_warnings, events = repair_steps(steps[keep_rows].astype(np.int64),
                                                      lambda i: f"{path}:{lines[i]}")
    warnings.extend(step_warnings)

    series: dict[str, Series] = {}
    for j, name in enumerate(names):
        if j == step:
            continue
        parsed = _column(path, name, [row[j] for row in table], lines, warnings)
        if parsed is None:
            continue
        use = keep & parsed[0]
        if not use.any():
            continue
        order = np.argsort(fixed[use], kind="stable")
        series[name] = Series(fixed[use][order], parsed[1][use][order])
    meta: dict = {"step_column": names[step], "rows": len(table)}
    if run_prefix:
        meta["wandb_run"] = run_prefix
    if events:
        meta["step_events"] = events
    return series, warnings, meta


def _column(path, name: str, cells: list[str], lines: np.ndarray, warnings: list[str]):
    """(present, values) for one column: empty cells are absent, unparsable ones NaN; None if no numbers."""
    present = np.zeros(len(cells), dtype=bool)
    values = np.full(len(cells), np.nan)
    unparsable = []
    for i, cell in enumerate(cells):
        cell = cell.strip()
        if not cell:
            continue
        present[i] = True
        try:
            values[i] = float(cell)
        except ValueError:
            unparsable.append(i)
    if unparsable and len(unparsable) == present.sum():
        warnings.append(f"{path}:{lines[unparsable[0]]}: column '{name}' holds text ({cells[unparsable[0]]!r}), "
                        f"not numbers; left out")
        return None
    if unparsable:
        warnings.append(f"{path}:{lines[unparsable[0]]}: column '{name}' has {len(unparsable)} non-numeric "
                        f"cell(s) ({cells[unparsable[0]]!r}); read as NaN")
    return present, values
