"""How much of a run's observations can pass through a DreamerV3-style latent at all?

Trains autoencoders on the observations in a run's replay, with no dynamics and no KL, so
that only the bottleneck differs: a dense 64-unit code, or a sampled S x C categorical code
with straight-through gradients and 1% unimix (the RSSM posterior's). The loss is the
world model's: summed squared error in symlog space. It prints the share of the symlog
variance each explains on held-out windows, overall and for chosen dimensions. The numbers of
§10 of remedy_search.md ("What caps it") come from:

    .venv/bin/python docs/latent_bound.py RUN_DIR            # dense, 32x16, 4x4; 2,000 updates each
"""

from __future__ import annotations

import argparse
import math

import torch
from torch import nn

from dreamscope.agent.nets import mlp
from dreamscope.diagnostics.model_fit import observation_labels
from dreamscope.diagnostics.probe import load_run
from dreamscope.dists import UnimixCategorical, symlog

UNITS = 64
SHOWN = ("paddle x", "puck x", "puck y", "puck vx", "time left")


class Autoencoder(nn.Module):
    def __init__(self, obs_dim: int, stoch: int = 0, classes: int = 0):
        super().__init__()
        self.stoch, self.classes = stoch, classes
        code = stoch * classes or UNITS  # 0 x 0: the encoder's output passes unsampled
        self.encoder = mlp(obs_dim, UNITS, 2)
        self.logits = nn.Linear(UNITS, code) if stoch else nn.Identity()
        self.decoder = nn.Sequential(mlp(code, UNITS, 2), nn.Linear(UNITS, obs_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        code = self.logits(self.encoder(x))
        if self.stoch:
            code = UnimixCategorical(code.reshape(-1, self.stoch, self.classes)).sample().flatten(-2)
        return self.decoder(code)


def explained(model: Autoencoder, x: torch.Tensor) -> tuple[float, torch.Tensor]:
    with torch.no_grad():
        err = (model(x) - x) ** 2
    var = x.var(0, correction=0)
    return float(1 - err.sum(-1).mean() / var.sum()), 1 - err.mean(0) / var.clamp_min(1e-9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir")
    parser.add_argument("--updates", type=int, default=2000)
    parser.add_argument("--codes", default="0x0,32x16,4x4", help="S x C per model; 0x0 is the dense code")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cfg, _, replay = load_run(args.run_dir)
    torch.manual_seed(0)
    held_out = symlog(torch.cat([replay.sample(16, 64)["obs"] for _ in range(4)]).flatten(0, 1))
    labels = observation_labels(cfg.run.env, held_out.shape[-1])
    shown = [labels.index(name) for name in SHOWN if name in labels]
    print(f"{'code':>8} {'bits/step':>9} {'updates':>7} {'all':>5} " + " ".join(f"{labels[i]:>10}" for i in shown))
    for spec in args.codes.split(","):
        stoch, classes = (int(v) for v in spec.split("x"))
        torch.manual_seed(0)
        model = Autoencoder(held_out.shape[-1], stoch, classes)
        opt = torch.optim.Adam(model.parameters(), lr=3e-4)
        for _ in range(args.updates):
            x = symlog(replay.sample(8, 32)["obs"]).flatten(0, 1)
            loss = ((model(x) - x) ** 2).sum(-1).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        overall, per_dim = explained(model, held_out)
        bits = f"{stoch * math.log2(classes):.0f}" if stoch else "dense"
        print(f"{spec:>8} {bits:>9} {args.updates:>7} {overall:5.2f} " + " ".join(f"{per_dim[i]:10.2f}" for i in shown))


if __name__ == "__main__":
    main()
