"""Explain a logged policy-entropy value: which parameterisations produce it and which cannot.

A logged entropy of 13.67 for a 4-D squashed policy reads like "maximum randomness", yet no
distribution of actions in [-1, 1]^4 has more than 4·ln 2 = 2.77 nats. It is the entropy of
the *pre-tanh* Gaussian with log σ pinned at a clamp, and at that σ the actions are nearly
bang-bang. `dreamscope entropy VALUE --action-dim D` works this out for any value.
"""

from __future__ import annotations

import argparse
import json
import math
import numbers
from dataclasses import asdict, dataclass

from dreamscope.errors import DreamscopeError
from dreamscope.metrics import GAUSSIAN_ENTROPY_UNIT, LN2, SATURATION_THRESHOLD

#: |log σ − bound| (nats per dim) below which a reading counts as "at the bound". A value
#: logged to two decimals is within 0.005/d of the true one, well inside this.
BOUND_TOL = 0.01
#: Largest K tried for "= ln K". Beyond it, ln K and ln(K + 1) are closer than 2·BOUND_TOL,
#: so every value would match some K and the match would say nothing.
MAX_CATEGORIES = int(1.0 / (2.0 * BOUND_TOL))
#: Accepted |VALUE per dim|: beyond it σ = e^(VALUE/d − 1.42) is no longer a float64 worth reading.
MAX_ABS_PER_DIM = 500.0
#: More than this fraction of components at |a| > 0.99 is a bang-bang policy.
BANG_BANG_FRAC = 0.5
#: Official DreamerV3's σ range (BoundedNormal: minstd, maxstd).
OFFICIAL_STD_MIN, OFFICIAL_STD_MAX = 0.1, 1.0
#: Grid points of the quadrature over z = x/σ ∈ [−Z_MAX, Z_MAX] (one dimension; all dims are alike
#: at μ = 0). The Gaussian mass beyond 12σ is below 1e-32: the integral is exact to float64 noise.
QUADRATURE_POINTS = 200_001
Z_MAX = 12.0


@dataclass(frozen=True)
class StdBounds:
    """Where a code base keeps σ, so that a σ read off an entropy can be traced to it."""

    codebase: str
    log_std_min: float
    log_std_max: float
    rule: str


#: The σ bounds of the code bases people log entropies from.
KNOWN_STD_BOUNDS: tuple[StdBounds, ...] = (
    StdBounds(
        "NaturalDreamer, CleanRL SAC and SAC-style DreamerV3 ports",
        -5.0,
        2.0,
        "log σ = −5 + 3.5·(tanh s + 1); pre-tanh entropy in the loss",
    ),
    StdBounds(
        "SAC reference code, Spinning Up, Stable-Baselines3, rlkit",
        -20.0,
        2.0,
        "log σ = clamp(s, −20, 2)",
    ),
    StdBounds(
        "official DreamerV3 BoundedNormal (and dreamerv3-torch)",
        math.log(OFFICIAL_STD_MIN),
        math.log(OFFICIAL_STD_MAX),
        "σ = 0.9·sigmoid(s + 2) + 0.1 ∈ [0.1, 1]; Gaussian entropy in the loss",
    ),
)


@dataclass(frozen=True)
class BoundMatch:
    codebase: str
    side: str  # "upper" or "lower"
    log_std: float
    delta: float  # read log σ − bound


@dataclass(frozen=True)
class SquashedReading:
    """A TanhNormal with every dim at the read σ and μ = 0 (the assumption is stated)."""

    std: float
    mean_assumed: float
    saturation: float  # fraction of action components with |a| > 0.99, closed form
    action_entropy: float  # summed over dims, by quadrature
    action_entropy_per_dim: float
    quadrature_points: int


@dataclass(frozen=True)
class DiscreteMatch:
    categories: int
    heads: int
    entropy_per_head: float  # ln K
    delta: float


@dataclass(frozen=True)
class Flag:
    code: str
    message: str


