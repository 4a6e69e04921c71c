"""Option parsing and progress feedback shared by the sub-commands.

One place for the messages, so that every command words a bad number the same way: the option,
the value given, and what would be accepted.
"""

from __future__ import annotations

import math

from dreamscope.errors import DreamscopeError


def int_option(option: str, text: str | None, minimum: int = 1) -> int:
    """``text`` as an integer of at least ``minimum``, or an error naming ``option``."""
    try:
        value = int(text)
    except (TypeError, ValueError):
        value = None
    if value is None or value < minimum:
        raise DreamscopeError(f"{option} {text!r}: expected an integer ≥ {minimum}")
    return value


def positive_float_option(option: str, text: str | None) -> float:
    """``text`` as a finite number above zero, or an error naming ``option``."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise DreamscopeError(f"{option} {text!r}: expected a positive number, e.g. 3e-4")
    return value


def progress_bar(enabled: bool, label: str):
    """A transient rich bar on stderr (so ``--json`` on stdout stays clean), or None when disabled.

    Tasks carry a ``what`` field for the item in hand.
    """
    if not enabled:
        return None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    return Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                    TextColumn("{task.fields[what]}"), console=Console(stderr=True), transient=True)
