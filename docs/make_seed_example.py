"""Write docs/seed_example.csv: the seed question's numbers as a NaturalDreamer metrics CSV.

A *reconstruction* from the numbers in the question (entropy_mean 13.67 flat for 6000+
gradient steps, |advantages| 0.05–0.07, win rate 10–20 % with ±10 goal rewards, 4-D
TanhNormal actions, η = 0.003): not the user's log, which was never published. Columns
are NaturalDreamer's (``main.py`` saveLossesToCSV), one row per 50 gradient steps.

    .venv/bin/python docs/make_seed_example.py      # deterministic (seed 0)
    dreamscope diagnose docs/seed_example.csv --action-dim 4
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

OUT = Path(__file__).resolve().parent / "seed_example.csv"
COLUMNS = ("envSteps", "gradientSteps", "totalReward", "worldModelLoss", "reconstructionLoss",
           "rewardPredictorLoss", "klLoss", "actorLoss", "criticLoss", "entropies", "logprobs",
           "advantages", "criticValues")
D = 4
LOG_STD = 2.0  # NaturalDreamer's upper clamp: log σ = −5 + 3.5·(tanh s + 1) ∈ (−5, 2)
ETA = 3e-3
ROWS = 130  # 6,500 gradient steps
GRAD_EVERY = 50
PREFILL = 5000


def squashed_logprob(rng: np.random.Generator, n: int = 4096) -> float:
    """Mean log-prob NaturalDreamer logs for its TanhNormal at log σ = 2: Gaussian minus log(1 − a² + 1e-6)."""
    std = math.exp(LOG_STD)
    eps = rng.standard_normal((n, D))
    x = std * eps  # μ ≈ 0
    gauss = (-0.5 * eps**2 - LOG_STD - 0.5 * math.log(2 * math.pi)).sum(-1)
    return float((gauss - np.log(1 - np.tanh(x) ** 2 + 1e-6).sum(-1)).mean())


def main() -> None:
    rng = np.random.default_rng(0)
    ceiling = D * (0.5 * math.log(2 * math.pi * math.e) + LOG_STD)  # 13.6758
    env_steps = PREFILL
    rows = []
    for i in range(ROWS):
        env_steps += int(rng.integers(100, 251))  # one 100–250-step episode per row
        grad = (i + 1) * GRAD_EVERY
        # ±10 goal rewards, win rate ~15 %, no trend
        score = float(rng.choice([10.0, 0.0, -10.0], p=[0.15, 0.45, 0.40]))
        # pre-tanh entropy pinned at the clamp: the batch mean sits just under d·(½ln(2πe) + 2)
        entropy = ceiling - abs(rng.normal(0.0, 0.004))
        advantage = float(rng.uniform(0.05, 0.07))
        logprob = squashed_logprob(rng, 512)
        wm = 1.1 + 0.6 * math.exp(-i / 25) + rng.normal(0, 0.02)
        rows.append({
            "envSteps": env_steps,
            "gradientSteps": grad,
            "totalReward": score,
            "worldModelLoss": round(wm, 4),
            "reconstructionLoss": round(0.55 * wm + rng.normal(0, 0.01), 4),
            "rewardPredictorLoss": round(0.08 + 0.04 * math.exp(-i / 30) + abs(rng.normal(0, 0.005)), 4),
            "klLoss": round(1.0 + abs(rng.normal(0, 0.02)), 4),
            "actorLoss": round(-(advantage * 0.1 + ETA * entropy) + rng.normal(0, 0.003), 5),
            "criticLoss": round(1.3 + rng.normal(0, 0.1), 4),
            "entropies": round(entropy, 4),
            "logprobs": round(logprob, 3),
            "advantages": round(advantage, 4),
            "criticValues": round(-1.5 + rng.normal(0, 0.15), 4),
        })
    with open(OUT, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    print(f"wrote {OUT} ({len(rows)} rows, gradient steps {GRAD_EVERY}–{ROWS * GRAD_EVERY})")


if __name__ == "__main__":
    main()