@dataclass(frozen=True)
class Explanation:
    """Every reading of one logged entropy value; ``to_dict()`` is what ``--json`` prints."""

    value: float
    action_dim: int
    per_dim: bool
    entropy_total: float
    entropy_per_dim: float
    log_std: float  # mean over dims of log σ of a Gaussian with this entropy
    std: float
    tolerance: float
    bound_matches: tuple[BoundMatch, ...]
    squashed_max: float  # d·ln 2
    possible_action_entropy: bool
    squashed: SquashedReading
    bounded_normal_range: tuple[float, float]
    possible_bounded_normal: bool
    bounded_normal_saturation: float | None  # clipped actions, μ = 0; None when impossible
    discrete: DiscreteMatch | None
    possible_discrete: bool
    flags: tuple[Flag, ...]

    @property
    def flag_codes(self) -> tuple[str, ...]:
        return tuple(flag.code for flag in self.flags)

    @property
    def summary(self) -> str:
        """The answer in a few sentences, most telling first."""
        s, d = self.squashed, self.action_dim
        sign = "+" if self.log_std >= 0 else "−"
        upper = [m for m in self.bound_matches if m.side == "upper"]
        lower = [m for m in self.bound_matches if m.side == "lower"]
        at = upper or lower
        if at:
            pinned = "pinned at the upper clamp" if upper else "at the lower bound"
            used_by = ", and by ".join(m.codebase for m in at)
            what = f"log σ {pinned} {at[0].log_std:.3g} (σ ≈ {self.std:.3g}) used by {used_by}"
        else:
            what = f"log σ = {self.log_std:.3f} (σ ≈ {self.std:.3g}), on no known clamp"
        total = f"{self.entropy_total:.6g} nats"
        gaussian = f"{d} × (½ln(2πe) {sign} {abs(self.log_std):.2f}): the entropy of a Gaussian with {what}."
        sentences = [f"{total} = {gaussian}"]
        if self.discrete is not None:
            k, heads = self.discrete.categories, self.discrete.heads
            head = f"a uniform {k}-way discrete head" if heads == 1 else f"{heads} uniform {k}-way discrete heads"
            discrete = f"{heads} × ln {k}: {head} (the most a {k}-way head can have)."
            # A clamp match is the stronger reading; otherwise the exact ln K is.
            if at:
                sentences.append(f"It is also {discrete}")
            else:
                sentences = [f"{total} = {discrete}", f"Or {total} = {gaussian}"]
        if self.possible_action_entropy:
            sentences.append(
                f"It is possible as the entropy of actions in [-1, 1]^{d} (at most {self.squashed_max:.3f})."
            )
        else:
            sentences.append(
                f"It cannot be the entropy of continuous actions: a squashed or clipped {d}-D policy never "
                f"exceeds {self.squashed_max:.3f} nats; a continuous head's value is the Gaussian's "
                "before tanh or clipping."
            )
        if s.saturation > BANG_BANG_FRAC:
            sentences.append(
                f"At that σ {s.saturation:.0%} of tanh-squashed action components have |a| > 0.99 and the action "
                f"entropy is ≈ {s.action_entropy:.1f} nats (μ ≈ 0 assumed): near bang-bang, not random."
            )
        if upper:
            sentences.append(
                "An entropy bonus η·H pushes log σ up by η per dim at every σ, so with weak advantages "
                "it alone can hold σ at this clamp."
            )
        return " ".join(sentences)

    def to_dict(self) -> dict:
        return {**asdict(self), "flag_codes": list(self.flag_codes), "summary": self.summary}


