"""Learning tests: minutes of training each, so marked slow (`make test-slow`)."""

import json

import numpy as np
import pytest

from dreamscope.config import Config, apply_overrides, apply_preset
from dreamscope.train import Trainer

#: Budget: 15k agent steps, ~3.5k updates of size1m; about 35 minutes on 2 cores.
PENDULUM = {"run.env": "Pendulum-v1", "run.steps": 15_000, "run.prefill": 1_000, "run.train_ratio": 256,
            "run.log_every": 1_000, "run.seed": 0}


@pytest.mark.slow
def test_pendulum_learns_to_swing_up(tmp_path):
    cfg = apply_overrides(apply_preset(Config(), "size1m"), PENDULUM)
    Trainer(cfg, tmp_path).train(progress=False)
    scores = [json.loads(line)["episode/score"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
              if "episode/score" in json.loads(line)]
    assert np.mean(scores[:2]) < -900  # random play: about -1200
    assert np.mean(scores[-3:]) > -400
