"""Train a grid of settings × seeds in parallel (locally or on a Ray cluster) and diagnose every run.

Each trial is an ordinary run directory under --logdir, named from its settings, so that
`dreamscope diagnose`, `probe` and `train --resume` work on it as on any other run. Running
the same sweep again retrains nothing that finished and resumes what was interrupted; a
directory holding a different run is never written into. The results go to sweep.csv,
sweep.json and sweep.png in --logdir, and as one table to the terminal.

Ray Tune schedules the trials (`pip install 'dreamscope[sweep]'`): one CPU and one torch
thread each. With --address the trials run on that cluster, whose workers must have
dreamscope installed and see --logdir at the same path (a shared filesystem).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from dreamscope.config import PRESETS, Config, apply_overrides, compose, flatten, load_run_config, parse_set_args
from dreamscope.errors import DreamscopeError
from dreamscope.run_files import CHECKPOINT, CONFIG, EVALUATION

#: The share of a run's last `episode/score` points that its final score averages, and of its
#: first points after the prefill that its early score averages.
FINAL_FRACTION = 0.2
#: What a trial's final score is, by --score-by: its logged episodes, or new episodes played from its
#: checkpoint (`dreamscope evaluate`), whose score does not carry the noise of exploration and learning.
SCORE_SOURCES = {"training": f"mean of the last {FINAL_FRACTION:.0%} of episode/score points",
                 "sample": "mean score of {episodes} new episodes, policy sampled (dreamscope evaluate)",
                 "mode": "mean score of {episodes} new episodes, the policy's mode (dreamscope evaluate)"}
#: The fewest episode/score points after the prefill from which a score trend is read.
MIN_TREND_POINTS = 10
#: A seed's score "rose" when its one-sided rise p is below this.
RISE_ALPHA = 0.05
#: Keys the sweep decides itself: the seed comes from --seeds, and a trial has one CPU.
_OWN_KEYS = {"run.seed": "use --seeds", "run.threads": "each trial uses one CPU and one torch thread"}
#: What a trial's summary measures at the end of its run (final score, win rate and reward-head
#: hit rate, last signals). The early score and the p-value of a rise say whether the agent
#: learned at all; the hit rate whether sparse rewards reach the world model.
#: Each measure with its column header in the terminal table.
_MEASURED_HEADERS = {"score": "score", "score_early": "early score", "score_rise_p": "rise p", "win_rate": "win",
                     "head_hit_rate": "reward hits", "entropy": "entropy", "entropy_action": "H(action)", "std": "σ",
                     "saturation_frac": "saturated"}
_MEASURED = tuple(_MEASURED_HEADERS)
#: What a finished trial reports into its row (an errored trial's row holds None for each).
_TRIAL_KEYS = (*_MEASURED, "verdict", "answer", "prefill_steps", "status", "seconds")
#: Config keys a rerun may change without making a finished trial a different run: how long, and
#: where and on how many threads it computes (a trial run first with `dreamscope train` joins the sweep).
_RESUMABLE_KEYS = {"run.steps", "run.device", "run.threads"}
#: Line colours per setting, none of them a verdict's colour, so the two panels cannot be confused.
_SETTING_COLOURS = ("tab:blue", "tab:green", "tab:cyan", "tab:olive", "tab:pink", "navy", "teal", "goldenrod")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--logdir", required=True,
                        help="sweep directory: one run directory per trial, the results, Tune's state")
    parser.add_argument("--env", help="as in `dreamscope train` (default: airhockey)")
    parser.add_argument("--preset", default="size1m", choices=list(PRESETS), help="model size (default: size1m)")
    parser.add_argument("--config", action="append", help="YAML file of config sections, or a bundled config's name, "
                        "for every trial; applied after the preset; repeatable: later files override earlier ones")
    parser.add_argument("--steps", type=int, help="agent steps per trial (default: run.steps)")
    parser.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2,...",
                        help="a config key and the values to try; repeatable: the sweep is their cartesian product")
    parser.add_argument("--variant", action="append", default=[], metavar="KEY=V[,KEY=V...]",
                        help="one setting of several keys at once; repeatable: the sweep tries each variant (crossed "
                        "with --grid), e.g. a baseline and two remedies; a key a variant leaves out keeps the value "
                        "every trial shares")
    parser.add_argument("--baseline", metavar="KEY=V[,KEY=V...]",
                        help="the setting the others are compared with (e.g. the control): each other setting's "
                        "seeds' final scores are tested against its seeds' (one-sided Mann–Whitney p)")
    parser.add_argument("--score-by", choices=list(SCORE_SOURCES), default="training",
                        help="a trial's final score and win rate: from its logged episodes (training, the default), "
                        "or from --eval-episodes new episodes played from its checkpoint with the policy sampled "
                        "(sample) or its mode (mode); cached in the trial's evaluation.json")
    parser.add_argument("--eval-episodes", type=int, default=200, metavar="N",
                        help="episodes per trial for --score-by sample or mode (default 200)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], metavar="SEED",
                        help="seeds per setting (default: 0)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a config key for every trial; repeatable")
    parser.add_argument("--max-concurrent", type=int, metavar="N",
                        help="trials at once (default: as many as free CPUs)")
    parser.add_argument("--gpus-per-trial", type=float, default=0.0, metavar="F",
                        help="share of a GPU each trial reserves through Ray, in (0, 1]: 0.25 runs four trials per "
                             "GPU; trials then train on cuda (default 0: CPU only)")
    parser.add_argument("--address", help="join this Ray cluster (e.g. auto) instead of starting a local instance")
    parser.add_argument("--report", action="store_true",
                        help="train nothing: summarise what each trial's directory holds so far (e.g. while the "
                        "sweep runs elsewhere), with the step each reached")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of the table")
    parser.add_argument("--no-progress", action="store_true", help="no line per finished trial")


# ---------------------------------------------------------------------------------- the grid
def parse_grid(items: list[str]) -> dict[str, list[str]]:
    """``KEY=V1,V2`` items as {key: [raw values]}, in the order given; shape errors only (values are checked later)."""
    grid: dict[str, list[str]] = {}
    for item in items:
        key, sep, values = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise DreamscopeError(f"--grid {item!r}: expected KEY=V1,V2,..., e.g. actor.entropy_scale=0,3e-4,3e-3")
        raw = [v.strip() for v in values.split(",")]
        if raw == [""]:
            raise DreamscopeError(f"--grid {item!r}: {key} has no values; expected KEY=V1,V2,...")
        if "" in raw:
            raise DreamscopeError(f"--grid {item!r}: {key} has an empty value (two commas or a trailing comma)")
        if key in grid:
            raise DreamscopeError(f"--grid {item!r}: {key} is already swept by another --grid")
        if key in _OWN_KEYS:
            raise DreamscopeError(f"--grid {item!r}: {key} cannot be swept ({_OWN_KEYS[key]})")
        grid[key] = raw
    return grid


def parse_pairs(item: str, option: str, example: str) -> dict[str, str]:
    """``K1=V1,K2=V2`` as {key: raw value}: one setting of several keys (--variant, --baseline); shape errors only."""
    pairs: dict[str, str] = {}
    for pair in item.split(","):
        key, sep, value = (part.strip() for part in pair.partition("="))
        if not sep or not key or not value:
            raise DreamscopeError(f"{option} {item!r}: expected KEY=VALUE[,KEY=VALUE...], e.g. {example}")
        if key in pairs:
            raise DreamscopeError(f"{option} {item!r}: {key} is given twice")
        if key in _OWN_KEYS:
            raise DreamscopeError(f"{option} {item!r}: {key} cannot be swept ({_OWN_KEYS[key]})")
        pairs[key] = value
    return pairs


def parse_variants(items: list[str]) -> list[dict[str, str]]:
    """``K1=V1,K2=V2`` items as [{key: raw value}], in the order given; shape errors only."""
    return [parse_pairs(item, "--variant", "actor.entropy_space=action,actor.entropy_control=target")
            for item in items]


def find_baseline(item: str | None, trials: list[Trial]) -> dict[str, str] | None:
    """The settings (without the seed) of the one setting that ``--baseline K=V[,K=V...]`` names, its
    values compared as the trials' configs hold them (``3e-3`` names ``0.003``); None without --baseline."""
    if item is None:
        return None
    configs: dict[tuple, dict] = {}  # each setting (its keys and values but the seed) -> a trial's config
    for t in trials:
        configs.setdefault(tuple((k, v) for k, v in t.settings.items() if k != "seed"), t.config)
    varied = [key for key, _ in next(iter(configs))]
    wanted = {}
    for key, value in parse_pairs(item, "--baseline", "actor.entropy_space=distribution").items():
        if key not in varied:
            raise DreamscopeError(f"--baseline {item!r}: {key} is not a key the sweep varies; accepted: "
                                  f"{', '.join(varied) or 'none (give --grid or --variant)'}")
        wanted[key] = flatten(apply_overrides(Config(), {key: value}, origin="--baseline").to_dict())[key]
    matches = [dict(s) for s, config in configs.items() if all(config[k] == v for k, v in wanted.items())]
    if len(matches) != 1:
        names = "; ".join(trial_name(dict(s)) or "(no key varied)" for s in configs)
        raise DreamscopeError(f"--baseline {item!r} names {len(matches)} of the sweep's settings; it must name "
                              f"exactly one of: {names}")
    return matches[0]


