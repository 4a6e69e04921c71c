"""Learning tests: minutes of training each, so marked slow (`make test-slow`)."""

import json

import numpy as np
import pytest

from dreamscope.config import Config, apply_overrides, apply_preset
from dreamscope.train import Trainer

#: Budget: 6k agent steps (action repeat 2), ~1.4k updates of a small model at lr 3e-4:
#: 570 s at one thread (the `healthy` scenario of tests/fixtures/scenarios, same settings).
PENDULUM = {"run.env": "Pendulum-v1", "run.steps": 6_000, "run.prefill": 500, "run.batch_size": 8,
            "run.batch_length": 32, "run.train_ratio": 256, "run.log_every": 75, "run.action_repeat": 2,
            "optim.lr": 3e-4, "optim.warmup": 100, "world_model.units": 64, "world_model.deter": 64,
            "actor.units": 64, "critic.units": 64, "run.seed": 0}


@pytest.mark.slow
def test_pendulum_learns_to_swing_up(tmp_path):
    cfg = apply_overrides(apply_preset(Config(), "tiny"), PENDULUM)
    Trainer(cfg, tmp_path).train(progress=False)
    scores = [json.loads(line)["episode/score"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
              if "episode/score" in json.loads(line)]
    assert np.mean(scores[:2]) < -900  # random play: about -1200
    assert np.mean(scores[-5:]) > -400
