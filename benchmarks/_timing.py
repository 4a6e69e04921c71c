"""The line protocol of a timing worker: set up once, then time updates on request.

A worker prints one JSON line ``{"ready": true, ...facts}`` once it has warmed up, then for each
line ``N`` it reads on stdin runs N updates and prints ``{"wall": [...], "cpu": [...]}`` (seconds
per update); it exits at end of input. The parent interleaves several such workers round by
round, so that a load change on a shared machine hits all of them alike.

Only the standard library: the official DreamerV3's venv imports this too.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Callable, TextIO


def protocol_stream() -> TextIO:
    """The worker's stdout for protocol lines only; whatever else prints (the official agent prints
    its banner and cost analysis) goes to stderr from now on."""
    protocol = os.fdopen(os.dup(1), "w")
    sys.stdout.flush()
    os.dup2(2, 1)
    return protocol


def serve(update: Callable[[], None], facts: dict, out: TextIO) -> None:
    """Announce ``facts`` on ``out`` and answer timing requests on stdin with ``update``'s wall and CPU seconds."""
    print(json.dumps({"ready": True, **facts}), file=out, flush=True)
    for line in sys.stdin:
        wall, cpu = [], []
        for _ in range(int(line)):
            t0, c0 = time.perf_counter(), time.process_time()
            update()
            wall.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        print(json.dumps({"wall": wall, "cpu": cpu}), file=out, flush=True)


def xla_thread_flags(threads: int) -> str:
    """XLA_FLAGS for ``threads`` CPU threads: one thread turns Eigen's thread pool off; more keep it
    (it then uses the cores the process may run on, which the caller restricts)."""
    return "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" if threads == 1 else ""