def beats_baseline_p(scores: list[float], baseline: list[float]) -> float | None:
    """One-sided Mann–Whitney p that a setting's seeds score higher than the baseline's: rank-based,
    so one lucky seed does not decide it (exact for small samples without ties, as scipy chooses).
    None when either side has no score."""
    if not scores or not baseline:
        return None
    from scipy.stats import mannwhitneyu

    return float(mannwhitneyu(scores, baseline, alternative="greater").pvalue)


def expand(grid: dict[str, list[str]], seeds: list[int],
           variants: list[dict[str, str]] | None = None) -> list[dict[str, str]]:
    """Each variant crossed with the cartesian product of the grid's values, each with every seed:
    variants vary slowest, seeds fastest."""
    combos = list(itertools.product(*grid.values())) if grid else [()]
    return [{**variant, **dict(zip(grid, combo)), "seed": str(seed)}
            for variant in (variants or [{}]) for combo in combos for seed in seeds]


def trial_name(settings: dict[str, str]) -> str:
    """``key=value,...,seed=S``: what the trial's run directory is called, readable in `ls`."""
    return ",".join(f"{k}={v}" for k, v in settings.items()).replace(os.sep, "_")


@dataclass
class Trial:
    """One run of the sweep, as plain data so that Tune can ship it to a worker."""

    name: str
    settings: dict[str, str]  # grid keys (raw values as given) and "seed"
    config: dict  # the full flat config, validated
    directory: str  # absolute, so that it means the same on every Ray worker
    score_by: str = "training"  # --score-by: where its final score comes from
    eval_episodes: int = 200  # --eval-episodes


