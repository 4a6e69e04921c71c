"""Learning tests: minutes of training each, so marked slow (`make test-slow`)."""

import json

import numpy as np
import pytest

from dreamscope.config import compose
from dreamscope.train import Trainer


@pytest.mark.slow
def test_pendulum_learns_to_swing_up(tmp_path):
    # 6k agent steps, ~1.4k updates: 570 s at one thread (the `healthy` scenario of
    # tests/fixtures/scenarios has the same settings).
    cfg = compose("tiny", "pendulum_check", {})
    Trainer(cfg, tmp_path).train(progress=False)
    scores = [json.loads(line)["episode/score"] for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
              if "episode/score" in json.loads(line)]
    assert np.mean(scores[:2]) < -900  # random play: about -1200
    assert np.mean(scores[-5:]) > -400
