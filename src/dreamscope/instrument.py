"""Instrument any PyTorch actor: log dreamscope's entropy signals from another code base's actor update.

:class:`ActorSignals` computes the same canonical metrics `dreamscope train` logs
(policy/*, actor/* gradient split and log-σ drift, adv/*, return/*), with the same code
(:mod:`dreamscope.diagnostics.signals`), and writes them to ``RUN_DIR/metrics.jsonl`` with a
``meta.json`` describing the policy, so that ``dreamscope diagnose RUN_DIR`` reads the run
like one of its own. Call it in the actor update *before* ``loss.backward()``: it takes the
gradients of the two loss terms with ``torch.autograd.grad(..., retain_graph=True)``, which
leaves the graph and every ``.grad`` as they were, and it keeps the caller's RNG state.

Example (a toy actor; the lines marked ``# <-`` are the whole integration)::

    import torch
    from dreamscope.instrument import ActorSignals                                      # <-
    actor = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.SiLU(), torch.nn.Linear(32, 8))
    opt, eta = torch.optim.Adam(actor.parameters(), 1e-3), 3e-3
    signals = ActorSignals(run_dir, action_dim=4, dist="tanh_normal", eta=eta, logstd_bounds=(-5, 2), every=10)  # <-
    for step in range(30):
        mean, raw = actor(torch.randn(64, 8)).chunk(2, -1)
        std = torch.exp(-5 + 3.5 * (torch.tanh(raw) + 1))          # log σ squashed into (-5, 2)
        x = (mean + std * torch.randn_like(std)).detach()           # pre-tanh sample; action = tanh(x)
        adv = -(torch.tanh(x) - 0.5).pow(2).sum(-1)                  # stand-in advantages
        logp = torch.distributions.Normal(mean, std).log_prob(x).sum(-1)
        ent = torch.distributions.Normal(mean, std).entropy().sum(-1)
        pg_loss, ent_loss = -(logp * adv).mean(), -(eta * ent).mean()
        signals.log(step, actor_params=actor.parameters(), mean=mean, std=std, actions=torch.tanh(x),  # <-
                    advantages=adv, logprobs=logp, entropy=ent, pg_loss=pg_loss, ent_loss=ent_loss)       # <-
        opt.zero_grad(); (pg_loss + ent_loss).backward(); opt.step()
    # then: dreamscope diagnose run_dir

What to pass (tensors with the action dimension last; leading dimensions are any batch):
``mean``/``std`` are the policy's location and scale (pre-tanh for ``tanh_normal``; for
``bounded_normal`` the mean is in [-1, 1] and samples are clipped); ``std`` must be the tensor
your losses were computed from, so that its log-σ pushes can be measured. ``actions`` are what
the env receives. ``pg_loss`` and ``ent_loss`` are the two terms you add (``loss = pg_loss +
ent_loss``, so ``ent_loss = −η·H``). ``advantages`` are what multiplies the log-probs (after
any return normalisation, logged as ``adv_norm/*``); ``raw_advantages`` or ``returns`` with
``values`` give ``adv/*``, ``return/mean`` and the critic's explained variance; ``return_lo``
and ``return_hi`` (the normaliser's P5/P95 EMAs) give ``return/scale``. Anything left out is
not logged, and the doctor says what it missed.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Iterable

import torch

from dreamscope.diagnostics.signals import GradientSignals, policy_metrics, return_metrics
from dreamscope.dists import BoundedNormal, TanhNormal
from dreamscope.errors import DreamscopeError
from dreamscope.run_files import META, METRICS, policy_meta, write_meta

__all__ = ["ActorSignals"]

DISTS = ("tanh_normal", "bounded_normal")
#: σ may pass its bounds by this fraction of the log-σ range (float32 rounding of a clamped σ);
#: further out, the bounds given are not the policy's.
STD_BOUND_SLACK = 1e-3


def _policy(dist: str, mean: torch.Tensor, std: torch.Tensor, std_min: float, std_max: float):
    """The dreamscope distribution with the caller's mean and std, σ kept in the bounds as that
    distribution keeps it."""
    if dist == "tanh_normal":
        return TanhNormal.from_moments(mean, std, math.log(std_min), math.log(std_max))
    return BoundedNormal.from_moments(mean, std, std_min, std_max)


def _value(x) -> float:
    return float(x.detach()) if isinstance(x, torch.Tensor) else float(x)


class ActorSignals:
    """Measure and log an actor's entropy signals every ``every`` calls of :meth:`log`.

    ``dist`` is ``"tanh_normal"`` (a = tanh(x), x ~ N(mean, std)) or ``"bounded_normal"``
    (DreamerV3's N(mean, std) clipped to [-1, 1]); the std bounds come from ``logstd_bounds``
    (log σ) or ``std_bounds`` (σ), by default (-5, 2) in log σ for tanh_normal and [0.1, 1] for
    bounded_normal. ``eta`` is the entropy-bonus scale (meta.json; pass ``eta=`` to
    :meth:`log` as well if it changes). ``return_limit`` is the L of the return normaliser's
    max(L, S) and ``return_norm`` its kind (DreamerV3's percentile spread is ``"perc"``); both go
    into meta.json, and without L the doctor assumes DreamerV3's 1. An existing ``metrics.jsonl``
    is never overwritten: ``resume=True`` appends to it.
    """

    def __init__(self, run_dir: str | Path, action_dim: int, dist: str = "tanh_normal", eta: float | None = None,
                 logstd_bounds: tuple[float, float] | None = None, std_bounds: tuple[float, float] | None = None,
                 every: int = 10, resume: bool = False, action_entropy_samples: int = 16,
                 drift_rate: float = 0.02, return_limit: float | None = None, return_norm: str | None = None,
                 env: str | None = None):
        self.run_dir = Path(run_dir)
        if dist not in DISTS:
            raise DreamscopeError(f"ActorSignals(dist={dist!r}): accepted: {', '.join(DISTS)}")
        if not (isinstance(action_dim, int) and not isinstance(action_dim, bool) and action_dim > 0):
            raise DreamscopeError(f"ActorSignals(action_dim={action_dim!r}): expected a positive integer")
        if not (isinstance(every, int) and every >= 1):
            raise DreamscopeError(f"ActorSignals(every={every!r}): expected an integer >= 1 (1 measures every call)")
        if logstd_bounds is not None and std_bounds is not None:
            raise DreamscopeError("ActorSignals: pass logstd_bounds or std_bounds, not both")
        if logstd_bounds is not None:
            lo, hi = (float(b) for b in logstd_bounds)
        elif std_bounds is not None:
            if min(std_bounds) <= 0:
                raise DreamscopeError(f"ActorSignals(std_bounds={std_bounds!r}): expected 0 < min < max")
            lo, hi = (math.log(float(b)) for b in std_bounds)
        else:
            lo, hi = (-5.0, 2.0) if dist == "tanh_normal" else (math.log(0.1), 0.0)
        if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
            raise DreamscopeError(f"ActorSignals: std bounds log σ ∈ ({lo}, {hi}); expected finite lower < upper")
        if eta is not None and not (math.isfinite(eta) and eta >= 0):
            raise DreamscopeError(f"ActorSignals(eta={eta!r}): expected a finite number >= 0")
        if return_limit is not None and not (math.isfinite(return_limit) and return_limit > 0):
            raise DreamscopeError(f"ActorSignals(return_limit={return_limit!r}): expected a finite number > 0, "
                                  "the L of the normaliser's max(L, S) (1 in DreamerV3)")
        if return_norm is not None and not (isinstance(return_norm, str) and return_norm):
            raise DreamscopeError(f"ActorSignals(return_norm={return_norm!r}): expected the normaliser's kind as a "
                                  "name, e.g. 'perc' (DreamerV3's percentile spread), 'std' or 'none'")
        self.action_dim, self.dist, self.eta, self.every = action_dim, dist, eta, every
        self.std_min, self.std_max = math.exp(lo), math.exp(hi)
        self.action_entropy_samples = action_entropy_samples
        self.gradient_signals = GradientSignals(drift_rate)
        self.calls = 0
        self.lines = 0
        self.metrics_path, self.meta_path = self.run_dir / METRICS, self.run_dir / META
        if self.run_dir.exists() and not self.run_dir.is_dir():
            raise DreamscopeError(f"{self.run_dir}: is a file; expected a run directory to write {METRICS} into")
        if self.metrics_path.exists() and not resume:
            raise DreamscopeError(f"{self.metrics_path} already exists; pass resume=True to append to it, "
                                  "or choose another run directory")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        meta = self._meta(return_norm, None if return_limit is None else float(return_limit), env)
        if resume and self.meta_path.is_file():
            try:
                old = json.loads(self.meta_path.read_text())
            except ValueError:
                old = None
            clash = {k: (old.get(k), meta[k]) for k in ("action_dim", "dist")} if isinstance(old, dict) else {}
            clash = {k: v for k, v in clash.items() if v[0] != v[1]}
            if clash:
                raise DreamscopeError(f"{self.meta_path}: the run was logged with " + ", ".join(
                    f"{k}={a!r}" for k, (a, b) in clash.items()) + "; this ActorSignals has " + ", ".join(
                    f"{k}={b!r}" for k, (a, b) in clash.items()) + "; resume with the same policy or log elsewhere")
        write_meta(self.run_dir, meta)

    def _meta(self, return_norm: str | None, return_limit: float | None, env: str | None) -> dict:
        """meta.json, by the writer `dreamscope train` uses (what the doctor cannot infer from names)."""
        ref = _policy(self.dist, torch.zeros(1, self.action_dim), torch.full((1, self.action_dim), self.std_min),
                      self.std_min, self.std_max)
        return policy_meta(ref, implementation="instrumented", dist=self.dist, eta=self.eta, env=env,
                           return_norm=return_norm, return_limit=return_limit)

    # ------------------------------------------------------------------------------ logging
    def due(self) -> bool:
        """Whether the next :meth:`log` call measures (the first call does, then every ``every``-th)."""
        return self.calls % self.every == 0

    def log(self, step: int, *, mean: torch.Tensor, std: torch.Tensor,
            actor_params: Iterable[torch.Tensor] | None = None, actions: torch.Tensor | None = None,
            advantages: torch.Tensor | None = None, raw_advantages: torch.Tensor | None = None,
            returns: torch.Tensor | None = None, values: torch.Tensor | None = None,
            return_lo: torch.Tensor | float | None = None, return_hi: torch.Tensor | float | None = None,
            logprobs: torch.Tensor | None = None, entropy: torch.Tensor | None = None,
            pg_loss: torch.Tensor | None = None, ent_loss: torch.Tensor | None = None,
            eta: float | None = None) -> dict[str, float] | None:
        """Measure and append one line to metrics.jsonl on due calls; returns the metrics (None otherwise)."""
        due = self.due()
        self.calls += 1
        if not due:
            return None
        t0 = time.perf_counter()
        if std.shape != mean.shape or mean.shape[-1] != self.action_dim:
            raise DreamscopeError(f"ActorSignals.log: mean {tuple(mean.shape)} and std {tuple(std.shape)} must have "
                                  f"the same shape with the action dimension ({self.action_dim}) last")
        self._check_std_bounds(std)
        metrics: dict[str, float] = {}
        if pg_loss is not None and actor_params is not None:
            params = [p for p in actor_params if p.requires_grad]
            if not (isinstance(pg_loss, torch.Tensor) and pg_loss.requires_grad and std.requires_grad):
                raise DreamscopeError("ActorSignals.log: pg_loss and std carry no gradient; call log() before "
                                      "loss.backward() and outside torch.no_grad(), with the std your losses used")
            if not (isinstance(ent_loss, torch.Tensor) and ent_loss.requires_grad):
                ent_loss = 0.0 * pg_loss  # no bonus (η = 0): a zero gradient with the same graph
            metrics.update(self.gradient_signals.measure(pg_loss, ent_loss, params, std))
        policy = _policy(self.dist, mean.detach(), std, self.std_min, self.std_max)
        devices = [mean.device.index or 0] if mean.device.type == "cuda" else []
        with torch.no_grad(), torch.random.fork_rng(devices=devices):  # the caller's random stream is untouched
            placeholder = torch.zeros(1, device=mean.device)
            pm = policy_metrics(policy, actions if actions is not None else placeholder,
                                logprobs if logprobs is not None else placeholder,
                                entropy if entropy is not None else policy.entropy(), self.action_entropy_samples)
            if actions is None:  # the distribution's own expected saturation instead of the sampled one
                pm["policy/saturation_frac"] = _value(policy.saturation())
            if logprobs is None:
                del pm["policy/logprob_mean"]
            metrics.update(pm)
            metrics.update(self._returns(advantages, raw_advantages, returns, values, return_lo, return_hi))
        if eta is not None or self.eta is not None:
            metrics["entropy/eta"] = float(eta if eta is not None else self.eta)
        metrics["perf/signals_seconds"] = time.perf_counter() - t0
        self._write(step, metrics)
        return metrics

    def _check_std_bounds(self, std: torch.Tensor) -> None:
        """σ beyond the bounds (more than rounding) means the bounds given do not describe the policy,
        and every at-the-bound fraction and the entropy ceiling would be wrong."""
        log_std = torch.log(std.detach().double())
        lo, hi = math.log(self.std_min), math.log(self.std_max)
        slack = STD_BOUND_SLACK * (hi - lo)
        if float(log_std.min()) < lo - slack or float(log_std.max()) > hi + slack:
            raise DreamscopeError(
                f"ActorSignals.log: std spans [{float(log_std.min().exp()):.4g}, {float(log_std.max().exp()):.4g}], "
                f"outside the bounds [{self.std_min:.4g}, {self.std_max:.4g}] (log σ ∈ [{lo:.4g}, {hi:.4g}]) this "
                "ActorSignals was given; pass the logstd_bounds or std_bounds your policy keeps σ in")

    @staticmethod
    def _returns(adv, raw, returns, values, lo, hi) -> dict[str, float]:
        """adv/*, adv_norm/*, return/* and value/* from whichever inputs were given (same code as train)."""
        if raw is None and returns is not None and values is not None:
            raw = returns - values
        given = [x for x in (adv, raw, returns, values) if x is not None]
        if not given:
            return {}
        fill = given[0].detach()
        zero = torch.zeros((), device=fill.device)
        out = return_metrics(*(x.detach() if x is not None else fill for x in (returns, values, raw, adv)),
                             torch.as_tensor(lo if lo is not None else zero, device=fill.device),
                             torch.as_tensor(hi if hi is not None else zero, device=fill.device))
        keep = set()
        if adv is not None:
            keep |= {"adv_norm/mean", "adv_norm/std", "adv_norm/abs_mean"}
        if raw is not None:
            keep |= {"adv/mean", "adv/std", "adv/abs_mean"}
        if returns is not None:
            keep.add("return/mean")
        if values is not None:
            keep.add("value/mean")
        if returns is not None and values is not None:
            keep.add("value/explained_var")
        if lo is not None and hi is not None:
            keep |= {"return/scale", "return/lo", "return/hi"}
        return {k: v for k, v in out.items() if k in keep}

    def _write(self, step: int, metrics: dict[str, float]) -> None:
        with open(self.metrics_path, "a") as f:  # one line per measurement, as `dreamscope train` writes them
            f.write(json.dumps({"step": int(step), **metrics}) + "\n")
        self.lines += 1