def base_config(args: argparse.Namespace) -> Config:
    """The preset, then --config, then --env / --steps and --set: what every trial shares."""
    overrides = parse_set_args(args.set)
    for key in overrides:
        if key in _OWN_KEYS:
            raise DreamscopeError(f"--set {key}: the sweep sets it ({_OWN_KEYS[key]})")
    if args.env is not None:
        overrides["run.env"] = args.env
    if args.steps is not None:
        overrides["run.steps"] = str(args.steps)
    cfg = compose(args.preset, args.config, overrides)
    if args.gpus_per_trial > 0 and cfg.run.device == "cpu" and "run.device" not in overrides:
        cfg.run.device = "cuda"  # a GPU share means the GPU; only an explicit --set run.device=cpu says otherwise
    return cfg


def check_gpus(args: argparse.Namespace, devices: set[str]) -> None:
    """Refuse GPU settings Ray would only fail on later: it hides every GPU from a trial that reserves
    none, and a local sweep cannot reserve a GPU this machine does not have."""
    share = args.gpus_per_trial
    if not 0 <= share <= 1:
        raise DreamscopeError(f"--gpus-per-trial {share:g}: a trial trains on one device; accepted: a share "
                              "in (0, 1] of a GPU (0.5 runs two trials per GPU), or 0 for CPU only")
    for device in sorted(devices):
        on_cuda = device.startswith("cuda")
        if share > 0 and not on_cuda:
            raise DreamscopeError(f"--gpus-per-trial {share:g} with run.device={device!r}: a GPU share needs "
                                  "run.device=cuda (leave --set run.device out), or drop --gpus-per-trial")
        if share > 0 and device not in ("cuda", "cuda:0"):
            raise DreamscopeError(f"--gpus-per-trial {share:g} with run.device={device!r}: Ray shows each trial "
                                  "only the GPU it reserved, as cuda:0, so a card's index cannot be chosen; "
                                  "accepted: run.device=cuda (leave --set run.device out)")
        if share == 0 and on_cuda:
            raise DreamscopeError(f"run.device={device!r} needs --gpus-per-trial: Ray hides the GPUs from a trial "
                                  "that reserves none (e.g. --gpus-per-trial 1, or 0.5 for two trials per GPU)")
    if share > 0 and args.address is None:
        import torch

        if torch.cuda.device_count() == 0:
            raise DreamscopeError(f"--gpus-per-trial {share:g}: this machine has no CUDA GPU that torch "
                                  f"{torch.__version__} can see; run the sweep on one, or join a cluster "
                                  "that has them with --address")


def trial_resources(args: argparse.Namespace) -> dict[str, float]:
    """What Ray reserves for each trial: one CPU (one torch thread), and its GPU share if any."""
    return {"cpu": 1, "gpu": args.gpus_per_trial} if args.gpus_per_trial > 0 else {"cpu": 1}


def plan(args: argparse.Namespace) -> tuple[dict[str, list[str]], list[Trial]]:
    """Every trial, each config validated and each directory checked, before anything starts."""
    if len(set(args.seeds)) != len(args.seeds):
        raise DreamscopeError(f"--seeds {' '.join(map(str, args.seeds))}: a seed is repeated")
    if args.eval_episodes < 1:
        raise DreamscopeError(f"--eval-episodes {args.eval_episodes}: must be at least 1")
    if args.max_concurrent is not None and args.max_concurrent < 1:
        raise DreamscopeError(f"--max-concurrent {args.max_concurrent}: must be at least 1")
    grid = parse_grid(args.grid)
    variants = parse_variants(args.variant)
    base = flatten(base_config(args).to_dict())
    variant_keys = list(dict.fromkeys(key for variant in variants for key in variant))
    given = {"--grid": set(grid), "--variant": set(variant_keys), "--set": set(parse_set_args(args.set))}
    for (a, keys_a), (b, keys_b) in itertools.combinations(given.items(), 2):
        if keys_a & keys_b:
            raise DreamscopeError(f"{', '.join(sorted(keys_a & keys_b))}: both in {a} and {b}; give it once")
    variants = _filled_variants(variants, variant_keys, base)
    for key, values in grid.items():  # each value alone first, so that the error names the one at fault
        coerced = [apply_overrides(Config(), {key: v}, origin=f"--grid {key}") for v in values]
        section, name = key.split(".")
        seen = [getattr(getattr(c, section), name) for c in coerced]
        if len(set(seen)) != len(seen):
            raise DreamscopeError(f"--grid {key}={','.join(values)}: a value is repeated")
    logdir = Path(args.logdir).resolve()
    trials = []
    for settings in expand(grid, args.seeds, variants):
        overrides = {k: v for k, v in settings.items() if k != "seed"}
        cfg = apply_overrides(apply_overrides(Config(), base), overrides, origin="--grid")
        cfg.run.seed, cfg.run.threads = int(settings["seed"]), 1
        name = trial_name(settings)
        trials.append(Trial(name, settings, flatten(cfg.to_dict()), str(logdir / name), args.score_by,
                            args.eval_episodes))
    check_gpus(args, {t.config["run.device"] for t in trials})
    for trial in trials:
        check_directory(trial)
    check_envs({t.config["run.env"] for t in trials})
    check_prefill_policies({t.config["run.prefill_policy"] for t in trials})
    axes = {key: list(dict.fromkeys(v[key] for v in variants)) for key in variant_keys}
    return {**axes, **grid}, trials


