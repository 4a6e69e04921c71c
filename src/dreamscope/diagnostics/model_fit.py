"""`dreamscope model-fit RUN_DIR`: which observation dimensions the world model sees.

The actor only learns from what the latent carries. MODEL_MISSES_STATE says the decoded
observations explain too little of their variance; this names the dimensions, says how far
off the model is in the environment's own units, and how the error grows over the imagined
horizon the actor is trained on (horizon 0 is the posterior, which has just seen the
observation; horizon h imagines h steps from it with the replayed actions).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from dataclasses import asdict, dataclass

import numpy as np

from dreamscope.agent.world_model import POSTERIOR_BURN_IN
from dreamscope.cli_args import int_option, progress_bar
from dreamscope.diagnostics.probe import load_run
from dreamscope.diagnostics.thresholds import Thresholds
from dreamscope.errors import DreamscopeError

DEFAULT_HORIZONS = (0, 1, 5, 15)
#: Start rows per window; every horizon is measured from the same starts.
STARTS_PER_WINDOW = 16
#: Below this share a dimension is listed among the ones the model misses.
MISSED_BELOW = 0.5
#: How many of those the one-line summary names.
SUMMARY_WORST = 4


@dataclass
class DimensionFit:
    label: str
    spread: float  # standard deviation of the observed value over the measured rows, env units
    explained: dict[int, float]  # horizon -> 1 - MSE / variance, in symlog space (the model's loss)
    rms_error: dict[int, float]  # horizon -> RMS error of the decoded value, env units


@dataclass
class ModelFit:
    run_dir: str
    env: str
    horizons: list[int]
    burn_in: int
    rows: dict[int, int]  # horizon -> rows measured (windows crossing an episode start are left out)
    overall: dict[int, float]  # horizon -> share of the summed symlog variance explained
    dims: list[DimensionFit]
    seconds: float

    def to_dict(self) -> dict:
        """Plain data for JSON: a dimension that does not vary has ``null`` where a share would be."""
        return _finite_or_none(asdict(self))

    @classmethod
    def from_dict(cls, data: dict) -> "ModelFit":
        """Back from ``to_dict`` / the JSON output (string keys, null for a share not defined)."""
        def by_horizon(values: dict) -> dict[int, float]:
            return {int(h): math.nan if v is None else float(v) for h, v in values.items()}

        dims = [DimensionFit(str(d["label"]), math.nan if d["spread"] is None else float(d["spread"]),
                             by_horizon(d["explained"]), by_horizon(d["rms_error"])) for d in data["dims"]]
        return cls(str(data["run_dir"]), str(data["env"]), [int(h) for h in data["horizons"]], int(data["burn_in"]),
                   {int(h): int(n) for h, n in data["rows"].items()}, by_horizon(data["overall"]), dims,
                   float(data["seconds"]))

    def missed(self, horizon: int = 0) -> list[DimensionFit]:
        """Dimensions that vary but that the model explains less than half of, worst first."""
        varying = [d for d in self.dims if math.isfinite(d.explained[horizon])]
        return sorted((d for d in varying if d.explained[horizon] < MISSED_BELOW), key=lambda d: d.explained[horizon])


def _finite_or_none(value):
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite_or_none(v) for v in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


def observation_labels(env_spec: str, obs_dim: int) -> list[str]:
    """The env's names for its observation entries (``observation_labels`` on the unwrapped env,
    as air hockey and dm_control tasks have), else ``obs[i]``."""
    from dreamscope.envs.factory import make_env

    generic = [f"obs[{i}]" for i in range(obs_dim)]
    try:
        env = make_env(env_spec)
    except DreamscopeError:  # the env cannot be built here (e.g. a user module that is not installed)
        return generic
    try:
        labels = list(getattr(env.unwrapped, "observation_labels", ()) or ())
    finally:
        env.close()
    return labels if len(labels) == obs_dim else generic


def measure(wm, replay, horizons, batches: int, batch_size: int, seed: int = 0, bar=None, task=None) -> dict:
    """Sums over ``batches`` replayed windows of squared errors and target moments per horizon
    and dimension: symlog space (what the model is trained on) and env units."""
    import torch

    from dreamscope.agent.world_model import Latent
    from dreamscope.dists import symexp, symlog

    longest = max(horizons)
    length = POSTERIOR_BURN_IN + STARTS_PER_WINDOW + longest
    if not replay.can_sample(length):
        raise DreamscopeError(f"replay holds {len(replay)} rows, fewer than one window of {length} "
                              f"({POSTERIOR_BURN_IN} burn-in + {STARTS_PER_WINDOW} starts + horizon {longest}); "
                              "train longer or ask for shorter --horizons")
    device = next(wm.parameters()).device
    sums = {h: {k: 0.0 for k in ("err", "err_env", "x", "x2", "x_env", "x2_env", "n")} for h in horizons}
    starts = slice(POSTERIOR_BURN_IN, POSTERIOR_BURN_IN + STARTS_PER_WINDOW)
    gpus = [device.index or 0] if device.type == "cuda" else []
    with torch.no_grad(), torch.random.fork_rng(devices=gpus):  # the prior's samples: seeded, caller's RNG kept
        torch.manual_seed(seed)
        replay.rng = np.random.default_rng(seed)
        for _ in range(batches):
            batch = replay.sample(batch_size, length, device)
            obs, prev_action, is_first = batch["obs"], batch["prev_action"], batch["is_first"]
            post, _, _ = wm.rssm.observe(wm.embed(obs), prev_action, is_first, wm.rssm.initial(batch_size, device))
            state = Latent(post.deter[:, starts].flatten(0, 1), post.stoch[:, starts].flatten(0, 1))
            valid = torch.ones(batch_size * STARTS_PER_WINDOW, dtype=torch.bool, device=device)
            for h in range(longest + 1):
                rows = slice(POSTERIOR_BURN_IN + h, POSTERIOR_BURN_IN + h + STARTS_PER_WINDOW)
                if h > 0:
                    state = wm.rssm.img_step(state, prev_action[:, rows].flatten(0, 1))
                    valid &= ~is_first[:, rows].flatten(0, 1)  # a new episode: nothing to predict it from
                if h not in sums:
                    continue
                target = obs[:, rows].flatten(0, 1)[valid].double()
                target_symlog = symlog(target)
                decoded = wm.decoder(state.feat())[valid].double()
                s = sums[h]
                s["err"] += ((decoded - target_symlog) ** 2).sum(0)
                s["err_env"] += ((symexp(decoded) - target) ** 2).sum(0)
                s["x"] += target_symlog.sum(0)
                s["x2"] += (target_symlog ** 2).sum(0)
                s["x_env"] += target.sum(0)
                s["x2_env"] += (target ** 2).sum(0)
                s["n"] += int(valid.sum())
            if bar:
                bar.advance(task)
    return {h: {k: (v.cpu().numpy() if hasattr(v, "cpu") else v) for k, v in s.items()} for h, s in sums.items()}


def explained_share(err_sum, x_sum, x2_sum, n) -> tuple[np.ndarray, float]:
    """Per-dimension and overall 1 - MSE / variance from running sums; NaN for a dimension that
    does not vary (nothing to explain) or a horizon with no rows."""
    if n == 0:
        nan = np.full(np.shape(err_sum), np.nan)
        return nan, math.nan
    var = np.maximum(x2_sum / n - (x_sum / n) ** 2, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        per_dim = np.where(var > 1e-12, 1.0 - (err_sum / n) / var, np.nan)
    overall = 1.0 - err_sum.sum() / n / var.sum() if var.sum() > 0 else math.nan
    return per_dim, float(overall)


def model_fit(run_dir: str, horizons=DEFAULT_HORIZONS, batches: int = 8, batch_size: int = 16, seed: int = 0,
              device: str = "cpu", progress: bool = False) -> ModelFit:
    t_start = time.perf_counter()
    cfg, agent, replay = load_run(run_dir, device=device)
    agent.eval()
    horizons = sorted(set(horizons))
    bar = progress_bar(progress, "model-fit")
    task = bar.add_task("model-fit", total=batches, what="") if bar else None
    try:
        if bar:
            bar.start()
        sums = measure(agent.wm, replay, horizons, batches, batch_size, seed, bar, task)
    finally:
        if bar:
            bar.stop()
    obs_dim = len(sums[horizons[0]]["err"])
    labels = observation_labels(cfg.run.env, obs_dim)
    explained, overall, rms = {}, {}, {}
    for h, s in sums.items():
        explained[h], overall[h] = explained_share(s["err"], s["x"], s["x2"], s["n"])
        rms[h] = np.sqrt(s["err_env"] / s["n"]) if s["n"] else np.full(obs_dim, np.nan)
    first = sums[horizons[0]]
    spread = np.sqrt(np.maximum(first["x2_env"] / first["n"] - (first["x_env"] / first["n"]) ** 2, 0.0))
    dims = [DimensionFit(labels[i], float(spread[i]), {h: float(explained[h][i]) for h in horizons},
                         {h: float(rms[h][i]) for h in horizons}) for i in range(obs_dim)]
    return ModelFit(str(run_dir), cfg.run.env, horizons, POSTERIOR_BURN_IN, {h: int(s["n"]) for h, s in sums.items()},
                    overall, dims, time.perf_counter() - t_start)


# --------------------------------------------------------------------------------------
# Output
# --------------------------------------------------------------------------------------

def _pct(value: float) -> str:
    return "—" if not math.isfinite(value) else f"{value * 100:.0f}%"


def _num(value: float) -> str:
    return "—" if not math.isfinite(value) else f"{value:.3g}"


def summary(fit: ModelFit) -> str:
    """One sentence: how much the posterior sees, how much survives the longest horizon, what it misses."""
    h0, hl = fit.horizons[0], fit.horizons[-1]
    text = f"The decoded observations explain {_pct(fit.overall[h0])} of their variance at horizon {h0}"
    if hl != h0:
        text += f" and {_pct(fit.overall[hl])} after {hl} imagined steps"
    missed = fit.missed(h0)
    if missed:
        text += f"; under {MISSED_BELOW:.0%} explained, worst first: " + ", ".join(
            f"{d.label} {_pct(d.explained[h0])} (off by {_num(d.rms_error[h0])} of a {_num(d.spread)} spread)"
            for d in missed[:SUMMARY_WORST])
        if len(missed) > SUMMARY_WORST:
            text += f" and {len(missed) - SUMMARY_WORST} more"
    floor = Thresholds().model_explained_min
    if math.isfinite(fit.overall[h0]) and fit.overall[h0] < floor:
        text += (f". Below {floor:g} the doctor reports MODEL_MISSES_STATE: no actor setting recovers what the "
                 "latent drops")
    return text + "."


def render(fit: ModelFit, console=None) -> None:
    from rich import box
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = console or Console()
    table = Table(title=Text(f"model-fit {fit.run_dir} ({fit.env}): share of each observation's variance the world "
                             f"model explains, {fit.rows[fit.horizons[0]]} rows after {fit.burn_in} burn-in steps"),
                  box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    table.add_column("observation")
    table.add_column("spread", justify="right")
    for h in fit.horizons:
        table.add_column("posterior" if h == 0 else f"+{h} imagined", justify="right")
    table.add_column(f"RMS error (h={fit.horizons[0]})", justify="right")
    for d in fit.dims:
        shares = [Text(_pct(d.explained[h]), style="red" if d.explained[h] < MISSED_BELOW else "")
                  for h in fit.horizons]
        table.add_row(Text(d.label), _num(d.spread), *shares, _num(d.rms_error[fit.horizons[0]]))
    table.add_row(Text("all (summed variance)", style="bold"), "", *(_pct(fit.overall[h]) for h in fit.horizons), "")
    console.print(table)
    console.print(Text(summary(fit)))
    console.print(Text("shares in symlog space (the decoder's loss); spread and error in the observation's own units; "
                       f"'—' = a dimension that does not vary; {fit.seconds:.1f} s", style="dim"))


def _share_colour(share: float) -> str:
    """Cell background from red (nothing explained) through yellow to green (all of it)."""
    if not math.isfinite(share):
        return "#f4f4f4"
    x = min(max(share, 0.0), 1.0)
    red, green = (255, int(120 + 135 * x / 0.5)) if x < 0.5 else (int(255 - 155 * (x - 0.5) / 0.5), 255)
    return f"#{red:02x}{green:02x}a0"


def model_fit_html_section(fit) -> str:
    """An HTML fragment (escaped, no external resources) for the report: the per-dimension
    shares as a heat table, dimensions down, horizons across."""
    from dreamscope.report.html import esc as e, table_html

    fit = fit if isinstance(fit, ModelFit) else ModelFit.from_dict(fit)

    def number(text: str, colour: str = "") -> str:
        background = f' style="background:{colour}"' if colour else ""
        return f'<td class="num"{background}>{text}</td>'

    def row(label: str, spread: str, shares: dict, rms: str) -> list[str]:
        return [label, number(spread), *(number(e(_pct(shares[h])), _share_colour(shares[h])) for h in fit.horizons),
                number(rms)]

    heads = ["observation", "spread"] + ["posterior" if h == 0 else f"+{h} imagined" for h in fit.horizons] + [
        f"RMS error (h={fit.horizons[0]})"]
    rows = [row(e(d.label), e(_num(d.spread)), d.explained, e(_num(d.rms_error[fit.horizons[0]]))) for d in fit.dims]
    rows.append(row("<b>all (summed variance)</b>", "", fit.overall, ""))
    return (
        '<section class="model-fit">'
        '<h2>Model fit: what the world model sees</h2>'
        f'<p>{e(summary(fit))}</p>'
        f'{table_html(heads, rows)}'
        f'<p class="muted">{e(fit.run_dir)} ({e(fit.env)}): {e(fit.rows[fit.horizons[0]])} rows after '
        f'{e(fit.burn_in)} burn-in steps; shares of each dimension\'s variance in symlog space (the decoder\'s loss), '
        'spread and RMS error in the observation\'s own units; imagined horizons use the replayed actions and leave '
        'out windows that cross an episode start.</p>'
        '</section>'
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="run directory with config.yaml, checkpoint.pt, replay.npz "
                        "(or the path of its checkpoint.pt)")
    parser.add_argument("--horizons", default=",".join(map(str, DEFAULT_HORIZONS)),
                        help="imagined steps to measure at, comma-separated; 0 is the posterior (default 0,1,5,15)")
    parser.add_argument("--batches", metavar="N", default="8", help="replayed batches to measure over (default 8)")
    parser.add_argument("--batch-size", metavar="B", default="16", help="windows per batch (default 16)")
    parser.add_argument("--seed", metavar="S", default="0", help="seed for the windows and the prior's samples")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def parse_horizons(text: str) -> list[int]:
    try:
        horizons = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        horizons = []
    if not horizons or min(horizons) < 0:
        raise DreamscopeError(f"--horizons {text!r}: expected comma-separated integers ≥ 0, e.g. 0,1,5,15")
    return horizons


def run(args: argparse.Namespace) -> int:
    fit = model_fit(args.run_dir, parse_horizons(args.horizons), batches=int_option("--batches", args.batches, 1),
                    batch_size=int_option("--batch-size", args.batch_size, 1), seed=int_option("--seed", args.seed, 0),
                    device=args.device, progress=not args.no_progress and not args.json)
    if args.json:
        print(json.dumps(fit.to_dict(), indent=2, allow_nan=False, ensure_ascii=False))
    else:
        render(fit)
    return 0
