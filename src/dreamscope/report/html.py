"""A self-contained HTML report of a diagnosis: one file, no network, plots embedded as data URIs.

Every string that can come from a log (metric names, paths, warnings, meta values, and the
doctor's own text, which quotes them) goes through :func:`html.escape`, so a log cannot
inject markup into the page.
"""

from __future__ import annotations

import base64
import html
import os
import tempfile
from pathlib import Path
from typing import Iterable

from dreamscope.errors import DreamscopeError

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:2em auto;max-width:1100px;color:#222;
line-height:1.45} h1{font-size:1.5em;margin-bottom:.2em}
h2{font-size:1.15em;border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.6em}
.badge{display:inline-block;padding:.15em .6em;border-radius:.3em;color:#fff;font-weight:600}
.answer{font-size:1.1em;margin:.6em 0} .muted{color:#666} .missing{color:#a33;font-style:italic}
table{border-collapse:collapse;width:100%;font-size:.9em}
td,th{border:1px solid #ddd;padding:.3em .5em;vertical-align:top;text-align:left}
td.num{text-align:right}
th{background:#f4f4f4} .yes{color:#1a7f37;font-weight:600} .no{color:#a33;font-weight:600} .na{color:#888}
figure{margin:1em 0} figcaption{font-weight:600;margin-bottom:.3em} img{max-width:100%;border:1px solid #eee}
pre{white-space:pre-wrap;background:#f8f8f8;padding:.6em;border-radius:.3em}
"""


def esc(value) -> str:
    """``str(value)`` made safe for HTML text and attribute values."""
    return html.escape(str(value), quote=True)


def _num(v) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return esc(v)


def badge_html(text: str, colour: str) -> str:
    """A coloured label (a verdict, a probe's conclusion); ``colour`` is ours, ``text`` is escaped."""
    return f'<span class="badge" style="background:{colour}">{esc(text)}</span>'


def _badge(code: str) -> str:
    from dreamscope.report.style import verdict_colour

    return badge_html(code, verdict_colour(code))


def two_answers_html(held_by: str, blocked_by: str) -> str:
    """The two halves of the answer (doctor and probe alike), codes and words."""
    from dreamscope.diagnostics.answers import describe

    held, blocked = describe(held_by, blocked_by)
    return (f"<table class='two-answers'><tr><th>entropy held by</th><td><code>{esc(held_by)}</code> — {esc(held)}"
            f"</td></tr><tr><th>learning blocked by</th><td><code>{esc(blocked_by)}</code> — {esc(blocked)}</td></tr>"
            "</table>")


def _holds(h: bool | None) -> str:
    return {True: '<span class="yes">holds</span>', False: '<span class="no">does not</span>'}.get(
        h, '<span class="na">undecided</span>')


def _list(items: Iterable[str], empty: str) -> str:
    items = list(items)
    if not items:
        return f'<p class="muted">{esc(empty)}</p>'
    return "<ul>" + "".join(f"<li>{esc(i)}</li>" for i in items) + "</ul>"


def _figure(plot_id: str, title: str, png: bytes | None, missing: Iterable[str] = ()) -> str:
    if png is None:
        names = ", ".join(missing)
        return (f'<figure><figcaption>{esc(title)}</figcaption>'
                f'<p class="missing" id="{plot_id}">Not drawn: none of its signals is in this run '
                f'({esc(names)}).</p></figure>')
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><figcaption>{esc(title)}</figcaption>'
            f'<img id="{plot_id}" alt="{esc(plot_id)}: {esc(title)}" src="data:image/png;base64,{data}"></figure>')


def table_html(headers: Iterable[str], rows: Iterable[Iterable[str]]) -> str:
    """A table styled by the report's CSS, from header names (escaped here) and rows of cells.

    A cell is HTML already escaped by the caller: either the cell's content, or a whole
    ``<td ...>...</td>`` when it needs attributes of its own (a heat colour, right alignment).
    """
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(cell if cell.startswith("<td") else f"<td>{cell}</td>" for cell in row) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _evidence_table(evidence) -> str:
    return table_html(("check", "", "signal", "steps", "numbers", "implies"), (
        (esc(ev.check), _holds(ev.holds), esc(ev.signal), f"{ev.window[0]}–{ev.window[1]}",
         ", ".join(f"{esc(k)} = {_num(v)}" for k, v in ev.numbers.items() if v is not None), esc(ev.implies))
        for ev in evidence))


def render_html(run, diagnosis, extra_sections: Iterable[tuple[str, str]] | None = None,
                html_fragments: Iterable[str] = ()) -> str:
    """The report page as a string (see :func:`write_report`)."""
    from dreamscope.report.plots import PLOTS, render_plot, render_timeline

    d = diagnosis
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>dreamscope: {esc(d.verdict)} — "
             f"{esc(run.path)}</title><style>{_CSS}</style></head><body>"]
    parts.append(f"<h1>dreamscope diagnosis {_badge(d.verdict)}</h1>")
    parts.append(f"<p class='muted'>run <code>{esc(run.path)}</code> · format {esc(run.format)} · "
                 f"answer <b>{esc(d.answer)}</b> · confidence {d.confidence:.2f}</p>")
    parts.append(two_answers_html(d.entropy_held_by, d.learning_blocked_by))
    parts.append(f"<p class='answer'>{esc(d.summary)}</p>")

    parts.append("<h2>Verdict per step window</h2>")
    parts.append(_figure("plot-timeline", "Verdict timeline (windows coloured by verdict)", render_timeline(d)))
    parts.append(table_html(("window", "steps", "verdict", "answer", "confidence", "notes"), (
        (str(w.index), f"{w.start}–{w.stop}", _badge(w.verdict), esc(w.answer), f"{w.confidence:.2f}",
         esc("; ".join(w.notes))) for w in d.windows)))

    # Pictures first: people look before they read.
    parts.append("<h2>Signals</h2>")
    for spec in PLOTS:
        parts.append(_figure(spec.id, spec.title, render_plot(spec, run, d), spec.signals))

    parts.append("<h2>Findings</h2>")
    if d.findings:
        for f in d.findings:
            parts.append(f"<p><b>{esc(f.code)}</b> (steps {f.window[0]}–{f.window[1]}): {esc(f.message)}</p>")
            if f.detail.get("explanation"):
                parts.append(f"<p class='muted'>{esc(f.detail['explanation'])}</p>")
    else:
        parts.append("<p class='muted'>None.</p>")

    parts.append("<h2>Evidence</h2>" + _evidence_table(d.evidence))
    parts.append("<h2>Fixes, best first</h2><ol>" + "".join(
        f"<li>{esc(f.action)} — <i>expected:</i> {esc(f.expected_effect)}</li>" for f in d.fixes) + "</ol>")
    parts.append(f"<h2>Confirm by intervention</h2><p>{esc(d.intervention)}</p>")
    for title, text in extra_sections or ():
        parts.append(f"<h2>{esc(title)}</h2><pre>{esc(text)}</pre>")
    parts.extend(html_fragments)  # trusted: built by dreamscope (e.g. the probe section), already escaped

    undecided = [f"{u['check']}: {u['why']}" for u in d.undecided] + d.notes
    parts.append("<h2>Could not decide</h2>" + _list(undecided, "Everything the verdict needed was decidable."))
    parts.append("<h2>Missing signals</h2>" + _list(
        [f"{m['signal']} — {m['needed_for']}" for m in d.missing_signals], "None."))
    parts.append("<h2>Assumptions</h2>" + _list(d.assumptions, "None."))
    parts.append("<h2>Reader warnings</h2>" + _list(d.warnings, "None."))
    meta = ", ".join(f"{k} = {v}" for k, v in run.meta.items())
    parts.append(f"<p class='muted'>Run meta: {esc(meta) if meta else 'none'}</p>")
    parts.append("<details><summary><b>Signals read</b></summary>" + table_html(("signal", "read from", "points"), (
        (esc(name), esc(run.sources.get(name, "")), str(len(series))) for name, series in sorted(run.series.items())))
        + "</details>")
    parts.append("<details><summary><b>Thresholds used</b></summary>" + table_html(("name", "value"), (
        (esc(k), _num(v)) for k, v in d.thresholds.to_dict().items())) + "</details></body></html>")
    return "\n".join(parts)


def check_writable(path: str | os.PathLike, what: str = "report", example: str = "report.html") -> Path:
    """The output path, if its directory exists and it is not itself a directory; else a DreamscopeError."""
    target = Path(path)
    if not target.parent.is_dir():
        raise DreamscopeError(f"cannot write {what} {target}: directory {target.parent} does not exist")
    if target.is_dir():
        raise DreamscopeError(f"cannot write {what} {target}: it is a directory; "
                              f"name a file such as {target / example}")
    return target


def write_report(run, diagnosis, path: str | os.PathLike,
                 extra_sections: Iterable[tuple[str, str]] | None = None, html_fragments: Iterable[str] = ()) -> Path:
    """Write the report to ``path`` (the user named it, so an existing file is replaced).

    ``extra_sections`` are (title, text) pairs shown as escaped preformatted text (e.g. a
    probe's table). The page is written to a temporary file and moved into place, so a
    failure never leaves half a report; a missing directory is an error, not created.
    """
    target = check_writable(path)
    parent = target.parent
    page = render_html(run, diagnosis, extra_sections, html_fragments)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(page)
        os.chmod(tmp, 0o644)  # mkstemp makes it owner-only; a report is meant to be shared
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target