def _filled_variants(variants: list[dict[str, str]], keys: list[str], base: dict) -> list[dict[str, str]]:
    """Every variant with every variant key, the shared value filling the ones it leaves out, so
    that each trial has the same settings columns; each variant checked, and none twice."""
    filled, seen = [], {}
    for variant in variants:
        origin = f"--variant {','.join(f'{k}={v}' for k, v in variant.items())}"
        cfg = flatten(apply_overrides(apply_overrides(Config(), base), variant, origin=origin).to_dict())
        key = tuple(cfg[k] for k in keys)
        if key in seen:
            raise DreamscopeError(f"{origin}: the same setting as --variant {seen[key]}")
        seen[key] = origin.removeprefix("--variant ")
        filled.append({k: variant.get(k, str(base[k])) for k in keys})
    return filled


def check_envs(specs: set[str]) -> None:
    """Make each env once here, so that a misspelt --env fails now rather than in every trial."""
    from dreamscope.envs.factory import make_env

    for spec in sorted(specs):
        make_env(spec).close()


def check_prefill_policies(specs: set[str]) -> None:
    """Import each scripted prefill policy here, so that a misspelt one fails now, not in every trial."""
    from dreamscope.train import load_prefill_policy

    for spec in sorted(specs):
        load_prefill_policy(spec, action_dim=1)  # the action size is checked on the policy's first call


def check_directory(trial: Trial) -> None:
    """Refuse a trial directory that holds anything but an earlier run of this same trial."""
    from dreamscope.envs.factory import resolve_env_id

    path = Path(trial.directory)
    if not path.exists() or not any(path.iterdir()):
        return
    if not (path / CONFIG).exists():
        raise DreamscopeError(f"{path} exists and is not a dreamscope run; the sweep will not write into it "
                              "(move it, or use another --logdir)")
    theirs = flatten(load_run_config(path / CONFIG).to_dict())
    ours = {**trial.config, "run.env": resolve_env_id(trial.config["run.env"])}
    differ = [f"{k}: {theirs.get(k)!r} there, {v!r} here" for k, v in ours.items()
              if k not in _RESUMABLE_KEYS and theirs.get(k) != v]
    if differ:
        raise DreamscopeError(f"{path} holds a run with another config ({'; '.join(differ[:3])}); "
                              "the sweep will not overwrite it (move it, or use another --logdir)")


# ---------------------------------------------------------------------------------- one trial
def run_trial(spec: dict) -> dict:
    """Train (or resume, or skip when finished), then diagnose: the row a trial reports."""
    import torch

    from dreamscope.train import Trainer

    torch.set_num_threads(1)
    cfg = apply_overrides(Config(), spec["config"], origin=spec["name"])
    path = Path(spec["directory"])
    started = time.time()
    if (path / CHECKPOINT).exists() and _checkpoint_step(path / CHECKPOINT) >= cfg.run.steps:
        status = "done"
    else:
        status = "resumed" if (path / CONFIG).exists() else "trained"
        Trainer(cfg, path, resume=status == "resumed").train(progress=False)
    return {**scored(path, spec), "status": status, "seconds": round(time.time() - started, 1)}


def report_trial(spec: dict) -> dict:
    """A trial's row from what its directory holds now, trained no further: ``done``, or the step
    its last checkpoint reached; an error row when it has not started or cannot be read."""
    path = Path(spec["directory"])
    if not (path / CONFIG).exists():
        return {"error": "not started", "status": "missing"}
    step = _checkpoint_step(path / CHECKPOINT) if (path / CHECKPOINT).exists() else 0
    try:
        summary = scored(path, spec)
    except DreamscopeError as err:
        return {"error": str(err), "status": f"at {step}"}
    status = "done" if step >= spec["config"]["run.steps"] else f"at {step}"
    return {**summary, "status": status, "seconds": None}


def scored(path: Path, spec: dict) -> dict:
    """The trial's summary; with --score-by sample or mode, its score and win rate from new episodes."""
    row = summarise(path)
    if spec["score_by"] != "training":
        played = evaluation(path, spec["score_by"], spec["eval_episodes"]) if (path / CHECKPOINT).exists() else {}
        row.update(score=played.get("score_mean"), win_rate=played.get("win_rate"))
    return row


def evaluation(path: Path, policy: str, episodes: int) -> dict:
    """`dreamscope evaluate` of the trial's checkpoint, kept in its evaluation.json per checkpoint step,
    so that a rerun or a --report does not play the episodes again."""
    from dreamscope.evaluate import DEFAULT_SEED, evaluate_run

    key = f"{policy},{episodes} episodes,seed {DEFAULT_SEED},step {_checkpoint_step(path / CHECKPOINT)}"
    try:
        cache = json.loads((path / EVALUATION).read_text())
    except (OSError, ValueError):  # none yet, or cut short by a kill: it is only a cache
        cache = {}
    if key not in cache:
        (result,) = evaluate_run(path, [policy], episodes, envs=min(8, episodes), seed=DEFAULT_SEED)
        cache[key] = asdict(result)
        tmp = path / (EVALUATION + ".tmp")
        tmp.write_text(json.dumps(cache, indent=2))
        os.replace(tmp, path / EVALUATION)
    return cache[key]


