"""The HTML report: self-contained, every plot findable, log strings escaped, renders in a real browser."""

from __future__ import annotations

import base64
import os
import re
import subprocess

import numpy as np
import pytest
from test_doctor import bonus_signals, build, without

from dreamscope.diagnostics.doctor import diagnose
from dreamscope.errors import DreamscopeError
from dreamscope.logs.schema import Series
from dreamscope.report.html import write_report
from dreamscope.report.plots import PLOTS

XSS = "<script>alert(1)</script>"
ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
PLOT_IDS = [spec.id for spec in PLOTS] + ["plot-timeline"]
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def hostile_run():
    """The seed run, with log-derived strings that try to inject markup everywhere they can."""
    run = build(bonus_signals(), warnings=[f"unknown key {XSS} skipped", "line 7: <b>bad</b> value"])
    run.path = f"runs/{XSS}/metrics.jsonl"
    run.sources["policy/entropy"] = f"behavior/{XSS}"
    run.meta["note"] = XSS
    run.series[XSS] = Series(np.arange(3), np.zeros(3))  # a foreign name a reader let through
    return run


@pytest.fixture(scope="module")
def report(hostile_run, tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "report.html"
    write_report(hostile_run, diagnose(hostile_run), path, extra_sections=[(f"probe {XSS}", f"η = 0: {XSS}")])
    return path


def test_every_plot_is_embedded_and_findable(report):
    page = report.read_text(encoding="utf-8")
    for plot_id in PLOT_IDS:
        match = re.search(rf'<img id="{plot_id}" alt="{plot_id}[^"]*" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
        assert match, plot_id
        assert base64.b64decode(match.group(1)).startswith(b"\x89PNG")


def test_page_is_self_contained(report):
    page = report.read_text(encoding="utf-8")
    assert not re.search(r'(src|href)="(https?:)?//', page)
    assert "<link" not in page and "<script" not in page.lower()


def test_log_strings_are_escaped(report):
    page = report.read_text(encoding="utf-8")
    assert XSS not in page
    assert page.count(ESCAPED) >= 6  # path, title, warning, source, meta, foreign series name, extra section
    assert "<b>bad</b>" not in page and "&lt;b&gt;bad&lt;/b&gt;" in page


def test_report_shows_verdict_findings_and_fixes(report):
    page = report.read_text(encoding="utf-8")
    assert "BONUS_DOMINATES" in page and "IMPOSSIBLE_ENTROPY" in page
    assert "Confirm by intervention" in page and "η = 0" in page
    assert "expected:" in page


def test_missing_signals_say_so_instead_of_a_plot(tmp_path):
    run = build(without(bonus_signals(), "actor/logstd_push_ent", "actor/logstd_push_pg", "actor/ent_to_pg_drift_ratio",
                        "actor/ent_to_pg_ratio", "episode/score"))
    path = write_report(run, diagnose(run), tmp_path / "r.html")
    page = path.read_text(encoding="utf-8")
    for plot_id in ("plot-drift", "plot-score"):
        assert re.search(rf'<p class="missing" id="{plot_id}">Not drawn', page), plot_id
        assert f'<img id="{plot_id}"' not in page
    assert '<img id="plot-entropy"' in page


def test_missing_directory_is_refused_and_existing_file_replaced(tmp_path, hostile_run):
    dx = diagnose(hostile_run)
    with pytest.raises(DreamscopeError, match="does not exist"):
        write_report(hostile_run, dx, tmp_path / "no-such-dir" / "r.html")
    with pytest.raises(DreamscopeError, match="is a directory"):
        write_report(hostile_run, dx, tmp_path)
    target = tmp_path / "r.html"
    target.write_text("old")
    write_report(hostile_run, dx, target)
    assert target.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]  # no temporary file left behind


@pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} not found (apt-get install chromium): "
                                                          "headless render check skipped")
def test_report_renders_in_headless_chromium(report, tmp_path):
    import matplotlib.image

    shot = tmp_path / "out.png"
    subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}",
         f"--screenshot={shot}", "--window-size=1200,3000", report.resolve().as_uri()],
        capture_output=True, timeout=120, check=False)
    assert shot.exists() and shot.stat().st_size > 0
    pixels = matplotlib.image.imread(shot)[..., :3]
    assert pixels.shape[:2] == (3000, 1200)
    assert len(np.unique(pixels.reshape(-1, 3), axis=0)) > 50  # not a blank page
    # the BONUS_DOMINATES badge / timeline red (#d62728) made it to the screen
    red = (pixels[..., 0] > 0.75) & (pixels[..., 1] < 0.25) & (pixels[..., 2] < 0.25)
    assert red.sum() > 500
