"""The files of a dreamscope run directory, named once: training writes them, and the probe,
model-fit, sweep, demo and instrument API find them by these names. META has one writer, below."""

from __future__ import annotations

import json
import math
from pathlib import Path

CONFIG = "config.yaml"  # the full config the run was started with (resume and probe rebuild from it)
CONFIG_CHANGES = "config_changes.jsonl"  # changes applied by each `train --resume` (a JSON line each), on top of CONFIG
META = "meta.json"  # what the doctor needs to know about the policy (bounds, entropy ceiling and floor)
METRICS = "metrics.jsonl"  # one JSON object of canonical metrics per logged step
CHECKPOINT = "checkpoint.pt"  # weights-only torch checkpoint
REPLAY = "replay.npz"  # the replay that belongs to the checkpoint
EVALUATION = "evaluation.json"  # a sweep's --score-by sample/mode: new episodes' results per checkpoint step
REPLAY_STAGED = "replay.staged.npz"  # the replay of a checkpoint being written; renamed to REPLAY once it is


def policy_meta(policy, *, implementation: str, dist: str, eta: float | None = None, env: str | None = None,
                std_bound: str | None = None, return_norm: str | None = None,
                return_limit: float | None = None) -> dict:
    """META's content, for `train` and the instrument API alike: what a log reader cannot infer from
    metric names. ``policy`` is a :class:`dreamscope.dists.ContinuousPolicy` with the run's σ bounds
    (its entropy ceiling and floor are written); ``return_norm`` is the return normaliser's kind and
    ``return_limit`` the L of its max(L, S). Unknown values (None) are left out."""
    meta = {"implementation": implementation, "env": env, "action_dim": policy.action_dim, "dist": dist,
            "std_bound": std_bound, "eta": eta, "std_min": policy.std_min, "std_max": policy.std_max,
            "logstd_min": math.log(policy.std_min), "logstd_max": math.log(policy.std_max),
            "entropy_max": policy.entropy_ceiling(), "entropy_min_ref": policy.entropy_floor(),
            "return_norm": return_norm, "return_limit": return_limit}
    return {key: value for key, value in meta.items() if value is not None}


def write_meta(run_dir: str | Path, meta: dict) -> None:
    (Path(run_dir) / META).write_text(json.dumps(meta, indent=2))
