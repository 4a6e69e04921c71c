"""The doctor's records: a fix, one check's evidence, a finding — and how numbers are printed in them."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass(frozen=True)
class Fix:
    action: str
    expected_effect: str


@dataclass
class Evidence:
    """One check: which signal, its numbers, the step window it used, and what it implies.

    ``holds`` is None when the check could not be decided; ``implies`` then says why.
    """

    check: str
    signal: str
    holds: bool | None
    numbers: dict[str, float]
    window: tuple[int, int]
    implies: str
    decisive: bool = True  # False: holds, but within the noise of its own estimate

    def __post_init__(self) -> None:
        # numpy comparisons give np.bool_, which `is True` would not recognise.
        self.holds = None if self.holds is None else bool(self.holds)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["window"] = list(self.window)
        out["numbers"] = {k: jsonable(v) for k, v in self.numbers.items()}
        return out


def jsonable(v):
    if isinstance(v, (float, np.floating)):
        return float(v) if math.isfinite(v) else None
    if isinstance(v, np.integer):
        return int(v)
    return v


@dataclass
class Finding:
    """Something true about the run that travels with whatever verdict is reached."""

    code: str
    message: str
    numbers: dict[str, float]
    window: tuple[int, int]
    detail: dict = field(default_factory=dict)  # "explanation": longer text; anything else: machine-readable

    def to_dict(self) -> dict:
        return {"code": self.code, "message": self.message, "window": list(self.window),
                "numbers": {k: jsonable(v) for k, v in self.numbers.items()}, "detail": self.detail}


def fmt(x: float) -> str:
    return f"{x:.3g}"
