"""The one in-memory shape of a run, whatever implementation wrote its logs.

Readers fill a :class:`Run`; the doctor and the report only ever see canonical names
(see :mod:`dreamscope.metrics`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dreamscope.metrics import CANONICAL_METRICS


@dataclass
class Series:
    """One metric over training: steps (int64, non-decreasing after reading) and values (float64, NaN allowed)."""

    steps: np.ndarray
    values: np.ndarray

    def __post_init__(self) -> None:
        self.steps = np.asarray(self.steps, dtype=np.int64)
        self.values = np.asarray(self.values, dtype=np.float64)
        if self.steps.shape != self.values.shape or self.steps.ndim != 1:
            raise ValueError(f"steps {self.steps.shape} and values {self.values.shape} must be equal 1-D shapes")

    def __len__(self) -> int:
        return len(self.steps)

    def window(self, start: int, stop: int) -> "Series":
        """Points with start <= step < stop."""
        keep = (self.steps >= start) & (self.steps < stop)
        return Series(self.steps[keep], self.values[keep])


@dataclass
class Run:
    """A run's metrics under canonical names, with where they came from.

    ``meta`` carries what the reader could learn about the set-up: ``action_dim``, ``dist``
    (``bounded_normal``, ``tanh_normal``, ``discrete``), ``eta``, std bounds, ``task`` (the
    environment's name) and ``rewards`` (``sparse``: only reaching a goal pays; ``dense``: every
    step does), which tell the doctor what a reward event is. ``sources``
    maps each canonical name to the foreign key it was read from.
    """

    path: str
    format: str
    series: dict[str, Series] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def get(self, name: str) -> Series | None:
        return self.series.get(name)

    def missing(self, wanted: list[str] | None = None) -> list[str]:
        """Canonical names (or the ``wanted`` subset) this run has no data for."""
        names = wanted if wanted is not None else list(CANONICAL_METRICS)
        return [n for n in names if n not in self.series or len(self.series[n]) == 0]
