"""The two halves of the answer: what holds the entropy, what blocks learning — in the doctor's JSON, terminal
and report, and in the probe's conclusion, with one closed code set."""

from __future__ import annotations

import json

import pytest
from test_doctor import RISING_SCORE, _args, bonus_signals, build, collapse_signals, healthy_signals, no_signal_signals

from dreamscope.diagnostics import doctor_cli
from dreamscope.diagnostics.answers import (ENTROPY_HELD_BY, LEARNING_BLOCKED_BY, PROBE_CONCLUSION_BLOCKED_BY,
                                            PROBE_HOLDER_HELD_BY)
from dreamscope.diagnostics.doctor import VERDICTS, diagnose
from dreamscope.diagnostics.probe import ProbeResult, probe_html_section


@pytest.mark.parametrize("signals, verdict, held, blocked", [
    (bonus_signals(), "BONUS_DOMINATES", "bonus", "entropy"),
    ({**bonus_signals(), "episode/score": RISING_SCORE}, "PINNED_LEARNING", "bonus", "nothing"),
    ({**no_signal_signals(), "policy/std_at_upper_frac": 0.9}, "NO_SIGNAL", "bonus", "no_signal"),
    (collapse_signals(), "COLLAPSE", "floor", "entropy"),
    (healthy_signals(), "HEALTHY", "nothing_wrong", "nothing"),
])
def test_each_verdict_gives_both_halves(signals, verdict, held, blocked):
    dx = diagnose(build(signals))
    assert (dx.verdict, dx.entropy_held_by, dx.learning_blocked_by) == (verdict, held, blocked)
    out = dx.to_dict()
    assert (out["entropy_held_by"], out["learning_blocked_by"]) == (held, blocked)
    assert all(w["entropy_held_by"] in ENTROPY_HELD_BY for w in out["windows"])


def test_every_verdict_record_uses_the_closed_code_sets():
    for info in VERDICTS.values():
        assert info.entropy_held_by in ENTROPY_HELD_BY and info.learning_blocked_by in LEARNING_BLOCKED_BY, info.code


def test_json_keeps_its_keys_and_adds_the_two_answers(monkeypatch, capsys):
    monkeypatch.setattr(doctor_cli, "load_run", lambda path, fmt, mapping: build(bonus_signals()))
    assert doctor_cli.run(_args("run.jsonl", "--json")) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"verdict", "answer", "summary", "confidence", "evidence", "fixes", "windows"} <= set(out)
    assert (out["entropy_held_by"], out["learning_blocked_by"]) == ("bonus", "entropy")


def test_terminal_and_report_show_both_halves_at_the_top(tmp_path):
    from rich.console import Console

    from dreamscope.report.html import render_html

    run = build({**bonus_signals(), "episode/score": RISING_SCORE})
    dx = diagnose(run)
    console = Console(record=True, width=120, force_terminal=False)
    doctor_cli.render(dx, console=console)
    lines = console.export_text().splitlines()
    top = "\n".join(lines[:6])
    assert "entropy held by: bonus" in top and "learning blocked by: nothing" in top
    page = render_html(run, dx)
    head = page[:page.index("<h2>")]
    assert "<code>bonus</code>" in head and "<code>nothing</code>" in head


def probe_result(conclusion: str, holder: str) -> ProbeResult:
    settings = {"run_dir": "r", "trained_eta": 3e-4, "updates": 1, "eval_batches": 1, "starts_per_batch": 1,
                "return_scale": 1.0, "seconds": 0.0}
    return ProbeResult(conclusion, f"{conclusion}: test", [], settings, entropy_holder=holder)


@pytest.mark.parametrize("conclusion, holder, held, blocked", [
    ("cause", "bonus", "bonus", "entropy"), ("symptom", "not high", "policy_gradient", "no_signal"),
    ("undecided", "pinned", "unknown", "unknown"),
])
def test_probe_conclusion_is_given_in_the_doctors_codes(conclusion, holder, held, blocked):
    r = probe_result(conclusion, holder)
    out = r.to_dict()
    assert (out["entropy_held_by"], out["learning_blocked_by"]) == (held, blocked)
    assert set(PROBE_CONCLUSION_BLOCKED_BY.values()) <= set(LEARNING_BLOCKED_BY)
    assert set(PROBE_HOLDER_HELD_BY.values()) <= set(ENTROPY_HELD_BY)
    assert f"<code>{blocked}</code>" in probe_html_section(out)
    # A probe JSON saved before the two codes existed still renders, read from its conclusion.
    old = {k: v for k, v in out.items() if k not in ("entropy_held_by", "learning_blocked_by")}
    assert f"<code>{blocked}</code>" in probe_html_section(old)
