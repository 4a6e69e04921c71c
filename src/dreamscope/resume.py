"""What `train --resume RUN_DIR` may change: the options given with it, checked key by key.

A resumed run continues from its checkpoint and replay, so a config key may change only where
nothing saved depends on it. :data:`APPLIES` lists those keys (each with what the change does);
every other key is in :data:`REFUSED` with the reason it cannot change, and a request to change
one is refused, naming the option, the value and the reason. The changes applied are appended
to the run's CONFIG_CHANGES file (config.yaml, as the run was started, is never rewritten), and
:func:`dreamscope.config.load_run_config` reads both, so a later resume, probe or evaluation
sees the run as it now trains.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Callable

from dreamscope.config import Config, apply_overrides, apply_preset, flatten, parse_set_args
from dreamscope.errors import DreamscopeError
from dreamscope.run_files import CONFIG_CHANGES

#: Keys a resumed run may change: nothing the checkpoint or replay holds depends on them.
APPLIES: dict[str, str] = {
    "run.steps": "training stops at the new step count",
    "run.log_every": "metric lines follow the new grid from the resume on",
    "run.signals_every": "full signal measurements follow the new interval",
    "run.checkpoint_every": "checkpoints follow the new interval",
    "run.device": "the checkpoint is loaded onto the new device",
    "run.threads": "torch uses the new thread count",
    "run.compile": "the filter step, rollout and actor-critic loss are compiled (or not) when the model is built",
    "run.precision": "the update's matrix products compute in the new dtype (weights stay float32)",
    "run.train_ratio": "updates per env step from the resume on",
    "run.batch_size": "windows per update from the resume on",
    "run.batch_length": "window length from the resume on",
    "optim.lr": "every update sets the learning rate (warm-up included) from the config",
    "optim.agc": "gradient clipping from the resume on",
    "optim.clip_norm": "gradient clipping from the resume on",
    "actor.entropy_scale": "η of a fixed bonus, or a schedule's start (a target controller's η is in the checkpoint)",
    "actor.entropy_scale_end": "a schedule's end",
    "actor.entropy_schedule_updates": "a schedule's length",
}

_SHAPES = "the checkpoint's weights (or optimizer state) have the shapes it gives"
_INIT = "it only initialises weights the checkpoint already holds, so it would do nothing"
_REPLAY = "the replay was collected with it"
_METHOD = ("it is part of the learning rule the run was started and recorded with (meta.json, the logged "
           "signals); train a new run with it, or `dreamscope probe` the checkpoint")
_TARGET_ETA = "under actor.entropy_control=target η is the controller's state, which the checkpoint holds"
#: Every other key, and why a resumed run cannot change it.
REFUSED: dict[str, str] = {
    "run.env": "the replay, and the model's input and output sizes, come from its observations and actions",
    "run.seed": "the env, replay-sampling and torch random streams were drawn from it; the checkpoint continues them",
    **{f"run.{k}": _REPLAY for k in ("envs", "action_repeat", "replay_size", "prefill", "prefill_policy",
                                     "reward_scale", "reward_smoothing", "smoothing_sigma", "smoothing_delta",
                                     "smoothing_alpha")},
    **{f"world_model.{k}": _SHAPES for k in ("deter", "hidden", "stoch", "classes", "blocks", "units", "enc_layers",
                                             "dec_layers", "head_layers", "reward_bins")},
    **{f"actor.{k}": _SHAPES for k in ("layers", "units")},
    **{f"critic.{k}": _SHAPES for k in ("layers", "units", "bins")},
    "optim.optimizer": _SHAPES,
    "world_model.zero_init_heads": _INIT, "critic.zero_init": _INIT, "actor.outscale": _INIT,
    **{f"world_model.{k}": _METHOD for k in ("unimix", "free_nats", "kl_dyn_scale", "kl_rep_scale",
                                             "terminal_weight", "rec_norm")},
    **{f"actor.{k}": _METHOD for k in ("dist", "std_min", "std_max", "std_bound", "logstd_min", "logstd_max", "grad",
                                       "entropy_space", "entropy_control", "entropy_target_level", "entropy_target",
                                       "entropy_controller_lr")},
    **{f"critic.{k}": _METHOD for k in ("slow_rate", "slow_reg", "replay_loss")},
    **{f"behavior.{k}": _METHOD for k in ("imag_horizon", "horizon", "return_lambda", "continuation", "retnorm",
                                          "retnorm_rate", "retnorm_limit", "retnorm_lo", "retnorm_hi")},
    **{f"optim.{k}": _METHOD for k in ("eps", "beta1", "beta2", "warmup")},
}


def requested_changes(run_cfg: Config, sources: list[tuple[str, Callable[[Config], Config]]],
                      resolve_env: Callable[[str], str] = str, where: str = "RUN_DIR",
                      ) -> tuple[Config, dict[str, dict[str, Any]]]:
    """``run_cfg`` with each source (an option's label and what it does to a config) applied in
    order, and the keys that end up different: ``{key: {"from", "to", "by"}}`` (``by``: the last
    option that set the key). A key that cannot change raises DreamscopeError."""
    cfg, by = copy.deepcopy(run_cfg), {}
    for label, apply in sources:
        before = flatten(cfg.to_dict())
        cfg = apply(cfg)
        after = flatten(cfg.to_dict())
        by.update({key: label for key in after if after[key] != before[key]})
    cfg.run.env = resolve_env(cfg.run.env)
    old, new = flatten(run_cfg.to_dict()), flatten(cfg.to_dict())
    changes = {key: {"from": old[key], "to": new[key], "by": by[key]} for key in new if new[key] != old[key]}
    refused = [key for key in changes if key not in APPLIES
               or (key == "actor.entropy_scale" and run_cfg.actor.entropy_control == "target")]
    if refused:
        lines = [f"{changes[k]['by']}: {k}={changes[k]['to']!r} (the run has {changes[k]['from']!r}): "
                 f"{REFUSED[k] if k in REFUSED else _TARGET_ETA}." for k in refused]
        raise DreamscopeError(f"--resume {where}: a resumed run cannot change these (train a new run for them). "
                              + " ".join(lines) + f" Keys it can change: {', '.join(APPLIES)}")
    return cfg, changes


def option_sources(args) -> list[tuple[str, Callable[[Config], Config]]]:
    """The config-changing options of `train`, as :func:`requested_changes` takes them, in the
    order a new run applies them (preset, config files, --set, then --env/--steps/--seed)."""
    from dreamscope.config import _read_sections, resolve_config_file

    sources: list[tuple[str, Callable[[Config], Config]]] = []
    if args.preset is not None:
        sources.append((f"--preset {args.preset}", lambda cfg: apply_preset(cfg, args.preset)))
    for name in args.config or []:
        sections = _read_sections(resolve_config_file(name))
        sources.append((f"--config {name}", lambda cfg, s=sections, n=name: apply_overrides(cfg, s, origin=str(n))))
    for key, value in parse_set_args(args.set).items():
        sources.append((f"--set {key}={value}", lambda cfg, k=key, v=value: apply_overrides(cfg, {k: v})))
    for flag, key in (("env", "run.env"), ("steps", "run.steps"), ("seed", "run.seed")):
        if getattr(args, flag) is not None:
            value = str(getattr(args, flag))
            sources.append((f"--{flag} {value}", lambda cfg, k=key, v=value, o=f"--{flag}": apply_overrides(cfg, {k: v}, o)))
    return sources


def record(run_dir: str | Path, step: int, changes: dict[str, dict[str, Any]]) -> Path:
    """Append the changes applied at ``step`` to the run's CONFIG_CHANGES (one JSON line per resume)."""
    path = Path(run_dir) / CONFIG_CHANGES
    with open(path, "a") as f:
        f.write(json.dumps({"step": int(step), "changes": changes}) + "\n")
    return path

