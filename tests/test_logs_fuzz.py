"""Nothing a log can hold crashes the readers or the doctor: mutated real logs end in a diagnosis or a clean error.

The mutation engine is benchmarks/fuzz_logs.py (which runs 10^5 cases); here a fixed-seed
sample of it runs in the suite. Seeds are the fixtures, plus windows of ../shared/realruns when
it sits beside the clone (that part is skipped cleanly where it does not).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location("fuzz_logs", Path(__file__).parents[1] / "benchmarks" / "fuzz_logs.py")
fuzz_logs = sys.modules.setdefault("fuzz_logs", importlib.util.module_from_spec(_SPEC))
_SPEC.loader.exec_module(fuzz_logs)


def _report(crashes) -> str:
    return "\n\n".join(f"case {n}: {'; '.join(case.description)}\n{data[:300]!r}\n{trace}"
                       for n, case, data, trace in crashes[:3])


def test_fixture_seeds_are_there():
    seeds = fuzz_logs.load_seeds(include_realruns=False)
    assert {s.kind for s in seeds} == {"jsonl", "csv"} and len(seeds) >= 10


def test_mutated_fixtures_end_in_a_diagnosis_or_a_clean_error():
    crashes = list(fuzz_logs.fuzz(1500, seed=0, include_realruns=False))
    assert not crashes, _report(crashes)


def test_mutated_real_logs_end_in_a_diagnosis_or_a_clean_error():
    if not fuzz_logs.REALRUNS.is_dir():
        pytest.skip(f"real logs not found at {fuzz_logs.REALRUNS} (shared/ must sit beside the clone)")
    seeds = [s for s in fuzz_logs.load_seeds() if s.name.startswith("realruns/")]
    assert seeds
    crashes = list(fuzz_logs.fuzz(500, seed=1, seeds=seeds))
    assert not crashes, _report(crashes)


def test_a_crash_is_reported_with_its_input(monkeypatch):
    """The harness itself: an exception that is not a DreamscopeError counts, with input and traceback."""
    from dreamscope.logs import jsonl

    def broken(*args, **kwargs):
        raise KeyError("planted")

    monkeypatch.setattr(jsonl, "_parse_careful", broken)
    crashes = list(fuzz_logs.fuzz(5, seed=3, include_realruns=False))
    assert any("KeyError: 'planted'" in trace for *_, trace in crashes)
    assert all(isinstance(data, bytes) for _, _, data, _ in crashes)
