"""Terminal pieces shared by the commands' outputs (rich renderables, no printing here)."""

from __future__ import annotations


def two_answer_lines(held_by: str, blocked_by: str) -> list:
    """The two halves of the answer (``entropy_held_by``, ``learning_blocked_by`` codes) as two
    terminal lines: the doctor's and the probe's output say them the same way."""
    from rich.text import Text

    from dreamscope.diagnostics.answers import describe

    held, blocked = describe(held_by, blocked_by)
    return [Text.assemble(("entropy held by: ", "bold"), (held_by, "bold"), f" — {held}"),
            Text.assemble(("learning blocked by: ", "bold"), (blocked_by, "bold"), f" — {blocked}")]