def _checkpoint_step(path: Path) -> int:
    import torch

    return int(torch.load(path, map_location="cpu", weights_only=True)["counters"]["step"])


def score_trend(steps, scores, prefill: int) -> tuple[float | None, float | None]:
    """Whether the agent learned: the mean of the first fifth of the score points logged after
    the prefill (the prefill's random or scripted play is not the agent's), and the one-sided
    Mann–Kendall p-value that the score rises over all of them. Rank-based, so a ±10 goal
    weighs no more than any other win. (None, None) with fewer than MIN_TREND_POINTS points."""
    import numpy as np

    from dreamscope.stats import trend_test

    steps, scores = np.asarray(steps, dtype=np.float64), np.asarray(scores, dtype=np.float64)
    keep = (steps > prefill) & np.isfinite(scores)
    steps, scores = steps[keep], scores[keep]
    if len(scores) < MIN_TREND_POINTS:
        return None, None
    early = float(scores[:math.ceil(FINAL_FRACTION * len(scores))].mean())
    trend = trend_test(steps, scores)
    return early, trend.p / 2 if trend.z > 0 else 1 - trend.p / 2


def pooled_rise_p(rise_ps: list[float]) -> float | None:
    """Fisher's combination of the seeds' one-sided p-values: whether a setting makes the score rise
    across its seeds, where each seed alone is a noisy test. −2 Σ ln p is χ² with 2k degrees of
    freedom when no seed rises; its tail has a closed form for even degrees of freedom."""
    if not rise_ps:
        return None
    half = -sum(math.log(max(p, 1e-300)) for p in rise_ps)  # x/2 for x = −2 Σ ln p
    return min(1.0, math.exp(-half) * sum(half ** i / math.factorial(i) for i in range(len(rise_ps))))


def summarise(path: Path) -> dict:
    """Final and early score, whether it rose, win rate and entropy signals of a run, the doctor's
    verdict on it, and its prefill's length (the plot shades it)."""
    import numpy as np

    from dreamscope.diagnostics.doctor import diagnose
    from dreamscope.logs import read_run

    run = read_run(path)
    diagnosis = diagnose(run)
    prefill = load_run_config(path / CONFIG).run.prefill
    scores = run.get("episode/score")
    early, rise_p = score_trend(scores.steps, scores.values, prefill) if scores is not None else (None, None)

    def finite(name: str):
        series = run.get(name)
        return series.values[np.isfinite(series.values)] if series is not None else np.array([])

    def final_mean(name: str) -> float | None:
        values = finite(name)
        return float(values[-max(1, math.ceil(FINAL_FRACTION * len(values))):].mean()) if len(values) else None

    def last(name: str) -> float | None:
        values = finite(name)
        return float(values[-1]) if len(values) else None

    return {"score": final_mean("episode/score"), "score_early": early, "score_rise_p": rise_p,
            "win_rate": final_mean("episode/win"),
            "head_hit_rate": final_mean("reward/head_hit_rate"),
            "entropy": last("policy/entropy"), "entropy_action": last("policy/entropy_action"),
            "std": last("policy/std_mean"), "saturation_frac": last("policy/saturation_frac"),
            "verdict": diagnosis.verdict, "answer": diagnosis.answer, "prefill_steps": prefill}


def _tune_trainable(config: dict) -> None:
    from ray import tune

    tune.report(run_trial(config["trial"]))


def _tune_dirname(trial) -> str:
    return trial.trial_id  # the run directory carries the readable name; Tune's own stays short


# ---------------------------------------------------------------------------------- Ray Tune
def run_with_ray(trials: list[Trial], args: argparse.Namespace) -> dict[str, dict]:
    """Run every trial through Ray Tune; {trial name: its row, or {"error": ...}}."""
    try:
        import ray
        from ray import tune
    except ImportError:
        raise DreamscopeError("`dreamscope sweep` needs Ray Tune: pip install 'dreamscope[sweep]'") from None
    import logging

    logdir = Path(args.logdir).resolve()
    logdir.mkdir(parents=True, exist_ok=True)
    progress = _progress_callback(len(trials), enabled=not args.no_progress)
    quiet = {"log_to_driver": False, "logging_level": logging.ERROR,
             "runtime_env": {"env_vars": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}}}
    if args.address:
        ray.init(address=args.address, **quiet)
    else:
        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, **quiet)
    # Tune's newer output engine prints its header even at verbose=0; the older one is silent.
    saved_output = os.environ.get("RAY_AIR_NEW_OUTPUT")
    os.environ["RAY_AIR_NEW_OUTPUT"] = "0"
    try:
        tuner = tune.Tuner(
            tune.with_resources(_tune_trainable, trial_resources(args)),
            param_space={"trial": tune.grid_search([asdict(t) for t in trials])},
            tune_config=tune.TuneConfig(max_concurrent_trials=args.max_concurrent, trial_dirname_creator=_tune_dirname),
            run_config=tune.RunConfig(name=time.strftime("sweep-%Y%m%d-%H%M%S"), storage_path=str(logdir / "tune"),
                                      verbose=0, callbacks=[progress]),
        )
        results = tuner.fit()
    finally:
        ray.shutdown()
        if saved_output is None:
            os.environ.pop("RAY_AIR_NEW_OUTPUT")
        else:
            os.environ["RAY_AIR_NEW_OUTPUT"] = saved_output
    rows = {}
    for result in results:
        name = result.config["trial"]["name"]
        if result.error is not None:
            rows[name] = {"error": _error_line(result.error)}
        elif "verdict" not in (result.metrics or {}):
            rows[name] = {"error": "interrupted: run the sweep again to resume it"}
        else:
            rows[name] = result.metrics
    return rows


