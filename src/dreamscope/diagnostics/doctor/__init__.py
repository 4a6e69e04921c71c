"""The doctor: is a run's stuck entropy a symptom, a cause, expected, a collapse — or undecidable?

The doctor splits the run into step windows and, in each, runs a set of *checks* on
dimensionless evidence (normalised entropy, fractions at the std bounds, saturation, the
drift of log σ under each loss term, advantage vs return scale, reward-head hits, trend
tests, the actor's gradient, whether a reward ever came). Each check holds, fails, or cannot
be decided (``None``: its signals are missing); a verdict's rule fires on its required checks
and its confidence grows with the supporting ones. A missing signal never flips a rule
silently: it leaves its check undecided, which costs confidence and is listed with the reason.

Modules: ``window`` (one window's data and the check registry), ``checks`` and ``signal_checks``
(the evidence), ``verdicts`` (one record per verdict), ``messages`` (their words), ``findings``,
``scale`` (the entropy's floor and ceiling), ``engine`` (windows in, diagnosis out). Thresholds
live in :mod:`dreamscope.diagnostics.thresholds`.
"""

from dreamscope.diagnostics.doctor.engine import WANTED, Diagnosis, WindowVerdict, diagnose
from dreamscope.diagnostics.doctor.evidence import Evidence, Finding, Fix
from dreamscope.diagnostics.doctor.messages import BLIND_MODEL_FIX, DEAD_GRADIENT_FIX, NO_REWARD_FIX, OVERPROMISE_FIX
from dreamscope.diagnostics.doctor.scale import DISTS, GAUSSIAN_DISTS, EntropyScale, entropy_scale, task_rewards
from dreamscope.diagnostics.doctor.verdicts import RULES, VERDICTS, Verdict, two_answers
from dreamscope.diagnostics.doctor.window import CHECKS, check_order
from dreamscope.stats import shift_test, trend_test

__all__ = ["BLIND_MODEL_FIX", "CHECKS", "DEAD_GRADIENT_FIX", "DISTS", "GAUSSIAN_DISTS", "NO_REWARD_FIX",
           "OVERPROMISE_FIX", "RULES", "VERDICTS", "WANTED", "Diagnosis", "EntropyScale", "Evidence", "Finding", "Fix",
           "Verdict", "WindowVerdict", "check_order", "diagnose", "entropy_scale", "shift_test", "task_rewards",
           "trend_test", "two_answers"]