def _check_inputs(value: float, action_dim: int, per_dim: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
        raise DreamscopeError(f"entropy value {value!r} is not a finite number; accepted: nats such as 13.67 or -0.88")
    if isinstance(action_dim, bool) or not isinstance(action_dim, numbers.Integral) or action_dim < 1:
        raise DreamscopeError(f"action dim {action_dim!r} is not a positive integer; accepted: 1, 2, 3, ...")
    per_dim_value = value if per_dim else value / action_dim
    if abs(per_dim_value) > MAX_ABS_PER_DIM:
        raise DreamscopeError(
            f"entropy value {value!r} is out of range ({per_dim_value:.4g} nats per dim); "
            f"accepted: |VALUE per dim| <= {MAX_ABS_PER_DIM:g}"
        )


def _bound_matches(log_std: float, tol: float) -> tuple[BoundMatch, ...]:
    matches = []
    for bounds in KNOWN_STD_BOUNDS:
        for side, bound in (("upper", bounds.log_std_max), ("lower", bounds.log_std_min)):
            if abs(log_std - bound) < tol:
                matches.append(BoundMatch(bounds.codebase, side, bound, log_std - bound))
    return tuple(matches)


def _squashed_reading(log_std: float, action_dim: int) -> SquashedReading:
    """Action-space numbers of a TanhNormal at this σ and μ = 0, in numpy so that the command runs
    without torch: H(tanh x) = H(x) + E[log(1 − tanh² x)] by quadrature, saturation in closed form
    (tests check both against :class:`dreamscope.dists.TanhNormal`)."""
    import numpy as np

    std = math.exp(log_std)
    z = np.linspace(-Z_MAX, Z_MAX, QUADRATURE_POINTS)
    x = np.abs(std * z)
    log1m_tanh_sq = 2.0 * (math.log(2.0) - x - np.log1p(np.exp(-2.0 * x)))  # stable for any |x|
    weights = np.exp(-0.5 * z**2) / math.sqrt(2.0 * math.pi)
    jacobian = float(np.trapezoid(weights * log1m_tanh_sq, z))
    per_dim = 0.5 * math.log(2.0 * math.pi * math.e) + log_std + jacobian
    return SquashedReading(
        std=std,
        mean_assumed=0.0,
        saturation=_normal_tail(std, math.atanh(SATURATION_THRESHOLD)),
        action_entropy=action_dim * per_dim,
        action_entropy_per_dim=per_dim,
        quadrature_points=QUADRATURE_POINTS,
    )


def _normal_tail(std: float, bound: float) -> float:
    """P(|x| > bound) for x ~ N(0, σ)."""
    return math.erfc(bound / (std * math.sqrt(2.0)))


def _bounded_normal_saturation(std: float) -> float:
    """Fraction of clipped actions at |a| > 0.99 for official DreamerV3's head at σ (clamped to its
    range) and μ = 0."""
    return _normal_tail(min(max(std, OFFICIAL_STD_MIN), OFFICIAL_STD_MAX), SATURATION_THRESHOLD)


def _discrete_match(per_dim: float, heads: int, tol: float) -> DiscreteMatch | None:
    if per_dim < math.log(2) - tol:
        return None
    k = round(math.exp(per_dim))
    if 2 <= k <= MAX_CATEGORIES and abs(per_dim - math.log(k)) < tol:
        return DiscreteMatch(k, heads, math.log(k), per_dim - math.log(k))
    return None


def explain_entropy(value: float, action_dim: int, per_dim: bool = False, tol: float = BOUND_TOL,
                    continuous: bool = False) -> Explanation:
    """Read ``value`` (nats; summed over ``action_dim`` dims unless ``per_dim``) every way it can be read.

    A Gaussian reading (log σ = VALUE/d − ½ln(2πe)) is always possible; whether σ sits on a
    known clamp, whether the value fits actions in [-1, 1]^d, official DreamerV3's σ range or a
    uniform K-way discrete head, and what a tanh-squashed policy at that σ does, are checked.
    ``continuous`` (the policy is known to be a Gaussian family) drops the discrete readings.
    Raises :class:`DreamscopeError` for a non-finite value or an action dim below 1.
    """
    _check_inputs(value, action_dim, per_dim)
    d, value = int(action_dim), float(value)
    h_dim, h_total = (value, value * d) if per_dim else (value / d, value)
    log_std = h_dim - GAUSSIAN_ENTROPY_UNIT
    std = math.exp(log_std)
    matches = _bound_matches(log_std, tol)
    squashed = _squashed_reading(log_std, d)
    squashed_max = d * LN2
    possible_action = h_dim <= LN2 + tol
    bn_lo, bn_hi = math.log(OFFICIAL_STD_MIN), math.log(OFFICIAL_STD_MAX)
    bn_range = (d * (GAUSSIAN_ENTROPY_UNIT + bn_lo), d * (GAUSSIAN_ENTROPY_UNIT + bn_hi))
    possible_bn = bn_lo - tol <= log_std <= bn_hi + tol
    bn_saturation = _bounded_normal_saturation(std) if possible_bn else None
    discrete = None if continuous else _discrete_match(h_dim, d, tol)
    possible_discrete = not continuous and h_dim >= -tol

    flags = [
        Flag(
            f"STD_AT_{m.side.upper()}_BOUND",
            f"log σ = {log_std:.3f} is the {m.side} bound {m.log_std:.3f} of {m.codebase}",
        )
        for m in matches
    ]
    highest = max(b.log_std_max for b in KNOWN_STD_BOUNDS)
    lowest = min(b.log_std_min for b in KNOWN_STD_BOUNDS)
    if log_std > highest + tol:
        above = f"log σ = {log_std:.3f} is above every known clamp ({highest:g}): σ unbounded?"
        flags.append(Flag("STD_ABOVE_KNOWN_BOUNDS", above))
    if log_std < lowest - tol:
        flags.append(Flag("STD_BELOW_KNOWN_BOUNDS", f"log σ = {log_std:.3f} is below every known clamp ({lowest:g})"))
    if not possible_action:
        flags.append(
            Flag(
                "IMPOSSIBLE_ACTION_ENTROPY",
                f"{h_total:.4g} nats > {d}·ln 2 = {squashed_max:.3f}: no policy on [-1, 1]^{d} has this entropy",
            )
        )
    if not possible_bn:
        flags.append(
            Flag(
                "OUTSIDE_BOUNDED_NORMAL",
                f"outside official DreamerV3's [{bn_range[0]:.3f}, {bn_range[1]:.3f}] (σ ∈ [0.1, 1])",
            )
        )
    if not possible_discrete and not continuous:
        flags.append(Flag("NEGATIVE_NOT_DISCRETE", "negative: a discrete entropy is never below 0"))
    if squashed.saturation > BANG_BANG_FRAC:
        flags.append(
            Flag(
                "BANG_BANG",
                f"if tanh-squashed (μ ≈ 0), {squashed.saturation:.0%} of action components have |a| > 0.99",
            )
        )

    return Explanation(
        value=value,
        action_dim=d,
        per_dim=per_dim,
        entropy_total=h_total,
        entropy_per_dim=h_dim,
        log_std=log_std,
        std=std,
        tolerance=tol,
        bound_matches=matches,
        squashed_max=squashed_max,
        possible_action_entropy=possible_action,
        squashed=squashed,
        bounded_normal_range=bn_range,
        possible_bounded_normal=possible_bn,
        bounded_normal_saturation=bn_saturation,
        discrete=discrete,
        possible_discrete=possible_discrete,
        flags=tuple(flags),
    )


# --------------------------------------------------------------------------------------
# Command line: dreamscope entropy VALUE --action-dim D [--per-dim] [--json]
# --------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    # Values are parsed in run() so that a bad one gets the CLI's one-line error (exit 2).
    parser.add_argument(
        "value", metavar="VALUE", help="logged entropy in nats, e.g. 13.67 (put -- before a value like -1e-3)"
    )
    parser.add_argument("--action-dim", required=True, metavar="D", help="number of action dimensions")
    parser.add_argument(
        "--per-dim", action="store_true", help="VALUE is per action dimension (a mean over dims), not the sum"
    )
    parser.add_argument("--json", action="store_true", help="print the explanation as JSON")


def _parse_value(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise DreamscopeError(
            f"entropy value {text!r} is not a number; accepted: nats such as 13.67 or -0.88"
        ) from None


def _parse_action_dim(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise DreamscopeError(f"action dim {text!r} is not a positive integer; accepted: 1, 2, 3, ...") from None


def run(args: argparse.Namespace) -> int:
    explanation = explain_entropy(_parse_value(args.value), _parse_action_dim(args.action_dim), per_dim=args.per_dim)
    if args.json:
        print(json.dumps(explanation.to_dict(), indent=2, allow_nan=False))
    else:
        render(explanation)
    return 0


def render(e: Explanation) -> None:
    """One screen: each reading with its verdict, then the answer."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    def verdict(ok: bool, what: str = "") -> tuple[str, str]:
        return ("possible", "green") if ok else (f"IMPOSSIBLE{what}", "bold red")

    d, s = e.action_dim, e.squashed
    sign = "+" if e.log_std >= 0 else "−"
    table = Table.grid(padding=(0, 2))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    table.add_row(
        "Gaussian",
        Text(
            f"{e.entropy_total:.6g} = {d} × (½ln(2πe) {sign} {abs(e.log_std):.2f})  →  "
            f"log σ = {e.log_std:.2f}, σ ≈ {e.std:.3g}"
        ),
    )
    for m in e.bound_matches:
        table.add_row(
            f"  at {m.side} bound",
            Text(
                f"log σ = {m.log_std:.3g} (σ = {math.exp(m.log_std):.3g}) of {m.codebase}; "
                f"|Δ| = {abs(m.delta):.3f} < {e.tolerance:g}"
            ),
        )
    if any(m.side == "upper" for m in e.bound_matches):
        table.add_row("", Text("(a mean log σ at the upper clamp means every dim is at it)"))
    for flag in e.flags:
        if flag.code in ("STD_ABOVE_KNOWN_BOUNDS", "STD_BELOW_KNOWN_BOUNDS"):
            table.add_row("", Text(flag.message))
    table.add_row(
        "If tanh-squashed",
        Text(
            f"TanhNormal at σ ≈ {s.std:.3g}, μ ≈ 0 assumed: {s.saturation:.0%} of components |a| > 0.99; "
            f"action entropy ≈ {s.action_entropy:.2f} nats "
            f"({s.action_entropy_per_dim:.2f}/dim)"
        ),
    )
    table.add_row(
        "Action space",
        Text.assemble(
            f"[-1, 1]^{d} holds at most {d}·ln 2 = {e.squashed_max:.3f} nats  →  ",
            verdict(e.possible_action_entropy, " as an action entropy"),
        ),
    )
    lo, hi = e.bounded_normal_range
    bounded = Text.assemble(
        f"official DreamerV3, σ ∈ [0.1, 1]: [{lo:.3f}, {hi:.3f}] nats  →  ", verdict(e.possible_bounded_normal)
    )
    if e.bounded_normal_saturation is not None:
        bounded.append(f"; {e.bounded_normal_saturation:.0%} of clipped components at |a| > 0.99 (μ ≈ 0)")
    table.add_row("BoundedNormal", bounded)
    if e.discrete is not None:
        k = e.discrete
        discrete = Text(
            f"= {k.heads} × ln {k.categories} ({k.entropy_per_head:.4f} per head): uniform {k.categories}-way head(s)"
        )
    elif e.possible_discrete:
        discrete = Text(f"not ln K per head for any K ≤ {MAX_CATEGORIES}")
    else:
        discrete = Text.assemble(verdict(False, " (negative)"))
    table.add_row("Discrete", discrete)

    if e.per_dim:
        basis = f" per dim ({e.entropy_total:.4f} summed)"
    elif d > 1:
        basis = f" summed ({e.entropy_per_dim:.4f} per dim)"
    else:
        basis = ""
    console = Console(highlight=False)
    console.print(
        Text.assemble(
            ("Entropy ", "bold"),
            (f"{e.value:g} nats", "bold cyan"),
            f"{basis}, {d}-D action",
        )
    )
    console.print(table)
    console.print(Text.assemble(("Answer: ", "bold"), e.summary))
