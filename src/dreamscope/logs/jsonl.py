"""Streaming reader for ``metrics.jsonl`` files: one JSON object with a ``step`` per line.

The file (plain or gzip) is read in blocks of whole lines (~1 MB). Parsing 10^7 numbers one by
one in Python takes seconds, so a block's values are parsed in bulk by pyarrow's CSV reader
(C++): the separators ``{}:`` become commas, so that a line ``{"step": 5, "a": 0.1}`` reads as
the fields ``"step"``, `` 5``, `` "a"``, `` 0.1`` between an empty first and last field. A block
is first tried as one table whose lines all have the fields of its first line; where that
fails, its lines are grouped by *skeleton* (the line with every character a number can hold
deleted) and each group is tried as a table. A table is accepted only if every line has exactly
as many fields as the group's first line (itself valid JSON holding numbers only), every key
field is byte for byte the first line's, and every value parses as a float (``NaN`` and
``Infinity`` included); the separators themselves are not told apart, so a line whose ``:``
and ``,`` are swapped reads as its neighbours do. Anything else takes the careful path: the
json scanner per line, where a blank, truncated or corrupt line costs a warning naming its
line and nothing else. Both paths file records by their key tuple; each becomes columns.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import numpy as np

from dreamscope.errors import DreamscopeError
from dreamscope.logs.schema import Series
from dreamscope.logs.steps import repair_steps
from dreamscope.logs.textfile import GZIP_ERRORS, check_text, open_log, read_head

EXPECTED = 'one JSON object per line with an integer "step", e.g. {"step": 1000, "policy/entropy": 1.2}'
#: Step keys, in order of preference: ours and every Dreamer writer's, then W&B history exports'.
STEP_KEYS = ("step", "_step", "global_step")
_SHOWN_BAD_LINES = 5
#: Block size: small enough that a block and its translation stay in cache (8 MB blocks read 3x slower here).
_BLOCK = 1 << 20
#: Fewer lines than this are parsed line by line: a table costs ~2 ms to set up, json ~5 µs a line.
MIN_TABLE_LINES = 256
_TO_COMMAS = bytes.maketrans(b"{}:", b",,,")
_NUMBER_CHARS = b"0123456789.+-eE"


def _snippet(text: str, width: int = 60) -> str:
    text = text.strip()
    return repr(text if len(text) <= width else text[:width] + "...")


def _blocks(f):
    """Whole lines, about _BLOCK bytes at a time."""
    while block := f.read(_BLOCK):
        if not block.endswith(b"\n"):
            block += f.readline()
        yield block


class _Pairs(list):
    """A JSON object's (key, value) pairs, in order and with duplicates (json's object_pairs_hook)."""


def _first_fields(line: bytes) -> tuple[tuple[str, ...], list[bytes]] | None:
    """Keys and CSV fields of a line that is a flat JSON object of numbers with distinct keys, else None."""
    try:
        pairs = json.loads(line, object_pairs_hook=_Pairs)
    except (ValueError, RecursionError):
        return None
    if (type(pairs) is not _Pairs or not pairs or len({k for k, _ in pairs}) != len(pairs)
            or not all(type(v) in (int, float) for _, v in pairs)):
        return None
    fields = line.rstrip(b"\r").translate(_TO_COMMAS).split(b",")
    if len(fields) != 2 * len(pairs) + 2 or any(b'"' not in fields[i] or b"\\" in fields[i]
                                                  for i in range(1, len(fields) - 1, 2)):
        return None  # separators or escapes inside keys: the careful path reads those
    return tuple(k for k, _ in pairs), fields


def _arrow_table(data: bytes, fields: list[bytes], lines: int) -> list[np.ndarray] | None:
    """One column of values per key if every line of ``data`` has ``fields`` with numbers in the value fields."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pa_csv

    n = (len(fields) - 2) // 2
    values = [f"f{2 * j + 2}" for j in range(n)]
    fixed = {f"f{i}": fields[i] for i in (0, *range(1, 2 * n + 1, 2), 2 * n + 1)}
    types = {**{name: pa.float64() for name in values}, **{name: pa.binary() for name in fixed}}
    try:
        table = pa_csv.read_csv(
            io.BytesIO(data.translate(_TO_COMMAS)),
            read_options=pa_csv.ReadOptions(use_threads=False, autogenerate_column_names=True, block_size=_BLOCK << 1),
            parse_options=pa_csv.ParseOptions(quote_char=False),
            convert_options=pa_csv.ConvertOptions(include_columns=[*values, *fixed], column_types=types,
                                                  null_values=[], strings_can_be_null=False))
    except pa.ArrowException:  # fields that do not line up, values that are not numbers: the careful path
        return None
    if table.num_rows != lines:
        return None
    for name, expected in fixed.items():
        if not pc.all(pc.equal(table.column(name), pa.scalar(expected, pa.binary()))).as_py():
            return None
    return [table.column(name).to_numpy() for name in values] if n else None


