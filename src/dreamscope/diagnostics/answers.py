"""The two halves of the question, as closed code sets shared by the doctor and the probe.

"Is the stuck entropy a symptom or a cause?" asks two things: what holds the entropy where it
is, and what keeps the policy from learning. A run can answer "the bonus" to the first and
"nothing: it learns" (or "a missing signal") to the second; one word for both reads as a
contradiction. Both the doctor's verdict and the probe's conclusion are given in these codes.
"""

from __future__ import annotations

#: What holds the entropy where it is.
ENTROPY_HELD_BY: dict[str, str] = {
    "bonus": "the entropy bonus holds σ up (at or towards its ceiling)",
    "policy_gradient": "the policy gradient sets σ (the bonus does not hold it)",
    "floor": "σ sits on its lower bound",
    "nothing_wrong": "the entropy is where a learning policy's is",
    "unknown": "the logs do not say",
}

#: What keeps the policy from learning.
LEARNING_BLOCKED_BY: dict[str, str] = {
    "entropy": "the entropy: σ at a bound keeps the policy from using its learning signal",
    "no_signal": "a missing learning signal: nothing reaches the policy to learn from",
    "nothing": "nothing shows: the policy learns, or has not yet had the time to",
    "unknown": "the logs do not say",
}

#: The probe's own codes, read in the shared ones.
PROBE_CONCLUSION_BLOCKED_BY = {"cause": "entropy", "symptom": "no_signal", "undecided": "unknown"}
PROBE_HOLDER_HELD_BY = {"bonus": "bonus", "not bonus": "policy_gradient", "not high": "policy_gradient",
                        "pinned": "unknown", "unknown": "unknown"}


def describe(held_by: str, blocked_by: str) -> tuple[str, str]:
    """The two halves in words, for the terminal and the report."""
    return ENTROPY_HELD_BY[held_by], LEARNING_BLOCKED_BY[blocked_by]
