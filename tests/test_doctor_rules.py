"""The doctor's rules as data: every verdict record complete, every check a rule names exists, every signal a
check reads canonical, and the check registry runs dependencies first."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest

from dreamscope.diagnostics.answers import ENTROPY_HELD_BY, LEARNING_BLOCKED_BY
from dreamscope.diagnostics.doctor import CHECKS, RULES, VERDICTS, WANTED, check_order
from dreamscope.diagnostics.doctor import verdicts as verdict_module
from dreamscope.diagnostics.doctor.messages import BLIND_MODEL_FIX, DEAD_GRADIENT_FIX, NO_REWARD_FIX, OVERPROMISE_FIX
from dreamscope.metrics import is_canonical
from dreamscope.report.style import VERDICT_COLOURS

PRODUCED = {name for c in CHECKS.values() for name in c.produces}
PACKAGE = Path(verdict_module.__file__).parent


@pytest.mark.parametrize("code", sorted(VERDICTS))
def test_every_verdict_record_is_complete(code):
    v = VERDICTS[code]
    assert v.answer in ("cause", "symptom", "expected", "healthy", "undecided")
    assert re.fullmatch(r"#[0-9a-f]{6}", v.colour) and VERDICT_COLOURS[code] == v.colour
    assert v.headline and v.intervention and len(v.fixes) >= 1
    assert all(f.action and f.expected_effect for f in v.fixes)
    assert v.entropy_held_by in ENTROPY_HELD_BY and v.learning_blocked_by in LEARNING_BLOCKED_BY


def test_verdict_colours_and_priorities_are_distinct():
    assert len(set(VERDICT_COLOURS.values())) == len(VERDICTS)
    assert len({v.priority for v in VERDICTS.values()}) == len(VERDICTS)
    assert [v.priority for v in RULES] == sorted(v.priority for v in RULES)
    # the verdicts no rule reaches are exactly the fallbacks
    assert {c for c, v in VERDICTS.items() if v.fires is None} == {"UNDECIDED", "IMPOSSIBLE_ENTROPY"}


def test_every_check_a_rule_names_exists():
    for v in RULES:
        named = set(v.required) | {n for n, _ in v.support} | set(v.context)
        assert named <= PRODUCED, (v.code, named - PRODUCED)
    # ... including those the fire functions look up by name
    source = inspect.getsource(verdict_module)
    looked_up = set(re.findall(r'_h\((?:c|checks), "(\w+)"\)', source)) | set(re.findall(r'c\["(\w+)"\]', source))
    looked_up |= {n for group in re.findall(r'for n in \(([^)]*)\)', source) for n in re.findall(r'"(\w+)"', group)}
    assert looked_up and looked_up <= PRODUCED, looked_up - PRODUCED


def test_every_signal_a_check_reads_is_canonical_and_documented():
    for c in CHECKS.values():
        assert c.reads, c.name
        for signal in c.reads:
            assert is_canonical(signal), (c.name, signal)
            assert signal in WANTED, (c.name, signal)
    assert all(is_canonical(s) for s in WANTED)


def test_checks_run_after_what_they_depend_on():
    order = [c.name for c in check_order()]
    assert sorted(order) == sorted(CHECKS)
    position = {name: order.index(c.name) for c in CHECKS.values() for name in c.produces}
    for c in CHECKS.values():
        for dep in c.depends:
            assert position[dep] < order.index(c.name), (c.name, dep)
    # produced names are unique to one check
    assert sum(len(c.produces) for c in CHECKS.values()) == len(PRODUCED)


def test_fix_texts_carry_no_numbers_from_a_run():
    fixes = [f for v in VERDICTS.values() for f in v.fixes]
    fixes += [BLIND_MODEL_FIX, DEAD_GRADIENT_FIX, NO_REWARD_FIX, OVERPROMISE_FIX]
    for f in fixes:
        text = f"{f.action} {f.expected_effect}"
        assert not re.search(r"\d+\.\d+|\d+ ?%|\d+e-\d+", text), text


def test_doctor_modules_stay_small_and_import_downwards():
    for path in [*PACKAGE.glob("*.py"), PACKAGE.parent / "thresholds.py", PACKAGE.parent / "answers.py",
                 PACKAGE.parents[1] / "stats.py"]:
        text = path.read_text(encoding="utf-8")
        assert text.count("\n") < 500, path.name
        assert not re.search(r"^\s*(from|import) dreamscope\.report", text, re.M), path.name  # no upward import
    stats = (PACKAGE.parents[1] / "stats.py").read_text(encoding="utf-8")
    assert "from dreamscope" not in stats  # core