def _parse_block(block: bytes, count: int, first_line: int, parts: list, careful: list[tuple[int, bytes]]) -> None:
    """Tables of ``block`` (``count`` lines) into ``parts`` (keys, line numbers, columns); other lines into ``careful``."""
    head = _first_fields(block[:block.find(b"\n")] if b"\n" in block else block)
    if head is not None and count >= MIN_TABLE_LINES:
        table = _arrow_table(block, head[1], count)
        if table is not None:
            parts.append((head[0], first_line + np.arange(count), dict(zip(head[0], table))))
            return
    lines = block.split(b"\n")
    if block.endswith(b"\n"):
        lines.pop()
    skeletons = block.translate(None, _NUMBER_CHARS).split(b"\n")[:len(lines)]
    ids: dict[bytes, int] = {}
    group_of = np.array([ids.setdefault(skeleton, len(ids)) for skeleton in skeletons], dtype=np.int64)
    order = np.argsort(group_of, kind="stable")
    for index in np.split(order, np.flatnonzero(np.diff(group_of[order])) + 1):
        head = _first_fields(lines[index[0]]) if len(index) >= MIN_TABLE_LINES else None
        table = None
        if head is not None:
            table = _arrow_table(b"\n".join([lines[i] for i in index]) + b"\n", head[1], len(index))
        if table is None:
            careful.extend((first_line + i, lines[i]) for i in index.tolist())
        else:
            parts.append((head[0], first_line + index, dict(zip(head[0], table))))


def _parse_careful(careful: list[tuple[int, bytes]], slow: dict[tuple, list[tuple]], bad: list) -> None:
    """json per line; rows (line number, *values) go to ``slow`` under their key tuple."""
    for number, raw in careful:
        line = raw.decode("utf-8", errors="replace")
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as error:
            bad.append((number, f"not valid JSON ({error.args[0].split(':')[0]})", line))
            continue
        except RecursionError:
            bad.append((number, "JSON nested too deeply", line))
            continue
        if type(obj) is not dict:
            bad.append((number, f"a JSON {type(obj).__name__}, not an object", line))
            continue
        slow.setdefault(tuple(obj), []).append((number, *obj.values()))


def read_jsonl(path: Path) -> tuple[dict[str, Series], list[str], dict]:
    """Parse ``path`` into one Series per key (steps repaired, see :mod:`steps`), warnings, meta."""
    head = read_head(path, 8192)
    if not head:
        raise DreamscopeError(f"{path}:1: the file is empty; expected {EXPECTED}")
    check_text(path, head, EXPECTED)

    parts: list[tuple[tuple, np.ndarray, dict[str, np.ndarray]]] = []
    slow: dict[tuple, list[tuple]] = {}
    bad: list[tuple[int, str, str]] = []
    warnings: list[str] = []
    first_line = 1
    last_has_newline = True
    with open_log(path) as f:
        try:
            for block in _blocks(f):
                careful: list[tuple[int, bytes]] = []
                newlines = block.count(b"\n")
                last_has_newline = block.endswith(b"\n")
                _parse_block(block, newlines + (not last_has_newline), first_line, parts, careful)
                _parse_careful(careful, slow, bad)
                first_line += newlines
        except GZIP_ERRORS as error:
            raise DreamscopeError(f"{path}:{first_line}: the gzip stream breaks off or is corrupt after line "
                                  f"{first_line - 1} ({error}); expected a complete gzip file") from None
    last_line = first_line - 1 if last_has_newline else first_line
    for keys, rows in slow.items():
        parts.append((keys, *_to_floats(path, keys, rows, warnings)))

    kept_parts = []
    for keys, lines, values in parts:
        step_key = next((k for k in STEP_KEYS if k in keys), None)
        if step_key is None:
            bad.extend((int(n), 'no "step" key', "") for n in lines)
            continue
        steps = values.pop(step_key, None)
        if steps is None:  # a step that holds text: _to_floats left it out
            bad.extend((int(n), "step is not a number", "") for n in lines)
            continue
        good = np.isfinite(steps) & (steps == np.round(steps)) & (np.abs(steps) < 2.0**62)
        if not good.all():
            bad.extend((int(n), "step is not an integer", "") for n in lines[~good])
            lines, steps = lines[good], steps[good]
            values = {k: v[good] for k, v in values.items()}
        if len(lines):
            kept_parts.append((lines, steps.astype(np.int64), values))

    bad.sort()
    if not kept_parts:
        if bad:
            number, reason, line = bad[0]
            raise DreamscopeError(f"{path}:{number}: {reason}: {_snippet(line)}; expected {EXPECTED}")
        raise DreamscopeError(f"{path}:1: only blank lines; expected {EXPECTED}")
    warnings[:0] = _bad_line_warnings(path, bad, last_line, last_has_newline)

    # Records in file order, and where each part's records sit in it.
    all_lines = np.concatenate([part[0] for part in kept_parts])
    order = np.argsort(all_lines, kind="stable")
    file_lines = all_lines[order]
    raw_steps = np.concatenate([part[1] for part in kept_parts])[order]
    position = np.empty(len(order), dtype=np.int64)
    position[order] = np.arange(len(order))
    fixed, keep, step_warnings, events = repair_steps(raw_steps, lambda i: f"{path}:{file_lines[i]}")
    warnings.extend(step_warnings)

    columns: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    offset = 0
    for lines, _, values in kept_parts:
        where = position[offset:offset + len(lines)]
        offset += len(lines)
        for key, column in values.items():
            columns.setdefault(key, []).append((where, column))
    series: dict[str, Series] = {}
    for key, pieces in columns.items():
        pos = np.concatenate([p[0] for p in pieces])
        col_values = np.concatenate([p[1] for p in pieces])
        if not keep[pos].all():
            kept = keep[pos]
            pos, col_values = pos[kept], col_values[kept]
        col_steps = fixed[pos]
        if not (np.all(np.diff(pos) > 0) and np.all(np.diff(col_steps) >= 0)):
            by = np.lexsort((pos, col_steps))
            pos, col_steps, col_values = pos[by], col_steps[by], col_values[by]
        series[key] = Series(col_steps, col_values)
    meta = {"lines": last_line, "records": int(len(file_lines))}
    if events:
        meta["step_events"] = events
    _warn_infinite(path, series, warnings)
    return series, warnings, meta


