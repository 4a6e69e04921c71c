"""The report's plots as PNG bytes, each with the signals it needs and what the doctor compared them to.

Every plot shades the step windows in their verdict's colour, so a reader sees which stretch
of the run each verdict came from. A plot whose signals are all missing is not drawn; the
report says which signals it would have shown.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Callable

import numpy as np

from dreamscope.logs.schema import Run
from dreamscope.report.style import verdict_colour

#: More points than this are drawn as block medians with a min–max band (a 1M-line log stays legible).
MAX_PLOT_POINTS = 2000


@dataclass(frozen=True)
class PlotSpec:
    id: str
    title: str
    signals: tuple[str, ...]  # drawn when at least one of these is present
    draw: Callable  # (ax_or_axes, run, diagnosis) -> None
    panels: int = 1


def _present(run: Run, name: str) -> bool:
    series = run.get(name)
    return series is not None and bool(np.isfinite(series.values).any())


def _reduce(steps: np.ndarray, values: np.ndarray):
    """(x, y, lo, hi): the points themselves, or block medians with min/max bands when there are too many."""
    keep = np.isfinite(values)
    steps, values = steps[keep], values[keep]
    if len(values) <= MAX_PLOT_POINTS:
        return steps, values, None, None
    groups = np.array_split(np.arange(len(values)), MAX_PLOT_POINTS)
    x = np.array([steps[g].mean() for g in groups])
    med = np.array([np.median(values[g]) for g in groups])
    lo = np.array([values[g].min() for g in groups])
    hi = np.array([values[g].max() for g in groups])
    return x, med, lo, hi


def _line(ax, run: Run, name: str, **kw) -> None:
    series = run.get(name)
    if series is None or not len(series):
        return
    x, y, lo, hi = _reduce(series.steps, series.values)
    (line,) = ax.plot(x, y, label=name, lw=1.2, **kw)
    if lo is not None:
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, lw=0)


def _hline(ax, y: float | None, label: str, style: str = "--", colour: str = "k") -> None:
    if y is not None and np.isfinite(y):
        ax.axhline(y, ls=style, color=colour, lw=1, label=label)


def _log_if_positive(ax, run: Run, names: tuple[str, ...]) -> None:
    """Log scale for ratios and magnitudes that span decades, when all of them are positive."""
    if all(np.nanmin(run.get(n).values) > 0 for n in names if _present(run, n)):
        ax.set_yscale("log")


def _entropy(ax, run, dx) -> None:
    s = dx.scale
    _line(ax, run, "policy/entropy")
    _line(ax, run, "policy/entropy_action")
    _hline(ax, s.ceiling, f"ceiling {s.ceiling:.3g}" if s.ceiling is not None else "", colour="#d62728")
    _hline(ax, s.floor, f"floor {s.floor:.3g}" if s.floor is not None else "", colour="#1f77b4")
    if s.action_bound is not None:
        _hline(ax, s.action_bound, f"d·ln2 = {s.action_bound:.3g} (any action distribution)", ":", "#555555")
    ax.set_ylabel("nats")


def _std(ax, run, dx) -> None:
    for name in ("policy/std_mean", "policy/std_min", "policy/std_max"):
        _line(ax, run, name)
    s = dx.scale
    if s.logstd_hi is not None:
        _hline(ax, float(np.exp(s.logstd_hi)), f"σ max {np.exp(s.logstd_hi):.3g}", colour="#d62728")
        _hline(ax, float(np.exp(s.logstd_lo)), f"σ min {np.exp(s.logstd_lo):.3g}", colour="#1f77b4")
    ax.set_yscale("log")
    ax.set_ylabel("σ")


def _saturation(ax, run, dx) -> None:
    for name in ("policy/saturation_frac", "policy/std_at_upper_frac", "policy/std_at_lower_frac"):
        _line(ax, run, name)
    th = dx.thresholds
    _hline(ax, th.saturation_high, f"saturated ≥ {th.saturation_high:g}", colour="#d62728")
    if th.pinned_frac != th.saturation_high:
        _hline(ax, th.pinned_frac, f"pinned ≥ {th.pinned_frac:g}", ":", "#d62728")
    ax.set_ylim(-0.02, 1.02)
    ax.set_ylabel("fraction")


def _advantage(ax, run, dx) -> None:
    for name in ("adv/abs_mean", "adv_norm/abs_mean", "return/scale"):
        _line(ax, run, name)
    limit = dx.return_limit
    _hline(ax, limit, f"return-scale limit {limit:g}", colour="#555555")
    _hline(ax, dx.thresholds.adv_weak_norm, f"|adv| ≈ 0 below {dx.thresholds.adv_weak_norm:g}", ":", "#ff7f0e")
    _log_if_positive(ax, run, ("adv/abs_mean", "adv_norm/abs_mean", "return/scale"))


def _drift(axes, run, dx) -> None:
    top, bottom = axes
    _line(top, run, "actor/logstd_push_ent")
    _line(top, run, "actor/logstd_push_pg", alpha=0.5)
    for w in dx.windows:
        drift = w.checks["bonus_drift"].numbers
        if "push_pg_mean" in drift:
            top.hlines(drift["push_pg_mean"], w.start, w.stop, colors="k", lw=2,
                       label="PG push, window mean" if w.index == 0 else None)
    top.axhline(0, color="#999999", lw=0.8)
    top.set_ylabel("d loss / d log σ\n(< 0 pushes σ up)")
    _line(bottom, run, "actor/ent_to_pg_drift_ratio")
    _line(bottom, run, "actor/ent_to_pg_ratio", alpha=0.5)
    _hline(bottom, dx.thresholds.drift_ratio, "bonus = PG", colour="#d62728")
    bottom.set_ylabel("|∇ηH| / |∇PG|")
    _log_if_positive(bottom, run, ("actor/ent_to_pg_drift_ratio", "actor/ent_to_pg_ratio"))


def _score(ax, run, dx) -> None:
    series = run.get("episode/score")
    ax.plot(series.steps, series.values, ".", ms=3, alpha=0.4, label="episode/score")
    finite = series.values[np.isfinite(series.values)]
    if len(finite) >= 5:
        k = max(3, len(finite) // 20)
        smooth = np.convolve(finite, np.ones(k) / k, mode="valid")
        ax.plot(series.steps[np.isfinite(series.values)][k - 1:], smooth, lw=1.5, label=f"mean of {k} episodes")
    ax.set_ylabel("score")


PLOTS: tuple[PlotSpec, ...] = (
    PlotSpec("plot-entropy", "Entropy against its floor, ceiling and the d·ln2 action bound",
             ("policy/entropy", "policy/entropy_action"), _entropy),
    PlotSpec("plot-std", "Policy std and its bounds", ("policy/std_mean", "policy/std_min", "policy/std_max"), _std),
    PlotSpec("plot-saturation", "Saturation and std at its bounds",
             ("policy/saturation_frac", "policy/std_at_upper_frac", "policy/std_at_lower_frac"), _saturation),
    PlotSpec("plot-advantage", "Advantage scale next to the return scale and its limit",
             ("adv/abs_mean", "adv_norm/abs_mean", "return/scale"), _advantage),
    PlotSpec("plot-drift", "Drift on log σ (top) and gradient ratios (bottom; per-step ratio is secondary)",
             ("actor/logstd_push_ent", "actor/logstd_push_pg", "actor/ent_to_pg_drift_ratio", "actor/ent_to_pg_ratio"),
             _drift, panels=2),
    PlotSpec("plot-score", "Episode score", ("episode/score",), _score),
)


def _shade(ax, dx) -> None:
    for w in dx.windows:
        ax.axvspan(w.start, w.stop, color=verdict_colour(w.verdict), alpha=0.08, lw=0)


def _figure(height: float):
    """A figure not registered with pyplot: no backend switch, no global state to close."""
    from matplotlib.figure import Figure

    return Figure(figsize=(10, height))


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=80)
    return buf.getvalue()


def render_plot(spec: PlotSpec, run: Run, diagnosis) -> bytes | None:
    """PNG of one plot, or None when none of its signals is in the run."""
    if not any(_present(run, n) for n in spec.signals):
        return None
    fig = _figure(2.8 * spec.panels)
    axes = fig.subplots(spec.panels, 1, sharex=True, squeeze=False)
    axes = [a[0] for a in axes]
    spec.draw(axes if spec.panels > 1 else axes[0], run, diagnosis)
    for ax in axes:
        _shade(ax, diagnosis)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(loc="best", fontsize=7, framealpha=0.8)
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("step")
    fig.tight_layout()
    return _png(fig)


def render_timeline(diagnosis) -> bytes:
    """The verdict per step window as one coloured bar."""
    fig = _figure(1.4)
    ax = fig.subplots()
    for w in diagnosis.windows:
        ax.broken_barh([(w.start, w.stop - w.start)], (0, 1), color=verdict_colour(w.verdict))
        ax.text((w.start + w.stop) / 2, 0.5, f"{w.verdict}\n{w.confidence:.2f}", ha="center", va="center", fontsize=7)
    ax.set_yticks([])
    ax.set_xlabel("step")
    ax.set_xlim(diagnosis.windows[0].start, diagnosis.windows[-1].stop)
    fig.tight_layout()
    return _png(fig)
