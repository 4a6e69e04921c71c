"""Make a log's step axis monotone when the counter goes backwards, saying where and why.

A step counter that drops means one of three things, and each needs a different repair:

* **restart** — a new run was appended to the same file and counts again from (near) zero.
  The later segment is shifted by the last step before the drop, so both runs stay on one
  increasing axis in the order they were trained (the brief's choice: nothing is discarded,
  and the doctor's trend windows never see time run backwards).
* **resume** — the run was restarted from a checkpoint and re-logs a stretch it had already
  logged (e.g. 371104 → 359509). The earlier segment's points after the checkpoint step
  belong to a timeline that was thrown away, so the resumed run supersedes them; shifting
  would invent ~12K steps of training that never happened. TensorBoard treats resumes the
  same way (``purge_step``).
* **stray line** — a single line whose step is below its neighbours while the next line
  returns to the old count (a second writer that logged with a stale counter). Its step is
  kept as logged; sorting puts it in place.

A drop to at most :data:`RESTART_FRACTION` of the step before it counts as a restart, any
smaller drop as a resume: fresh runs start near zero, while checkpoints are written every
few minutes, so a resume loses a small fraction of the steps done so far.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

#: A drop to <= this fraction of the previous step is a restart; a smaller drop is a resume.
RESTART_FRACTION = 0.1


def repair_steps(
    steps: np.ndarray, where: Callable[[int], str]
) -> tuple[np.ndarray, np.ndarray, list[str], list[dict]]:
    """Classify every drop of ``steps`` (in write order) and repair it.

    ``where(i)`` names record ``i`` for messages (``file:line``). Returns the repaired steps,
    a keep-mask (False for points a resume superseded), warnings, and one event dict per drop
    for ``Run.meta["step_events"]``.
    """
    steps = np.asarray(steps, dtype=np.int64)
    n = len(steps)
    keep = np.ones(n, dtype=bool)
    drops = np.flatnonzero(steps[1:] < steps[:-1]) + 1
    if len(drops) == 0:
        return steps, keep, [], []
    bump = np.zeros(n, dtype=np.int64)
    warnings: list[str] = []
    events: list[dict] = []
    restarts: list[tuple[int, dict]] = []
    resumes: list[tuple[int, dict]] = []
    for i in drops:
        before, after = int(steps[i - 1]), int(steps[i])
        event = {"at": where(i), "from": before, "to": after}
        if i + 1 < n and steps[i + 1] >= before:
            event["kind"] = "stray"
            warnings.append(
                f"{event['at']}: step {after} is below the previous line's {before} and the next line "
                f"returns to {int(steps[i + 1])}: a stray line; kept at its logged step"
            )
        elif after <= RESTART_FRACTION * before:
            event["kind"] = "restart"
            bump[i] = before
            restarts.append((i, event))
        else:
            event["kind"] = "resume"
            resumes.append((i, event))
        events.append(event)
    shifted = steps + np.cumsum(bump)
    for i, event in restarts:
        event["shift"] = int(shifted[i] - steps[i])
        warnings.append(
            f"{event['at']}: step counter restarts ({event['from']} -> {event['to']}): a new run was "
            f"appended; its steps are shifted by +{event['shift']} so that the series stay monotone"
        )
    for i, event in resumes:
        superseded = keep[:i] & (shifted[:i] > shifted[i])
        keep[:i] &= ~superseded
        event["superseded"] = int(superseded.sum())
        warnings.append(
            f"{event['at']}: step counter goes back ({event['from']} -> {event['to']}): the run resumed "
            f"from a checkpoint; {event['superseded']} earlier record(s) logged after step "
            f"{event['to']} belong to the abandoned stretch and are dropped"
        )
    return shifted, keep, warnings, events
