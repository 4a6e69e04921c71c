"""Rebuild the numbers and figure of docs/guide.md §3 (ceilings, floors and saturation of common policy heads).

    python docs/make_guide.py [--out docs] [--dims 1 2 4 6]

Every value comes from dreamscope.dists (the same code the agent and the doctor use): the
pre-tanh Gaussian entropy the loss of a SAC-style port sees, the entropy of the actions the
environment receives (Monte Carlo, 20k samples, mean 0), and the share of saturated components
(|a| > 0.99). Prints the tables as Markdown and writes guide_heads.png.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import torch

from dreamscope.dists import GAUSSIAN_ENTROPY_UNIT, LN2, BoundedNormal, TanhNormal

#: The heads of the question and of the common code bases: (name, σ lowest, σ highest, class).
HEADS = (
    ("official DreamerV3 BoundedNormal, σ ∈ [0.1, 1]", 0.1, 1.0, "bounded"),
    ("TanhNormal, log σ ∈ (−5, 2) (NaturalDreamer, SAC ports)", math.exp(-5.0), math.exp(2.0), "tanh"),
    ("TanhNormal with a min std of 0.1 and log σ ≤ 2", 0.1, math.exp(2.0), "tanh"),
)


def head_at(kind: str, std: float, dim: int) -> tuple[float, float, float]:
    """(entropy the loss sees, entropy of the env's actions, saturated share) of a mean-0 head at ``std``."""
    torch.manual_seed(0)
    mean, s = torch.zeros(1, dim), torch.full((1, dim), std)
    dist = BoundedNormal.from_moments(mean, s, min(std, 0.1), max(std, 1.0)) if kind == "bounded" else \
        TanhNormal.from_moments(mean, s, min(math.log(std), -5.0), max(math.log(std), 2.0))
    return float(dist.entropy().mean()), float(dist.action_entropy(20_000).mean()), float(dist.saturation())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent))
    parser.add_argument("--dims", type=int, nargs="+", default=[1, 2, 4, 6])
    args = parser.parse_args()
    print("| head | d | floor (loss) | ceiling (loss) | loss entropy at the ceiling ÷ d·ln 2 | action entropy at the "
          "ceiling | saturated at the ceiling |\n|---|---|---|---|---|---|---|")
    for name, lo, hi, kind in HEADS:
        for d in args.dims:
            floor, ceiling = d * (GAUSSIAN_ENTROPY_UNIT + math.log(lo)), d * (GAUSSIAN_ENTROPY_UNIT + math.log(hi))
            _, action, sat = head_at(kind, hi, d)
            print(f"| {name} | {d} | {floor:.2f} | {ceiling:.2f} | {ceiling / (d * LN2):.2f} | {action:.2f} | "
                  f"{sat:.0%} |")
    stds = np.exp(np.linspace(-3.0, 2.0, 41))
    rows = np.array([head_at("tanh", float(s), 1) for s in stds])
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6))
    ax1.plot(stds, rows[:, 0], label="pre-tanh Gaussian (what SAC-style losses use)")
    ax1.plot(stds, rows[:, 1], label="actions tanh(x) the env receives")
    ax1.axhline(LN2, color="grey", linestyle=":", label="ln 2: the most any action in [−1, 1] has")
    ax1.set_xscale("log")
    ax1.set_xlabel("σ (mean 0)")
    ax1.set_ylabel("entropy per action dimension (nats)")
    ax1.legend(fontsize=7)
    ax2.plot(stds, rows[:, 2])
    ax2.set_xscale("log")
    ax2.set_xlabel("σ (mean 0)")
    ax2.set_ylabel("share of components with |a| > 0.99")
    fig.suptitle("A tanh-squashed Gaussian: entropy and saturation against σ")
    fig.tight_layout()
    out = Path(args.out) / "guide_heads.png"
    fig.savefig(out, dpi=110)
    peak = int(np.argmax(rows[:, 1]))
    print(f"\naction entropy per dim peaks at σ ≈ {stds[peak]:.2f} ({rows[peak, 1]:.3f} nats); at σ = e² = 7.39 it is "
          f"{rows[-1, 1]:.2f} nats with {rows[-1, 2]:.0%} saturated; figure: {out}")


if __name__ == "__main__":
    main()
