"""The one colour and style table of every rendering, derived from the verdict records.

Plots, HTML badges, the terminal and the sweep's tables all colour a verdict (and a probe's
conclusion, read as the verdict it stands for) from here, so they cannot disagree.
"""

from __future__ import annotations

from dreamscope.diagnostics.doctor.verdicts import VERDICTS

#: Hex colour per verdict code.
VERDICT_COLOURS: dict[str, str] = {code: v.colour for code, v in VERDICTS.items()}
#: A trial that errored (sweep): not a verdict.
ERROR_COLOUR = "#000000"
#: The verdict each probe conclusion stands for.
PROBE_CONCLUSION_VERDICT = {"cause": "BONUS_DOMINATES", "symptom": "NO_SIGNAL", "undecided": "UNDECIDED"}


def verdict_colour(code: str) -> str:
    return VERDICT_COLOURS.get(code, VERDICT_COLOURS["UNDECIDED"])


def verdict_style(code: str) -> str:
    """A rich style for a verdict code: bold in its colour."""
    return f"bold {verdict_colour(code)}"


def probe_colour(conclusion: str) -> str:
    return verdict_colour(PROBE_CONCLUSION_VERDICT.get(conclusion, "UNDECIDED"))


def answer_style(answer: str) -> str:
    """A rich style for an answer (cause, symptom, ...): the colour of the first verdict giving it."""
    code = next((v.code for v in sorted(VERDICTS.values(), key=lambda v: v.priority) if v.answer == answer), None)
    return verdict_style(code) if code else "bold"