def _error_line(err: BaseException) -> str:
    """The trial's own exception, without Ray's wrapping and traceback."""
    while getattr(err, "cause", None) is not None:
        err = err.cause
    lines = [line for line in str(err).strip().splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[-1] if lines else ''}"


def _progress_callback(total: int, enabled: bool):
    """A Tune callback printing one line to stderr as each trial finishes (stdout stays clean for --json)."""
    from ray import tune

    class ProgressLine(tune.Callback):
        done = 0

        def _line(self, trial, text: str) -> None:
            self.done += 1
            if enabled:
                print(f"[{self.done}/{total}] {trial.config['trial']['name']}: {text}", file=sys.stderr, flush=True)

        def on_trial_complete(self, iteration, trials, trial, **info):
            r = trial.last_result or {}
            score = "-" if r.get("score") is None else f"{r['score']:.3g}"
            status = f"{r.get('status', '?')} in {r.get('seconds', '?')} s"
            self._line(trial, f"{r.get('verdict', '?')}, score {score} ({status})")

        def on_trial_error(self, iteration, trials, trial, **info):
            self._line(trial, "ERROR")

    return ProgressLine()


# ---------------------------------------------------------------------------------- results
def collect(args: argparse.Namespace, grid: dict[str, list[str]], trials: list[Trial],
            outcomes: dict[str, dict], baseline: dict[str, str] | None = None) -> dict:
    """What sweep.json holds: one row per trial and, per setting, the final score's mean ± std over
    seeds, whether the score rose, and (with a baseline) whether it beats the baseline's."""
    import numpy as np

    rows = []
    for t in trials:
        out = outcomes.get(t.name, {"error": "did not run"})
        row = {"name": t.name, "settings": {k: v for k, v in t.settings.items() if k != "seed"},
               "seed": int(t.settings["seed"]), "directory": t.directory}
        if "error" in out:
            status = out.get("status", "error")  # --report: a trial not started, or not readable yet, failed nothing
            failed = status == "error"
            row.update(dict.fromkeys(_TRIAL_KEYS), verdict="ERROR" if failed else "-", answer="error" if failed else "-",
                       status=status, error=out["error"])
        else:
            row.update({k: out[k] for k in _TRIAL_KEYS}, error=None)
        rows.append(row)
    groups = []
    for settings, members in itertools.groupby(rows, key=lambda r: tuple(r["settings"].items())):
        members = list(members)
        scores = np.array([r["score"] for r in members if r["score"] is not None])
        rise_ps = [r["score_rise_p"] for r in members if r["score_rise_p"] is not None]
        verdicts: dict[str, int] = {}
        for r in members:
            verdicts[r["verdict"]] = verdicts.get(r["verdict"], 0) + 1
        groups.append({"settings": dict(settings), "seeds": [r["seed"] for r in members], "scored": len(scores),
                       "scores": scores.tolist(), "score_mean": float(scores.mean()) if len(scores) else None,
                       "score_std": float(scores.std(ddof=1)) if len(scores) > 1 else None,
                       "rose": sum(p < RISE_ALPHA for p in rise_ps), "rise_tested": len(rise_ps),
                       "rise_p_pooled": pooled_rise_p(rise_ps), "verdicts": verdicts})
    control = next((g["scores"] for g in groups if g["settings"] == baseline), None)
    for group in groups:
        group["beats_baseline_p"] = (beats_baseline_p(group["scores"], control)
                                     if control is not None and group["settings"] != baseline else None)
    return {"logdir": str(Path(args.logdir).resolve()), "grid": grid, "seeds": args.seeds,
            "final_score": SCORE_SOURCES[args.score_by].format(episodes=args.eval_episodes),
            "early_score": f"mean of the first {FINAL_FRACTION:.0%} of episode/score points after the prefill",
            "rise_p": "one-sided Mann–Kendall p that episode/score rises after the prefill (small: the agent learned)",
            "rise_p_pooled": f"Fisher's combination of the setting's seeds' rise p (rose: seeds with rise p < {RISE_ALPHA})",
            "baseline": baseline,
            "beats_baseline_p": "one-sided Mann–Whitney p that the setting's seeds' final scores exceed the baseline's",
            "trials": rows, "settings": groups}


#: What each trial's CSV row repeats from its setting's summary.
_SETTING_COLUMNS = ("score_mean", "score_std", "rise_p_pooled", "beats_baseline_p")
_CSV_COLUMNS = ("seed", "status", *_MEASURED, "verdict", "answer", *_SETTING_COLUMNS, "seconds", "directory", "error")


def write_csv(result: dict, path: Path) -> None:
    """One row per trial, its setting's mean and std alongside so that one file is enough for a plot."""
    by_setting = {tuple(g["settings"].items()): g for g in result["settings"]}
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["name", *result["grid"], *_CSV_COLUMNS])
        for row in result["trials"]:
            group = by_setting[tuple(row["settings"].items())]
            values = {**row, **{key: group[key] for key in _SETTING_COLUMNS}}
            writer.writerow([row["name"], *row["settings"].values(),
                             *("" if values[c] is None else values[c] for c in _CSV_COLUMNS)])


