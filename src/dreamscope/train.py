"""Train a DreamerV3 agent on a continuous-control env, measuring every entropy signal.

The run directory holds config.yaml (as the run was started), meta.json (what the doctor needs
to know about the policy), metrics.jsonl, TensorBoard events (tb/), checkpoint.pt and replay.npz.
A killed run continues with --resume RUN_DIR and loses at most one checkpoint interval; options
given with --resume change only what nothing saved depends on, and config_changes.jsonl records
each change.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import shutil
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from dreamscope.config import Config, PRESETS, _all_keys, compose, dump_yaml, load_run_config, parse_set_args
from dreamscope.envs.factory import resolve_env_id
from dreamscope.errors import DreamscopeError
from dreamscope.resume import option_sources, record, requested_changes
from dreamscope.run_files import CHECKPOINT, CONFIG, METRICS, REPLAY, REPLAY_STAGED, policy_meta, write_meta


DEFAULT_PRESET = "size1m"


def config_help() -> str:
    """Every config key with its default, for `--help`."""
    defaults = Config()
    lines = ["config keys (set with --set KEY=VALUE or in a --config YAML file):"]
    for key in _all_keys(defaults):
        section, name = key.split(".")
        lines.append(f"  {key} = {getattr(getattr(defaults, section), name)!r}")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = config_help()
    parser.add_argument("--env", help="airhockey | airhockey-dense | airhockey-idle | airhockey-idle-dense | Gymnasium id (Pendulum-v1) | dmc:DOMAIN-TASK | module:EnvId (default: airhockey)")
    parser.add_argument("--preset", choices=list(PRESETS), help="model size (default: size1m)")
    parser.add_argument("--steps", type=int, help="agent steps to train for (default: run.steps)")
    parser.add_argument("--logdir", help="run directory (default: runs/ENV-TIMESTAMP)")
    parser.add_argument("--config", action="append", help="YAML file of config sections, or a bundled config's name "
                        "(e.g. airhockey_seed_small), applied after the preset; repeatable: later files override earlier ones")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config key; repeatable")
    parser.add_argument("--seed", type=int, help="random seed (default: run.seed)")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last checkpoint; "
                        "--steps, --set and --config may change the keys nothing saved depends on (steps, intervals, "
                        "device, learning rate, fixed eta, ...), and a change to any other key is refused")
    parser.add_argument("--overwrite", action="store_true", help="allow writing into an existing run directory")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar (for logs and CI)")


def build_config(args: argparse.Namespace) -> Config:
    overrides = parse_set_args(args.set)
    for flag, key in (("env", "run.env"), ("steps", "run.steps"), ("seed", "run.seed")):
        if getattr(args, flag) is not None:
            overrides[key] = str(getattr(args, flag))
    return compose(args.preset or DEFAULT_PRESET, args.config, overrides)


def run(args: argparse.Namespace) -> int:
    changes = {}
    if args.resume:
        logdir = Path(args.resume)
        if not (logdir / CONFIG).exists():
            raise DreamscopeError(f"--resume {logdir}: no {CONFIG} there; is it a dreamscope run directory?")
        if args.logdir is not None and Path(args.logdir).resolve() != logdir.resolve():
            raise DreamscopeError(f"--logdir {args.logdir} with --resume {logdir}: a resumed run continues in its own "
                                  "directory; drop --logdir (or copy the run directory there and resume that)")
        cfg, changes = requested_changes(load_run_config(logdir / CONFIG), option_sources(args), resolve_env_id,
                                         str(logdir))
    else:
        cfg = build_config(args)
        logdir = Path(args.logdir or f"runs/{cfg.run.env.replace('/', '_').replace(':', '_')}-{time.strftime('%Y%m%d-%H%M%S')}")
    trainer = Trainer(cfg, logdir, resume=bool(args.resume), overwrite=args.overwrite)
    if changes:
        path = record(logdir, trainer.step, changes)
        applied = ", ".join(f"{key} {c['from']!r} -> {c['to']!r} ({c['by']})" for key, c in changes.items())
        print(f"resumed at step {trainer.step} with {applied}; recorded in {path}")
    trainer.train(progress=not args.no_progress)
    print(f"run written to {logdir}")
    return 0


def _check_device(name: str) -> None:
    """Fail before any env or model is built when ``run.device`` names nothing this machine has."""
    import torch

    try:
        device = torch.device(name)
    except RuntimeError:
        raise DreamscopeError(f"run.device={name!r} is not a torch device; accepted: cpu, cuda, cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise DreamscopeError(f"run.device={name!r}, but this torch ({torch.__version__}) sees no CUDA GPU; "
                              "use run.device=cpu")
    if device.type not in ("cpu", "cuda"):
        raise DreamscopeError(f"run.device={name!r}: dreamscope runs on cpu or cuda")


def load_prefill_policy(spec: str, action_dim: int, option: str = "run.prefill_policy"):
    """The policy that fills the replay before training, as ``(obs batch, rng) -> actions``:
    ``random`` (uniform actions, the official prefill) or ``module:function``, a function of one
    observation that returns an action in [-1, 1] -- a scripted player whose episodes show the
    world model what purposeful play leads to (``dreamscope.envs.airhockey:chase_policy``)."""
    if spec == "random":
        return lambda obs, rng: rng.uniform(-1, 1, (len(obs), action_dim)).astype(np.float32)
    module_name, _, attr = spec.partition(":")
    accepted = "accepted: random, or module:function (e.g. dreamscope.envs.airhockey:chase_policy)"
    if not module_name or not attr:
        raise DreamscopeError(f"{option}={spec!r}; {accepted}")
    try:
        policy = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as err:
        raise DreamscopeError(f"{option}={spec!r}: {err}; {accepted}") from None
    if not callable(policy):
        raise DreamscopeError(f"{option}={spec!r} is not a function; {accepted}")

    def act(obs, rng):
        actions = np.stack([np.asarray(policy(o), dtype=np.float32) for o in obs])
        if actions.shape != (len(obs), action_dim):
            raise DreamscopeError(f"{option}={spec!r} returned actions of shape {actions.shape[1:]}; "
                                  f"this env needs ({action_dim},)")
        return np.clip(actions, -1.0, 1.0)

    return act


class Trainer:
    """Collect with the current policy, train at ``train_ratio``, log, checkpoint."""

    def __init__(self, cfg: Config, logdir: str | Path, resume: bool = False, overwrite: bool = False):
        import torch

        from dreamscope.agent.agent import Agent
        from dreamscope.diagnostics.signals import UpdateSignals
        from dreamscope.envs.factory import make_vector_env
        from dreamscope.replay import Replay
        from dreamscope.rewards import smooth_rewards

        self.cfg, self.logdir = cfg, Path(logdir)
        r = cfg.run
        r.env = resolve_env_id(r.env)  # recorded as the id, which outlives what an alias names
        _check_device(r.device)
        if not resume and (self.logdir / METRICS).exists() and not overwrite:
            raise DreamscopeError(f"{self.logdir} already holds a run; use --resume {self.logdir} to continue it, "
                                  "--overwrite to replace it, or another --logdir")
        if r.threads:
            torch.set_num_threads(r.threads)
        torch.manual_seed(r.seed)
        random.seed(r.seed)
        self.np_rng = np.random.default_rng(r.seed)
        self.envs = make_vector_env(r.env, r.envs, r.seed, r.action_repeat)
        obs_dim = int(np.prod(self.envs.single_observation_space.shape))
        self.action_dim = int(np.prod(self.envs.single_action_space.shape))
        self.prefill_policy = load_prefill_policy(r.prefill_policy, self.action_dim)
        # Only now, with the env and the prefill policy known to load, touch the run directory.
        self.logdir.mkdir(parents=True, exist_ok=True)
        if overwrite and not resume:  # the user asked to replace the run: clear what it wrote
            for name in (METRICS, CHECKPOINT, REPLAY, REPLAY_STAGED):
                (self.logdir / name).unlink(missing_ok=True)
            shutil.rmtree(self.logdir / "tb", ignore_errors=True)
        self.agent = Agent(cfg, obs_dim, self.action_dim).to(r.device)
        self.signals = UpdateSignals()  # the entropy signals every run.signals_every updates
        self.replay = Replay(r.replay_size, r.envs, obs_dim, self.action_dim, seed=r.seed)
        self.smooth = lambda rewards: smooth_rewards(rewards, r.reward_smoothing, r.smoothing_sigma, r.smoothing_delta, r.smoothing_alpha)
        self.pending: list[list[dict]] = [[] for _ in range(r.envs)]  # rows of unfinished episodes (smoothing only)
        self.step = 0  # agent steps collected (rows added)
        self.update_credit = 0.0
        self.episodes = 0
        if resume and (self.logdir / CHECKPOINT).exists():
            self._load_checkpoint()
        elif not resume:
            dump_yaml(cfg, self.logdir / CONFIG)
        write_meta(self.logdir, self._meta())  # on resume too: η may have changed, and older runs lack keys
        self._truncate_metrics_after(self.step)
        from torch.utils.tensorboard import SummaryWriter

        self.tb = SummaryWriter(str(self.logdir / "tb"), purge_step=self.step if resume else None)

    def _meta(self) -> dict:
        """What a log reader cannot infer from metric names: the policy's distribution and bounds, the return normaliser."""
        import torch

        a, b = self.cfg.actor, self.cfg.behavior
        with torch.no_grad():
            dist = self.agent.ac.actor(torch.zeros(1, self.agent.wm.feat_dim, device=self.cfg.run.device))
        # Without a normaliser the advantages are divided by 1 = max(1, S = 0): the limit the doctor reads.
        limit = 1.0 if b.retnorm == "none" else b.retnorm_limit
        return policy_meta(dist, implementation="dreamscope", env=self.cfg.run.env, dist=a.dist,
                           std_bound=a.std_bound if a.dist == "tanh_normal" else "minmax", eta=a.entropy_scale,
                           return_norm=b.retnorm, return_limit=limit)

    # ------------------------------------------------------------------ checkpointing
    def _save_checkpoint(self) -> None:
        import torch

        # Two files cannot be replaced at once, so the replay is staged, the checkpoint (which records the
        # replay's row count) replaces the old one, and only then the staged replay is renamed. A kill at any
        # point leaves a checkpoint and, under one of the two names, the replay that belongs to it.
        self.replay.save(self.logdir / REPLAY_STAGED)
        # Rows of episodes still open (DreamSmooth holds them until the episode ends): kept so that a
        # resume replays them, smoothed as the truncated episodes they become.
        pending = [{key: torch.as_tensor(np.stack([row[key] for row in rows])) for key in self.replay.data}
                   if rows else {} for rows in self.pending]
        state = {"agent": self.agent.state_dict(), "optimizer": self.agent.opt.state_dict(), "pending": pending,
                 "counters": {"step": self.step, "updates": self.agent.updates, "episodes": self.episodes,
                              "update_credit": self.update_credit, "replay_total": self.replay.total},
                 "rng": {"torch": torch.get_rng_state(), "numpy": json.dumps(self.np_rng.bit_generator.state),
                         "replay": json.dumps(self.replay.rng.bit_generator.state)}}
        tmp = self.logdir / (CHECKPOINT + ".tmp")
        torch.save(state, tmp)
        os.replace(tmp, self.logdir / CHECKPOINT)
        os.replace(self.logdir / REPLAY_STAGED, self.logdir / REPLAY)

    def _load_checkpoint(self) -> None:
        import torch

        path = self.logdir / CHECKPOINT
        try:
            state = torch.load(path, map_location=self.cfg.run.device, weights_only=True)
            self.agent.load_state_dict(state["agent"])
            self.agent.opt.load_state_dict(state["optimizer"])
        except (RuntimeError, KeyError, OSError) as err:
            lines = str(err).strip().splitlines() or [type(err).__name__]
            first = next((line.strip() for line in lines if "size mismatch" in line), lines[0])
            hint = ""
            if "size mismatch" in first:
                hint = (f"; the run was trained on other observation or action sizes than {self.cfg.run.env!r} "
                        "gives now: continue it with the env (and dreamscope version) that trained it, "
                        "or start a new run")
            raise DreamscopeError(f"{path}: cannot load the checkpoint ({first}){hint}") from None
        counters = state["counters"]
        self.step, self.episodes = int(counters["step"]), int(counters["episodes"])
        self.agent.updates, self.update_credit = int(counters["updates"]), float(counters["update_credit"])
        torch.set_rng_state(state["rng"]["torch"])
        self.np_rng.bit_generator.state = json.loads(state["rng"]["numpy"])
        self._load_replay_of_checkpoint(counters.get("replay_total"))
        self.replay.rng.bit_generator.state = json.loads(state["rng"]["replay"])
        for stream, episode in enumerate(state.get("pending", [])):  # the resumed envs start new episodes
            if not episode:
                continue
            rows = {key: value.numpy() for key, value in episode.items()}
            rows["reward"] = self.smooth(rows["reward"])
            self.replay.extend(stream, rows)

    def _load_replay_of_checkpoint(self, rows: int | None) -> None:
        """Load the replay saved with the checkpoint: REPLAY, or REPLAY_STAGED when a kill came between
        replacing the checkpoint and renaming the replay. `rows` is None for checkpoints older than the
        staging; their REPLAY is taken as it is."""
        names = (REPLAY,) if rows is None else (REPLAY_STAGED, REPLAY)
        candidates = [self.logdir / name for name in names if (self.logdir / name).exists()]
        match = next((path for path in candidates if rows is None or self.replay.saved_total(path) == rows), None)
        if match is None and candidates:
            found = ", ".join(f"{p.name} holds {self.replay.saved_total(p)}" for p in candidates)
            raise DreamscopeError(f"{self.logdir / CHECKPOINT}: the checkpoint was saved with {rows} replay rows, "
                                  f"but {found}; delete {REPLAY} to resume with an empty replay")
        if match is not None:
            self.replay.load(match)
            if match.name == REPLAY_STAGED:
                os.replace(match, self.logdir / REPLAY)
        (self.logdir / REPLAY_STAGED).unlink(missing_ok=True)  # a replay staged for a checkpoint never written

    def _truncate_metrics_after(self, step: int) -> None:
        """On resume, drop metric lines written after the checkpoint so steps stay monotone."""
        path = self.logdir / METRICS
        if not path.exists():
            return
        kept = [line for line in path.read_text().splitlines(keepends=True)
                if line.strip() and _line_step(line) is not None and _line_step(line) <= step]
        tmp = path.with_suffix(".tmp")
        tmp.write_text("".join(kept))
        os.replace(tmp, path)

    # ------------------------------------------------------------------ main loop
    def train(self, progress: bool = True) -> None:
        import torch

        r = self.cfg.run
        E, seq = r.envs, r.batch_length
        updates_per_row = r.train_ratio / (r.batch_size * r.batch_length)
        obs, _ = self.envs.reset(seed=r.seed + 1000 * self.episodes)
        reward = np.zeros(E, np.float32)
        is_first = np.ones(E, bool)
        is_terminal = np.zeros(E, bool)
        prev_action = np.zeros((E, self.action_dim), np.float32)
        episode_done = np.zeros(E, bool)
        carry = self.agent.initial_state(E)
        score, length = np.zeros(E), np.zeros(E, np.int64)
        interval: dict[str, list[float]] = defaultdict(list)
        last_ckpt, last_log_step = time.time(), self.step
        t_interval, updates_at_log, train_seconds = time.time(), self.agent.updates, 0.0
        bar = _Progress(r.steps, self.step, enabled=progress)
        try:
            while self.step < r.steps:
                self._store({"obs": obs, "prev_action": prev_action, "reward": reward * r.reward_scale,
                             "is_first": is_first, "is_terminal": is_terminal}, episode_done)
                self.step += E
                if self.step <= r.prefill:
                    action = self.prefill_policy(obs, self.np_rng)
                else:
                    obs_t = torch.as_tensor(obs, dtype=torch.float32, device=r.device)
                    first_t = torch.as_tensor(is_first, device=r.device)
                    action_t, carry = self.agent.act(obs_t, first_t, carry)
                    action = action_t.cpu().numpy()
                next_obs, env_reward, terminated, truncated, info = self.envs.step(action)
                # Next-step autoreset: an env whose episode ended last step was reset by this call.
                reset = episode_done
                obs = next_obs.astype(np.float32)
                reward = np.where(reset, 0.0, env_reward).astype(np.float32)
                is_first = reset.copy()
                is_terminal = ~reset & terminated
                prev_action = np.where(reset[:, None], 0.0, action).astype(np.float32)
                episode_done = ~reset & (terminated | truncated)
                score += reward
                length += ~reset
                for i in np.flatnonzero(episode_done):
                    interval["episode/score"].append(float(score[i]))
                    interval["episode/length"].append(float(length[i]))
                    if "win" in info and info.get("_win", episode_done)[i]:
                        interval["episode/win"].append(float(info["win"][i]))
                    bar.last_score = float(score[i])
                    score[i], length[i] = 0.0, 0
                    self.episodes += 1

                if self.step > r.prefill and self.replay.can_sample(seq):
                    self.update_credit += E * updates_per_row
                    while self.update_credit >= 1.0:
                        t0 = time.perf_counter()
                        measure = self.signals if self.agent.updates % r.signals_every == 0 else None
                        batch = self.replay.sample(r.batch_size, seq, r.device)
                        for k, v in self.agent.train_step(batch, measure=measure).items():
                            interval[k].append(v)
                        train_seconds += time.perf_counter() - t0
                        self.update_credit -= 1.0
                        if "policy/entropy" in interval:
                            bar.entropy = interval["policy/entropy"][-1]

                # On a fixed grid of steps, so that a resumed run logs at the same steps as an uninterrupted one.
                if self.step // r.log_every > last_log_step // r.log_every or self.step >= r.steps:
                    elapsed = time.time() - t_interval
                    updates = self.agent.updates - updates_at_log
                    signal_seconds = sum(interval.pop("perf/signals_seconds", []))
                    line = {k: float(np.mean(v)) for k, v in interval.items()}
                    if interval.get("episode/score"):  # the line averages episodes; the doctor wants the best too
                        line["episode/score_max"] = float(np.max(interval["episode/score"]))
                    line.update({"perf/updates": self.agent.updates, "perf/updates_per_second": updates / max(elapsed, 1e-9),
                                 "perf/env_steps_per_second": (self.step - last_log_step) / max(elapsed, 1e-9),
                                 "perf/signals_overhead_frac": signal_seconds / max(train_seconds, 1e-9)})
                    self._write_metrics(line)
                    bar.updates_per_second = line["perf/updates_per_second"]
                    interval.clear()
                    last_log_step, t_interval, updates_at_log, train_seconds = self.step, time.time(), self.agent.updates, 0.0
                if time.time() - last_ckpt >= r.checkpoint_every:
                    self._save_checkpoint()
                    last_ckpt = time.time()
                bar.update(self.step)
        finally:
            bar.close()
        self._save_checkpoint()
        self.tb.close()
        self.envs.close()

    def _store(self, step: dict[str, np.ndarray], last: np.ndarray) -> None:
        """Add one row per env to replay; with DreamSmooth, hold each episode until it ends."""
        if self.cfg.run.reward_smoothing == "none":
            self.replay.add(step)
            return
        for i, pending in enumerate(self.pending):
            pending.append({key: step[key][i] for key in self.replay.data})
            if last[i]:
                rows = {key: np.stack([row[key] for row in pending]) for key in self.replay.data}
                rows["reward"] = self.smooth(rows["reward"])
                self.replay.extend(i, rows)
                pending.clear()

    def _write_metrics(self, line: dict[str, float]) -> None:
        with open(self.logdir / METRICS, "a") as f:
            f.write(json.dumps({"step": self.step, **line}) + "\n")
        for key, value in line.items():
            self.tb.add_scalar(key, value, self.step)
        self.tb.flush()


def _line_step(line: str) -> int | None:
    try:
        return int(json.loads(line)["step"])
    except (ValueError, KeyError, TypeError):
        return None


class _Progress:
    """A rich progress bar with env steps, updates/s, last score and entropy (or nothing)."""

    def __init__(self, total: int, start: int, enabled: bool):
        self.last_score = float("nan")
        self.entropy = float("nan")
        self.updates_per_second = 0.0
        self.bar = None
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                                TextColumn("{task.fields[info]}"))
            self.task = self.bar.add_task("train", total=total, completed=start, info="")
            self.bar.start()

    def update(self, step: int) -> None:
        if self.bar is not None:
            info = f"{self.updates_per_second:.1f} upd/s  score {self.last_score:.1f}  entropy {self.entropy:.3f}"
            self.bar.update(self.task, completed=step, info=info)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()
