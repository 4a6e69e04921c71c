"""Evaluate trained policies on fresh episodes: score, win rate and saturation with confidence intervals.

A run's logged episode/score is what the exploring policy earned while it was learning, a
few dozen episodes per log interval. This plays a fixed number of new episodes from the
checkpoint, with the sampled policy (what training sees) and its mode (the most likely
action; the latent state is still sampled): a policy whose mode scores well while its
samples do not has learned something that its entropy hides. Reference policies (random,
bang-bang, scripted) play the same episodes to put the scores on a scale. Each env plays a
fixed share of the episodes, so that short episodes (goals end them) are not over-counted,
as they are when the first N episodes to finish are taken.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from dreamscope.cli_args import int_option, progress_bar
from dreamscope.errors import DreamscopeError
from dreamscope.metrics import SATURATION_THRESHOLD
from dreamscope.run_files import CHECKPOINT, CONFIG
from dreamscope.stats import interval, wilson_interval

POLICIES = {"sample": "actions drawn from the policy, as in training", "mode": "the policy's most likely action"}
#: far from the env seeds training uses (run.seed + env index, and + 1000 x episodes at resets)
DEFAULT_SEED = 1_000_000

Policy = Callable[[np.ndarray, np.ndarray], np.ndarray]


def play(envs, policy: Policy, episodes: int, seed: int, advance: Callable[[], None] = lambda: None) -> dict:
    """Play ``episodes`` episodes on a next-step-autoreset vector env; env i plays a fixed share of them.

    Returns per-episode ``score``, ``length`` and ``win`` (1 / -1 / 0, None if the env reports no
    wins), and ``saturation``: the fraction of action components with |a| > 0.99.
    """
    n = envs.num_envs
    quota = np.array([episodes // n + (i < episodes % n) for i in range(n)])
    finished = np.zeros(n, np.int64)
    obs, _ = envs.reset(seed=seed)
    is_first = np.ones(n, bool)
    episode_done = np.zeros(n, bool)
    score, length = np.zeros(n), np.zeros(n, np.int64)
    scores, lengths, wins = [], [], []
    reports_wins = True
    saturated = components = 0
    while (finished < quota).any():
        action = np.asarray(policy(obs.astype(np.float32), is_first), np.float32)
        obs, reward, terminated, truncated, info = envs.step(action)
        reset = episode_done  # next-step autoreset: these envs ignored the action and started anew
        active = (finished < quota) & ~reset
        score += np.where(active, reward, 0.0)
        length += active
        saturated += int((np.abs(action[active]) > SATURATION_THRESHOLD).sum())
        components += int(active.sum()) * action.shape[-1]
        episode_done = ~reset & (terminated | truncated)
        for i in np.flatnonzero(episode_done & active):
            scores.append(float(score[i]))
            lengths.append(int(length[i]))
            if "win" in info and info.get("_win", episode_done)[i]:
                wins.append(int(info["win"][i]))
            else:
                reports_wins = False
            score[i], length[i] = 0.0, 0
            finished[i] += 1
            advance()
        is_first = reset.copy()
    return {"score": np.array(scores), "length": np.array(lengths), "win": np.array(wins) if reports_wins else None,
            "saturation": saturated / max(components, 1)}


class AgentPolicy:
    """A trained agent as a ``Policy``: carries its latent state and previous action between calls."""

    def __init__(self, agent, explore: bool, device: str):
        self.agent, self.explore, self.device = agent, explore, device
        self.carry = None

    def __call__(self, obs: np.ndarray, is_first: np.ndarray) -> np.ndarray:
        import torch

        if self.carry is None:
            self.carry = self.agent.initial_state(len(obs))
        obs_t = torch.as_tensor(obs, device=self.device)
        action, self.carry = self.agent.act(obs_t, torch.as_tensor(is_first, device=self.device), self.carry,
                                            explore=self.explore)
        return action.cpu().numpy()


@dataclass
class Evaluation:
    run: str
    step: int  # agent steps the checkpoint was trained for (0 for a reference policy)
    env: str
    action_repeat: int
    policy: str
    episodes: int
    score_mean: float
    score_lo: float  # 95 % Student-t interval over episodes
    score_hi: float
    length_mean: float
    saturation: float
    win_rate: float | None  # None where the env reports no wins
    win_lo: float | None  # 95 % Wilson interval
    win_hi: float | None
    loss_rate: float | None


def summarise(run: str, step: int, env: str, action_repeat: int, policy: str, played: dict) -> Evaluation:

    score = interval(played["score"], 0.95)  # unbounded for a single episode
    wins = played["win"]
    win_rate = win_lo = win_hi = loss_rate = None
    if wins is not None:
        won = int((wins > 0).sum())
        win_rate, loss_rate = won / len(wins), float((wins < 0).mean())
        win_lo, win_hi = wilson_interval(won, len(wins))
    return Evaluation(run, step, env, action_repeat, policy, len(played["score"]), score["mean"], score["lo"], score["hi"],
                      float(played["length"].mean()), played["saturation"], win_rate, win_lo, win_hi, loss_rate)


def evaluate_run(run_dir: str | Path, policies: list[str], episodes: int, envs: int, seed: int,
                 env: str | None = None, device: str = "cpu", advance: Callable[[], None] = lambda: None) -> list[Evaluation]:
    """Play ``episodes`` episodes with each of ``policies`` from the run's checkpoint, on ``env`` or the run's env."""
    import torch

    from dreamscope.checkpoint import load_agent, run_directory
    from dreamscope.config import load_run_config
    from dreamscope.envs.factory import make_vector_env, resolve_env_id

    path = run_directory(run_dir, (CONFIG, CHECKPOINT))
    cfg = load_run_config(path / CONFIG)
    cfg.run.compile, cfg.run.device = False, device
    env_spec = resolve_env_id(env or cfg.run.env)
    vector_env = make_vector_env(env_spec, envs, seed, cfg.run.action_repeat)
    try:
        obs_dim = int(np.prod(vector_env.single_observation_space.shape))
        action_dim = int(np.prod(vector_env.single_action_space.shape))
        agent = load_agent(path, cfg, obs_dim, action_dim, device)
        agent.eval()
        step = int(torch.load(path / CHECKPOINT, map_location="cpu", weights_only=True)["counters"]["step"])
        results = []
        for policy in policies:
            # The latent state is sampled even under the mode policy: seed it, without moving the caller's RNG.
            with torch.random.fork_rng(devices=[torch.device(device)] if device.startswith("cuda") else []):
                torch.manual_seed(seed)
                played = play(vector_env, AgentPolicy(agent, policy == "sample", device), episodes, seed, advance)
            results.append(summarise(str(path), step, env_spec, cfg.run.action_repeat, policy, played))
        return results
    finally:
        vector_env.close()


def reference_policy(spec: str, action_dim: int, seed: int) -> Policy:
    """A policy without a checkpoint, to put a run's score on a scale: ``random`` (uniform actions),
    ``bang-bang`` (uniform signs, where a tanh policy with σ at its clamp tends) or a scripted
    ``module:function`` of one observation (``dreamscope.envs.airhockey:chase_policy``)."""
    from dreamscope.train import load_prefill_policy

    rng = np.random.default_rng(seed)
    if spec == "bang-bang":
        return lambda obs, is_first: rng.choice(np.float32([-1.0, 1.0]), (len(obs), action_dim))
    if spec != "random" and ":" not in spec:
        raise DreamscopeError(f"--reference {spec!r}: accepted: random, bang-bang, or module:function "
                              "(e.g. dreamscope.envs.airhockey:chase_policy)")
    act = load_prefill_policy(spec, action_dim, option="--reference")
    return lambda obs, is_first: act(obs, rng)


def evaluate_reference(spec: str, episodes: int, envs: int, seed: int, env: str, action_repeat: int = 1,
                       advance: Callable[[], None] = lambda: None) -> Evaluation:
    """The episodes a run is evaluated on (same env, seed and count), played by a reference policy."""
    from dreamscope.envs.factory import make_vector_env, resolve_env_id

    env_spec = resolve_env_id(env)
    vector_env = make_vector_env(env_spec, envs, seed, action_repeat)
    try:
        policy = reference_policy(spec, int(np.prod(vector_env.single_action_space.shape)), seed)
        played = play(vector_env, policy, episodes, seed, advance)
    finally:
        vector_env.close()
    return summarise(spec, 0, env_spec, action_repeat, "reference", played)


def expand_run_dirs(paths: list[str]) -> list[str]:
    """Each path, or for a directory that is not a run but holds runs (a sweep's --logdir) those runs, sorted."""
    expanded = []
    for path in map(Path, paths):
        runs = sorted(str(child) for child in path.iterdir() if (child / CONFIG).is_file()) if (
            path.is_dir() and not (path / CONFIG).exists()) else []
        expanded += runs or [str(path)]
    return expanded


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dirs", nargs="*", metavar="RUN_DIR",
                        help="run directories with config.yaml and checkpoint.pt (or their checkpoint.pt), or a "
                        "directory of runs such as a sweep's --logdir")
    parser.add_argument("--episodes", metavar="N", default="100", help="episodes per run and policy (default 100)")
    parser.add_argument("--policy", default="sample,mode",
                        help="comma-separated: " + ", ".join(f"{k} ({v})" for k, v in POLICIES.items())
                        + " (default both)")
    parser.add_argument("--reference", action="append", default=[], metavar="SPEC",
                        help="also play the same episodes with a policy that has no checkpoint: random, bang-bang, "
                        "or module:function (e.g. dreamscope.envs.airhockey:chase_policy); repeatable")
    parser.add_argument("--envs", metavar="K", default="8", help="envs stepped together (default 8)")
    parser.add_argument("--env", metavar="SPEC", help="evaluate on another env with the same observation and "
                        "action sizes, e.g. airhockey for a policy trained on airhockey-idle (default: the run's)")
    parser.add_argument("--seed", metavar="S", default=str(DEFAULT_SEED),
                        help=f"seed of the evaluation episodes (default {DEFAULT_SEED}, apart from training's)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--plot", metavar="FILE", help="also draw score and won/lost share with their intervals, "
                        "one row per run and policy, references as lines, to this .png, .svg or .pdf file "
                        "(replaced if it exists)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def parse_policies(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in POLICIES]
    if unknown or not names:
        raise DreamscopeError(f"--policy {text!r}: expected a comma-separated subset of {', '.join(POLICIES)}")
    return list(dict.fromkeys(names))


def _interval(mean: float | None, lo: float | None, hi: float | None, fmt: str) -> str:
    if mean is None:
        return "-"
    return f"{mean:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]"


def table(results: list[Evaluation]) -> tuple[str, list[str], list[list[str]]]:
    """Title, column names and cells: one table for the terminal and the HTML report."""
    envs = {r.env for r in results}
    one_env = len(envs) == 1
    title = (f"{results[0].episodes} episodes per run and policy" + (f" on {next(iter(envs))}" if one_env else "")
             + "; 95 % intervals: Student t for the score, Wilson for the win rate")
    columns = ["run", "step", *([] if one_env else ["env"]), "policy", "score", "won", "lost", "length", "saturated"]
    rows = [[Path(r.run).name, "-" if r.policy == "reference" else str(r.step), *([] if one_env else [r.env]), r.policy,
             _interval(r.score_mean, r.score_lo, r.score_hi, "+.2f"), _interval(r.win_rate, r.win_lo, r.win_hi, ".0%"),
             "-" if r.loss_rate is None else f"{r.loss_rate:.0%}", f"{r.length_mean:.0f}", f"{r.saturation:.0%}"]
            for r in results]
    return title, columns, rows


def render(results: list[Evaluation], console=None) -> None:
    from rich.console import Console
    from rich.table import Table

    title, columns, rows = table(results)
    terminal = Table(title=title)
    for column in columns:
        terminal.add_column(column, justify="left" if column in ("run", "env", "policy") else "right")
    for row in rows:
        terminal.add_row(*row)
    console = console or Console()
    if not console.is_terminal:  # a log or a pipe: whole cells rather than 80 columns
        console.width = max(console.width, 160)
    console.print(terminal)


POLICY_COLOURS = {"sample": "tab:blue", "mode": "tab:orange", "reference": "0.45"}


def _interval_bar(ax, y: float, mean: float, lo: float, hi: float, colour: str, label: str | None = None) -> None:
    """A point with its interval; an unbounded interval (one episode) as the point alone."""
    bounded = math.isfinite(lo) and math.isfinite(hi)
    ax.errorbar(mean, y, xerr=[[mean - lo], [hi - mean]] if bounded else None, fmt="o", color=colour, capsize=3,
                label=label)


def plot_figure(results: list[Evaluation], seed: int):
    """Score and won/lost share per run and policy, each with its 95 % interval, one row each; the
    reference policies' means run through both panels as dotted lines, so where a checkpoint
    lies between random play and a scripted player is seen at a glance."""
    from matplotlib.figure import Figure

    one_env = len({r.env for r in results}) == 1
    labels = [f"{Path(r.run).name} · {r.policy}" + ("" if one_env else f" · {r.env}") for r in results]
    fig = Figure(figsize=(11, 1.2 + 0.32 * len(results)))
    ax_score, ax_win = fig.subplots(1, 2, sharey=True, gridspec_kw={"width_ratios": [3, 2]})
    rows = np.arange(len(results))[::-1]  # the table's first row on top
    for y, r in zip(rows, results):
        colour = POLICY_COLOURS.get(r.policy, "black")
        _interval_bar(ax_score, y, r.score_mean, r.score_lo, r.score_hi, colour)
        if r.win_rate is not None:
            _interval_bar(ax_win, y, r.win_rate, r.win_lo, r.win_hi, colour, label="won" if y == rows[0] else None)
            ax_win.plot(r.loss_rate, y, marker="x", color=colour, linestyle="none",
                        label="lost" if y == rows[0] else None)
        if r.policy == "reference":
            ax_score.axvline(r.score_mean, color=colour, linestyle=":", linewidth=1)
            if r.win_rate is not None:
                ax_win.axvline(r.win_rate, color=colour, linestyle=":", linewidth=1)
    ax_score.axvline(0, color="black", linewidth=0.6)
    ax_score.set_yticks(rows, labels, fontsize=8)
    ax_score.set_xlabel("score per episode (mean, 95 % Student t interval)", fontsize=8)
    ax_win.set_xlabel("share of episodes won (95 % Wilson interval) and lost (x)", fontsize=8)
    ax_win.set_xlim(0, 1)
    for ax in (ax_score, ax_win):
        ax.grid(axis="x", alpha=0.3)
        ax.tick_params(axis="x", labelsize=8)
    if ax_win.get_legend_handles_labels()[0]:
        ax_win.legend(fontsize=8, loc="lower right")
    envs = f" on {results[0].env}" if one_env else ""
    fig.suptitle(f"{results[0].episodes} new episodes per row{envs}, seed {seed}; "
                 "blue: sampled, orange: mode, grey: reference (dotted: its mean)", fontsize=9)
    fig.tight_layout()
    return fig


def check_plot_path(path: str) -> None:
    """A plot path whose directory exists and whose suffix names a format matplotlib writes."""
    from matplotlib.backend_bases import FigureCanvasBase

    from dreamscope.report.html import check_writable

    check_writable(path, "plot", "evaluation.png")
    formats = FigureCanvasBase.get_supported_filetypes()
    if Path(path).suffix.lower().lstrip(".") not in formats:
        raise DreamscopeError(f"--plot {path}: unknown image format {Path(path).suffix or '(no suffix)'}; "
                              f"expected a file ending in one of {', '.join('.' + f for f in sorted(formats))}")


def evaluation_html_section(saved: dict) -> str:
    """The report's section from `dreamscope evaluate --json` output (every string escaped)."""
    from dreamscope.report.html import esc, table_html

    title, columns, rows = table([Evaluation(**r) for r in saved["evaluations"]])
    return ('<section class="evaluation"><h2>Evaluation: new episodes from the checkpoint</h2>'
            f'<p>{esc(title)}; seed {esc(saved["seed"])}. A mode that scores where the samples do not is learning '
            'that the entropy hides.</p>'
            + table_html(columns, ([esc(cell) for cell in row] for row in rows)) + '</section>')


def run(args: argparse.Namespace) -> int:
    episodes = int_option("--episodes", args.episodes, 1)
    envs = min(int_option("--envs", args.envs, 1), episodes)
    seed = int_option("--seed", args.seed, 0)
    policies = parse_policies(args.policy)
    bar = progress_bar(not args.no_progress and not args.json, "evaluate")
    if not args.run_dirs and not (args.reference and args.env):
        raise DreamscopeError("expected RUN_DIR (one or more), or --reference SPEC with --env SPEC to play "
                              "only reference policies")
    for spec in args.reference:  # a misspelt reference or plot path fails now, not after the runs' episodes
        reference_policy(spec, action_dim=1, seed=0)
    if args.plot is not None:
        check_plot_path(args.plot)
    run_dirs = expand_run_dirs(args.run_dirs)
    results: list[Evaluation] = []
    with bar or contextlib.nullcontext():
        task = bar.add_task("", total=len(run_dirs) * len(policies) * episodes, what="") if bar else None
        advance = (lambda: bar.advance(task)) if bar else (lambda: None)
        for run_dir in run_dirs:
            if bar:
                bar.update(task, what=Path(run_dir).name)
            results += evaluate_run(run_dir, policies, episodes, envs, seed, args.env, args.device, advance)
        # The references play each env the runs were evaluated on, with their action repeat.
        targets = list(dict.fromkeys((r.env, r.action_repeat) for r in results)) or [(args.env, 1)]
        if bar:
            bar.update(task, total=bar.tasks[0].total + len(targets) * len(args.reference) * episodes)
        for (env_spec, repeat), spec in itertools.product(targets, args.reference):
            if bar:
                bar.update(task, what=spec)
            results.append(evaluate_reference(spec, episodes, envs, seed, env_spec, repeat, advance))
    if args.json:
        print(json.dumps({"episodes": episodes, "seed": seed, "evaluations": [asdict(r) for r in results]},
                         indent=2, ensure_ascii=False))
    else:
        render(results)
    if args.plot is not None:
        plot_figure(results, seed).savefig(args.plot, dpi=120)
    return 0

