"""Streaming reader for ``metrics.jsonl`` files: one JSON object with a ``step`` per line.

The file is read in blocks of whole lines (~4 MB). Most blocks hold nothing but flat objects
of numbers that start with ``"step"`` — what every Dreamer writer produces — and those are
parsed without any Python work per line: the block is cut into tokens at ``{},:`` and blanks,
keys and values alternate, ``"step"`` keys mark where records begin, records with the same
number of keys must carry the same keys in the same order, and numpy converts all values at
once. If any of these checks fails, the block goes through the careful path instead: the json
scanner per line, where a blank, truncated or corrupt line costs a warning naming its line and
nothing else. Both paths file records by their key tuple; each tuple becomes 2-D arrays.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from dreamscope.errors import DreamscopeError
from dreamscope.logs.schema import Series
from dreamscope.logs.steps import repair_steps

EXPECTED = 'one JSON object per line with an integer "step", e.g. {"step": 1000, "policy/entropy": 1.2}'
_SHOWN_BAD_LINES = 5
_BLOCK = 1 << 22
_SEPARATORS = bytes.maketrans(b"{},:", b"    ")


def _snippet(text: str, width: int = 60) -> str:
    text = text.strip()
    return repr(text if len(text) <= width else text[:width] + "...")


_CONTROL = bytes(c for c in range(32) if c not in b"\t\n\r\f\v")


def check_text(path: Path, head: bytes, expected: str = EXPECTED) -> None:
    """Refuse binary files (a NUL, or control characters that text logs never hold) up front."""
    controls = len(head) - len(head.translate(None, _CONTROL))
    if b"\x00" in head or controls > 0.01 * len(head):
        first = next(i for i, c in enumerate(head) if c in _CONTROL)
        line = head[:first].count(b"\n") + 1
        raise DreamscopeError(f"{path}:{line}: binary data (byte {first} is {head[first]:#04x}), not text; "
                              f"expected {expected}")


def _blocks(f):
    """Whole lines, about _BLOCK bytes at a time."""
    while block := f.read(_BLOCK):
        if not block.endswith(b"\n"):
            block += f.readline()
        yield block


def _parse_block_fast(block: bytes, lines: int) -> list[tuple[tuple, np.ndarray, np.ndarray]] | None:
    """(keys, record index in block, values[records, keys]) per key tuple, or None to go the careful way."""
    if (not block.endswith(b"\n") or not block.isascii() or not block.startswith(b'{"step":')
            or block.count(b'\n{"step":') != lines - 1):
        return None
    tokens = block.translate(_SEPARATORS).split()
    if len(tokens) % 2:
        return None
    keys = np.array(tokens[0::2], dtype=object)
    try:
        values = np.array(tokens[1::2], dtype=np.float64)
    except ValueError:  # null, true, text, nested values: the careful path reads those
        return None
    starts = np.flatnonzero(keys == b'"step"')
    if len(starts) != lines:
        return None
    counts = np.diff(np.append(starts, len(keys)))
    out = []
    for count in np.unique(counts):
        records = np.flatnonzero(counts == count)
        index = starts[records, None] + np.arange(count)
        names = keys[index]
        if not (names == names[0]).all():
            return None
        try:
            decoded = tuple(json.loads(name) for name in names[0].tolist())
        except ValueError:
            return None
        if not all(type(k) is str for k in decoded) or len(set(decoded)) != count:
            return None
        out.append((decoded, records, values[index]))
    return out


def _parse_block_careful(text: str, first_line: int, slow: dict[tuple, list[tuple]], bad: list) -> None:
    """json per line; rows (line number, *values) go to ``slow`` under their key tuple."""
    scan = json.JSONDecoder().scan_once
    for number, line in enumerate(text.split("\n"), first_line):
        try:
            obj, end = scan(line, 0)
            if line[end:].strip():
                raise ValueError("text after the object")
            slow[tuple(obj)].append((number, *obj.values()))
            continue
        except (StopIteration, ValueError, KeyError, TypeError, AttributeError):
            pass
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as error:
            bad.append((number, f"not valid JSON ({error.args[0].split(':')[0]})", line))
            continue
        if type(obj) is not dict:
            bad.append((number, f"a JSON {type(obj).__name__}, not an object", line))
            continue
        slow.setdefault(tuple(obj), []).append((number, *obj.values()))


def read_jsonl(path: Path) -> tuple[dict[str, Series], list[str], dict]:
    """Parse ``path`` into one Series per key (steps repaired, see :mod:`steps`), warnings, meta."""
    with open(path, "rb") as f:
        head = f.read(8192)
    if not head:
        raise DreamscopeError(f"{path}:1: the file is empty; expected {EXPECTED}")
    check_text(path, head)

    parts: list[tuple[tuple, np.ndarray, dict[str, np.ndarray]]] = []
    slow: dict[tuple, list[tuple]] = {}
    bad: list[tuple[int, str, str]] = []
    warnings: list[str] = []
    first_line = 1
    with open(path, "rb") as f:
        for block in _blocks(f):
            count = block.count(b"\n")
            fast = _parse_block_fast(block, count)
            if fast is None:
                text = block.decode("utf-8", errors="replace")
                _parse_block_careful(text[:-1] if text.endswith("\n") else text, first_line, slow, bad)
            else:
                for keys, records, table in fast:
                    parts.append((keys, first_line + records, dict(zip(keys, table.T))))
            first_line += count
            last_has_newline = block.endswith(b"\n")
    last_line = first_line - 1 if last_has_newline else first_line
    for keys, rows in slow.items():
        if "step" not in keys:
            bad.extend((row[0], 'no "step" key', "") for row in rows)
        else:
            parts.append((keys, *_to_floats(path, keys, rows, warnings)))

    kept_parts = []
    for _, lines, values in parts:
        steps = values.pop("step") if "step" in values else np.full(len(lines), np.nan)
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
        out[key] = np.array([float(c) if n and c is not None else np.nan for c, n in zip(cells, numeric)])
    return lines, out


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