def _setting_labels(groups: list[dict], sep: str = "\n") -> list[str]:
    """One label per setting, naming only the keys whose value differs between settings (a key every
    setting shares tells them apart no better than none) and ``entropy_scale=3e-3`` for
    ``actor.entropy_scale``: the section adds length, not meaning, in a plot."""
    settings = [g["settings"] for g in groups]
    keys = [k for k in settings[0] if len(settings) == 1 or len({s.get(k) for s in settings}) > 1] if settings else []
    return [sep.join(f"{k.rpartition('.')[2]}={g['settings'][k]}" for k in keys) or "all" for g in groups]


def write_plot(result: dict, path: Path) -> None:
    """Three panels: final score per setting (seeds as points coloured by verdict, the mean as a
    bar), then the score and σ over training for every trial (one colour per setting): whether a
    remedy moved σ off its clamp, and whether learning followed, is read at a glance there."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from dreamscope.report.style import ERROR_COLOUR, verdict_colour

    groups = result["settings"]
    rises = [f"rise p {_fmt(g['rise_p_pooled'])} ({g['rose']}/{g['rise_tested']} rose)" if g["rise_tested"] else ""
             for g in groups]
    labels = ["\n".join(filter(None, parts)) for parts in zip(_setting_labels(groups), rises,
                                                              (_baseline_note(result, g) for g in groups))]
    # Each setting gets room for its longest label line (~0.075 in per character at 8 pt), so neighbours never overlap.
    per_setting = max(1.3, 0.075 * max(len(line) for label in labels for line in label.split("\n")))
    first, curves = max(3.0, per_setting * len(groups) + 0.8), 5.5
    fig, (ax, ax_score, ax_std) = plt.subplots(1, 3, figsize=(first + 2 * curves, 4.2),
                                               gridspec_kw={"width_ratios": [first, curves, curves]})
    shown: set[str] = set()
    for x, group in enumerate(groups):
        members = [r for r in result["trials"] if r["settings"] == group["settings"] and r["score"] is not None]
        offsets = [0.0] if len(members) == 1 else [0.3 * (i / (len(members) - 1) - 0.5) for i in range(len(members))]
        for dx, row in zip(offsets, members):
            verdict = row["verdict"]
            colour = ERROR_COLOUR if verdict == "ERROR" else verdict_colour(verdict)
            ax.scatter(x + dx, row["score"], color=colour, s=36, zorder=3,
                       label=None if verdict in shown else verdict)
            shown.add(verdict)
        if group["score_mean"] is not None:
            ax.hlines(group["score_mean"], x - 0.25, x + 0.25, color="black", linewidth=1.5, zorder=2)
    ax.set_xticks(range(len(groups)), labels, fontsize=8)
    for tick, colour in zip(ax.get_xticklabels(), _setting_colours(len(groups))):
        tick.set_color(colour)
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.set_ylabel(f"final score ({result['final_score'].replace(' points', '')})", fontsize=8)
    ax.set_title(f"{Path(result['logdir']).name}: seeds {', '.join(map(str, result['seeds']))}; bar = mean", fontsize=9)
    if shown:
        ax.legend(title="verdict", fontsize=7, title_fontsize=7, loc="best")
    ax.grid(axis="y", alpha=0.3)
    runs = _read_trial_runs(result)
    # The prefill's play is random or scripted, not the agent's: shaded, and never averaged with the agent's scores.
    prefill = max((row["prefill_steps"] for row in result["trials"] if row["directory"] in runs), default=0)
    _plot_curves(ax_score, result, runs, "episode/score", f"episode score over training (mean of {SCORE_SMOOTHING})",
                 smooth=SCORE_SMOOTHING, split_at=prefill)
    _plot_curves(ax_std, result, runs, "policy/std_mean", "policy σ (policy/std_mean) over training", log=True)
    if prefill:
        for panel in (ax_score, ax_std):
            panel.axvspan(0, prefill, color="0.85", zorder=0, label="prefill" if panel is ax_score else None)
    # One legend for both curve panels, below them: inside a panel, settings of three keys each cover the curves.
    handles, labels = ax_score.get_legend_handles_labels()
    if not handles:  # no trial logged a score yet; σ may be there
        handles, labels = ax_std.get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="lower center", ncol=min(3, len(handles)), fontsize=8, frameon=False)
        fig.tight_layout(rect=(0, 0.05 * ((len(handles) + 2) // 3), 1, 1))
    else:
        fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


#: Consecutive logged `episode/score` points the score-over-training panel averages.
SCORE_SMOOTHING = 5


def _read_trial_runs(result: dict) -> dict:
    """Each finished or interrupted trial's run, read back from its directory (once, for all panels)."""
    from dreamscope.logs import read_run

    runs = {}
    for row in result["trials"]:
        if row["error"]:
            continue
        try:
            runs[row["directory"]] = read_run(row["directory"])
        except DreamscopeError:
            continue
    return runs


def _setting_colours(count: int) -> list[str]:
    """The colour of each setting, the same in every panel (the tick labels of the first included)."""
    return [_SETTING_COLOURS[i % len(_SETTING_COLOURS)] for i in range(count)]