def _to_floats(path, keys: tuple, rows: list[tuple], warnings: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Rows (line number, *values) of one key tuple → line numbers and one float array per key.

    null becomes NaN; a key whose values are text (r2dreamer logs its config as a string) is
    left out with a note; odd values among numbers become NaN with a warning.
    """
    lines = np.array([row[0] for row in rows], dtype=np.int64)
    try:
        table = np.array(rows, dtype=np.float64)
        if table.shape == (len(rows), len(keys) + 1):
            return lines, {k: table[:, j + 1] for j, k in enumerate(keys)}
    except (ValueError, TypeError, OverflowError):
        pass
    out = {}
    for j, key in enumerate(keys, 1):
        cells = [row[j] for row in rows]
        try:
            column = np.array(cells, dtype=np.float64)
            if column.shape == (len(rows),):
                out[key] = column
                continue
        except (ValueError, TypeError, OverflowError):
            pass
        numeric = np.array([type(c) in (int, float, bool) or c is None for c in cells])
        first = int(lines[np.argmin(numeric)])
        if not numeric.any():
            warnings.append(f"{path}:{first}: '{key}' holds {type(cells[0]).__name__} values, not numbers; left out")
            continue
        warnings.append(f"{path}:{first}: '{key}' has {int((~numeric).sum())} non-numeric value(s); read as NaN")
        out[key] = np.array([_as_float(c) if n else np.nan for c, n in zip(cells, numeric)])
    return lines, out


def _as_float(value) -> float:
    """A JSON number (or null) as a float: null is NaN, an integer beyond float range is +-inf, as 1e999 is."""
    if value is None:
        return math.nan
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def _bad_line_warnings(path, bad, last_line: int, last_has_newline: bool) -> list[str]:
    out = []
    for number, reason, line in bad[:_SHOWN_BAD_LINES]:
        if number == last_line and not last_has_newline:
            out.append(f"{path}:{number}: truncated last line (no newline at the end: the writer was probably "
                       f"stopped mid-write); skipped, the lines before it were read")
        else:
            out.append(f"{path}:{number}: {reason}; line skipped: {_snippet(line)}" if line else
                       f"{path}:{number}: {reason}; line skipped")
    if len(bad) > _SHOWN_BAD_LINES:
        rest = [str(b[0]) for b in bad[_SHOWN_BAD_LINES:]]
        listed = ", ".join(rest[:20]) + (" ..." if len(rest) > 20 else "")
        out.append(f"{path}: {len(rest)} more bad line(s) skipped: {listed}")
    return out


def _warn_infinite(path, series: dict[str, Series], warnings: list[str]) -> None:
    """NaN and null are ordinary in these logs; +-Infinity usually means divergence, so say where."""
    hits = {k: int(np.isinf(s.values).sum()) for k, s in series.items()}
    hits = {k: n for k, n in hits.items() if n}
    if hits:
        listed = ", ".join(f"{k} ({n})" for k, n in list(hits.items())[:10])
        warnings.append(f"{path}: infinite values kept as +-inf in: {listed}")
