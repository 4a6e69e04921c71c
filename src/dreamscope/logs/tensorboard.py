"""TensorBoard event files (sheeprl, dreamerv3-torch, r2dreamer, official, ours): scalars only.

Scalars come in two encodings: ``simple_value`` (torch's SummaryWriter, sheeprl) and, from
TF2's ``tf.summary.scalar`` (the official code), a 0-d tensor tagged with the ``scalars``
plugin; both are read. EventAccumulator already treats a restart inside a run the TensorBoard
way (orphaned events after a restart are purged). dreamerv3-torch and r2dreamer prefix tags
without a slash with ``scalars/``; that prefix is dropped so their tags match their jsonl keys.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from dreamscope.errors import DreamscopeError
from dreamscope.logs.schema import Series

EVENT_GLOB = "events.out.tfevents*"
EXPECTED = "a TensorBoard event file (events.out.tfevents.*) or a folder holding them, with scalar summaries"


def event_dirs(path: Path) -> list[Path]:
    """Folders holding event files at or below ``path``, nearest first."""
    if path.is_file():
        return [path]
    if any(path.glob(EVENT_GLOB)):
        return [path]
    return sorted({p.parent for p in path.rglob(EVENT_GLOB)})


def read_tensorboard(path: Path) -> tuple[dict[str, Series], list[str], dict]:
    from tensorboard.backend.event_processing import event_accumulator
    from tensorboard.util import tensor_util

    dirs = event_dirs(path)
    if not dirs:
        raise DreamscopeError(f"{path}: no event files found; expected {EXPECTED}")
    if len(dirs) > 1:
        listed = ", ".join(str(d) for d in dirs[:10])
        raise DreamscopeError(f"{path}: holds {len(dirs)} TensorBoard runs ({listed}); pass one of them")
    guidance = {event_accumulator.SCALARS: 0, event_accumulator.TENSORS: 0}
    accumulator = event_accumulator.EventAccumulator(str(dirs[0]), size_guidance=guidance)
    try:
        accumulator.Reload()
    except Exception as error:  # the proto reader raises several unrelated types on garbage
        raise DreamscopeError(f"{dirs[0]}: cannot read the event file(s) ({error}); expected {EXPECTED}") from error
    tags = accumulator.Tags()
    columns: dict[str, tuple[list[int], list[float]]] = {}
    for tag in tags.get("scalars", []):
        events = accumulator.Scalars(tag)
        columns[tag] = ([e.step for e in events], [e.value for e in events])
    for tag in tags.get("tensors", []):
        if accumulator.SummaryMetadata(tag).plugin_data.plugin_name != "scalars":
            continue
        events = accumulator.Tensors(tag)
        values = [tensor_util.make_ndarray(e.tensor_proto) for e in events]
        if all(np.ndim(v) == 0 for v in values):
            columns[tag] = ([e.step for e in events], [float(v) for v in values])
    if not columns:
        kinds = [k for k, v in tags.items() if v and k not in ("scalars", "tensors")]
        found = f" (it holds {', '.join(kinds)})" if kinds else ""
        raise DreamscopeError(f"{dirs[0]}: no scalar summaries{found}; expected {EXPECTED}")
    series = {}
    for tag, (steps, values) in columns.items():
        key = tag[len("scalars/"):] if tag.startswith("scalars/") else tag
        steps_ = np.asarray(steps, dtype=np.int64)
        order = np.argsort(steps_, kind="stable")
        series[key] = Series(steps_[order], np.asarray(values, dtype=np.float64)[order])
    files = sorted(p.name for p in dirs[0].glob(EVENT_GLOB)) if dirs[0].is_dir() else [dirs[0].name]
    return series, [], {"event_files": files}