def _plot_curves(ax, result: dict, runs: dict, metric: str, title: str, log: bool = False, smooth: int = 1,
                 split_at: int = 0) -> None:
    """``metric`` over env steps for every trial, one colour per setting, as a running mean of ``smooth``
    points that restarts after step ``split_at``."""
    import numpy as np

    groups = result["settings"]
    drawn = False
    for colour, group, label in zip(_setting_colours(len(groups)), groups, _setting_labels(groups, ", ")):
        labelled = False
        for row in (r for r in result["trials"] if r["settings"] == group["settings"]):
            series = runs[row["directory"]].get(metric) if row["directory"] in runs else None
            if series is None:
                continue
            keep = np.isfinite(series.values)
            for part in (series.steps <= split_at, series.steps > split_at):
                steps, values = series.steps[keep & part], series.values[keep & part]
                if smooth > 1 and len(values) >= smooth:
                    values = np.convolve(values, np.full(smooth, 1 / smooth), mode="valid")
                    steps = steps[smooth - 1:]
                if not len(values):
                    continue
                ax.plot(steps, values, color=colour, linewidth=1.2, alpha=0.85, label=None if labelled else label)
                labelled = drawn = True
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("env steps", fontsize=8)
    if drawn:
        if log:
            from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

            ax.set_yscale("log")
            low, high = ax.get_ylim()
            ax.yaxis.set_major_formatter(ScalarFormatter())
            # Minor labels help within a decade; across several they crowd into an unreadable column,
            # so there the labelled ticks are 1, 2 and 5 of each decade (σ of 0.4 and 7 both get a label near them).
            if high < 10 * low:
                ax.yaxis.set_minor_formatter(ScalarFormatter())
            else:
                ax.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
                ax.yaxis.set_minor_formatter(NullFormatter())
            ax.tick_params(axis="y", which="both", labelsize=7)
    else:
        ax.text(0.5, 0.5, f"no {metric} logged", ha="center", va="center", transform=ax.transAxes)
    ax.grid(alpha=0.3)


def _baseline_note(result: dict, group: dict) -> str:
    """How a setting's final scores compare with the baseline's, for a table cell or a plot label."""
    if group["settings"] == result["baseline"]:
        return "baseline"
    return "" if group["beats_baseline_p"] is None else f"> baseline p {_fmt(group['beats_baseline_p'])}"


def _fmt(x: float | None) -> str:
    """Three significant digits, but whole numbers for scores in the hundreds and up rather than 1.34e+03."""
    if x is None:
        return "-"
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}"


def render(result: dict, console=None) -> None:
    """One table: the trials of each setting, then its mean ± std over seeds."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from dreamscope.report.style import answer_style

    console = console or Console()
    if not console.is_terminal:  # a log or a pipe: keep every column whole rather than fit 80 characters
        console.width = max(console.width, 200)
    table = Table(title=f"sweep {result['logdir']}",
                  caption=f"final score: {result['final_score']}; early score: {result['early_score']}; rise p: "
                          f"{result['rise_p']}; mean row: ± is the sample std over seeds, rise p is "
                          f"{result['rise_p_pooled']}"
                          + (f"; > baseline p: {result['beats_baseline_p']}" if result["baseline"] else ""))
    for key in result["grid"]:
        table.add_column(key)
    for column in ("seed", "status", *_MEASURED_HEADERS.values(), "verdict", "answer"):
        table.add_column(column, justify="right" if column not in ("status", "verdict", "answer") else "left")
    blank = [""] * len(result["grid"])
    for group in result["settings"]:
        members = [r for r in result["trials"] if r["settings"] == group["settings"]]
        for i, row in enumerate(members):
            setting = [Text(v) for v in row["settings"].values()] if i == 0 else blank
            answer = Text(row["error"] or row["answer"], style="bold magenta" if row["error"] else
                          answer_style(row["answer"]))
            table.add_row(*setting, str(row["seed"]), row["status"],
                          *(_fmt(row[k]) for k in _MEASURED),
                          Text(row["verdict"]), answer)
        spread = "" if group["score_std"] is None else f" ± {_fmt(group['score_std'])}"
        note = _baseline_note(result, group)
        spread += f" ({note})" if note else ""
        pooled = (f"{_fmt(group['rise_p_pooled'])} ({group['rose']}/{group['rise_tested']} rose)"
                  if group["rise_tested"] else "")
        table.add_row(*blank, "mean", "", Text(_fmt(group["score_mean"]) + spread, style="bold"), "",
                      Text(pooled, style="bold"), *[""] * (len(_MEASURED) - 1),
                      end_section=True)
    console.print(table)
    console.print(f"written: {Path(result['logdir']) / 'sweep.csv'}, sweep.json, sweep.png")


def run(args: argparse.Namespace) -> int:
    if args.report and not Path(args.logdir).is_dir():
        raise DreamscopeError(f"--logdir {args.logdir}: no such directory; --report summarises the trial "
                              "directories of a sweep that has started there")
    grid, trials = plan(args)
    baseline = find_baseline(args.baseline, trials)
    outcomes = {t.name: report_trial(asdict(t)) for t in trials} if args.report else run_with_ray(trials, args)
    result = collect(args, grid, trials, outcomes, baseline)
    logdir = Path(result["logdir"])
    write_csv(result, logdir / "sweep.csv")
    (logdir / "sweep.json").write_text(json.dumps(result, indent=2, allow_nan=False, ensure_ascii=False))
    write_plot(result, logdir / "sweep.png")
    if args.json:
        print(json.dumps(result, indent=2, allow_nan=False, ensure_ascii=False))
    else:
        render(result)
    return 0 if args.report else int(any(r["error"] for r in result["trials"]))
