"""The doctor's words: each verdict's one-line answer, its ranked fixes and the intervention that confirms it.

Templates only: no number from one of our runs. The records that tie them to rules, priorities
and colours are in :mod:`dreamscope.diagnostics.doctor.verdicts`.
"""

from __future__ import annotations

from dataclasses import dataclass

from dreamscope.diagnostics.doctor.evidence import Fix


@dataclass(frozen=True)
class Texts:
    headline: str  # the one-line answer to "symptom or cause?"
    fixes: tuple[Fix, ...]  # ranked, best first
    intervention: str  # how to confirm the verdict by intervention


PROBE_ETA0 = (
    "dreamscope probe RUN_DIR with η = 0: if the bonus is the cause, log σ leaves its ceiling "
    "(std_at_upper_frac and saturation fall) and imagined return rises within a few hundred actor "
    "updates; if neither moves, the missing learning signal is the cause"
)

TEXTS: dict[str, Texts] = {
    "BONUS_DOMINATES": Texts(
        "Cause: the entropy bonus, not the policy gradient, is what moves σ — it holds σ at its ceiling, "
        "where tanh saturates and the policy gradient through the mean vanishes.",
        (
            Fix("Take the bonus on the *action* entropy (dreamscope: actor.entropy_space=action), or control "
                "that entropy with a target-entropy controller",
                "σ leaves the clamp and saturation falls to ~0; the action entropy rises to its real ceiling "
                "d·ln 2 instead of the pre-tanh one growing without bound"),
            Fix("Lower the log σ ceiling (e.g. log σ ≤ 0, σ ≤ 1) or use a bounded-normal head",
                "tanh can no longer saturate, so the policy gradient through the mean survives even while "
                "σ is high"),
            Fix("Cutting η helps only by far more than 10× (or to 0): LaProp and Adam steps do not scale with "
                "the gradient, so while the policy gradient is ~0 (zero-initialised heads, no reward seen yet) "
                "any η > 0 walks log σ up at the full learning rate",
                "with advantages at 0, a tenfold smaller η walks log σ up about as fast as the larger one; "
                "η = 0 leaves σ where the policy gradient puts it"),
        ),
        PROBE_ETA0,
    ),
    "PINNED_LEARNING": Texts(
        "Held, not blocking: the entropy bonus holds σ at (or towards) its ceiling, yet the score rises — the "
        "policy learns under the bonus.",
        (
            Fix("Nothing blocks learning; to let σ fall as the policy commits, take the bonus on the action "
                "entropy (dreamscope: actor.entropy_space=action) or use a target-entropy controller",
                "σ leaves the clamp as the score rises, and the actions stop being mostly noise"),
            Fix("Or lower η by far more than 10× (or to 0)",
                "σ follows the policy gradient instead of the bonus"),
        ),
        "dreamscope probe RUN_DIR with η = 0: σ leaves its ceiling (the bonus held it), and imagined return "
        "keeps rising as trained too (learning was not blocked)",
    ),
    "NO_SIGNAL": Texts(
        "Symptom: no learning signal reaches the policy (advantages ≈ 0, no reward yet, or a dead actor gradient), "
        "so nothing moves it — the entropy sits where the bonus and the initialisation left it.",
        (
            Fix("Zero-initialise the reward and critic output layers and smooth the sparse rewards (DreamSmooth)",
                "reward/head_hit_rate rises on replay events, imagined returns spread, S climbs past its limit"),
            Fix("Check the return normaliser: advantage = (R^λ − v)/max(1, S), S = EMA of P95 − P5 of R^λ",
                "with S under 1 the advantages stay raw and small; a correct S makes them comparable to η"),
            Fix("Do not tune η first: lowering it alone leaves the entropy where it is",
                "saves a run; the entropy follows once the advantages carry signal"),
        ),
        "dreamscope probe RUN_DIR with η = 0 and, separately, with the advantages scaled ×10: with no signal, "
        "η = 0 barely moves σ or imagined return, while a reward head that hits the replay's sparse events does",
    ),
    "EXPLORING": Texts(
        "Expected: no fault shows — the entropy is high while the learning signal rises, or nothing has had time "
        "to rise yet; this is exploration: keep training.",
        (
            Fix("Keep training and diagnose again later", "entropy starts falling once the score rises"),
            Fix("If it lasts past the point the score should have risen, lower η",
                "the entropy follows the signal sooner"),
        ),
        "Diagnose a later stretch of the same run: the signal keeps rising and the entropy starts to fall",
    ),
    "COLLAPSE": Texts(
        "Cause: the entropy collapsed to its floor before returns rose — the policy stopped exploring.",
        (
            Fix("Raise η, or use a target-entropy controller with a floor on the action entropy",
                "entropy leaves the floor and the policy keeps sampling other actions"),
            Fix("Raise the std floor (std_min / log σ min)", "σ cannot reach a deterministic policy"),
            Fix("Lower the actor learning rate",
                "the policy commits more slowly, keeping entropy while returns are uninformative"),
        ),
        "dreamscope probe RUN_DIR with η × 10: entropy should rise off the floor without imagined return dropping "
        "if this is a collapse rather than convergence",
    ),
    "TRANSIENT_DIPS": Texts(
        "Symptom: the entropy dips when rare reward events are learned and recovers when they are forgotten.",
        (
            Fix("Smooth the sparse rewards (DreamSmooth) and zero-initialise the reward head",
                "the reward head keeps predicting the rare events, so what the policy learns from them sticks: "
                "the entropy falls and stays down"),
            Fix("Replay reward events more often (keep them in replay, oversample them)",
                "the world model forgets the events more slowly"),
        ),
        "Probe a checkpoint inside a dip and one after it recovers: the reward head's hit rate on the replay's "
        "reward events should be higher inside the dip",
    ),
    "HEALTHY": Texts(
        "Healthy: the entropy falls (or stays low) as returns rise.",
        (Fix("Nothing to fix", "keep training"),),
        "None needed",
    ),
    "IMPOSSIBLE_ENTROPY": Texts(
        "Undecided: the logged entropy cannot be an action entropy (see findings), and the signals that would "
        "decide symptom vs cause are missing.",
        (
            Fix("Log σ, its at-bound fractions, saturation and the log-σ pushes "
                "(canonical policy/* and actor/logstd_push_*)",
                "the next diagnosis can decide between the bonus and the missing signal"),
            Fix("Log the action entropy (policy/entropy_action) and control that, not the pre-tanh value",
                "the entropy you read means what you think it means"),
        ),
        PROBE_ETA0,
    ),
    "UNDECIDED": Texts(
        "Undecided: no verdict's required evidence holds in these logs (see what could not be decided).",
        (Fix("Log the missing signals listed below", "the next diagnosis can decide"),),
        PROBE_ETA0,
    ),
}


#: What to do when the critic expects more than any episode pays.
OVERPROMISE_FIX = Fix(
    "Check the world model where episodes end and pay: the continue head's p(continue) on the replay's terminal "
    "rows, and imagined reward per step against the replay's. Make the end observable (e.g. a goal flag in the "
    "observation) and discount imagination by p(continue) (dreamscope: behavior.continuation=prob). Reward "
    "smoothing moves a terminal reward off the last step, and with it what marks that step in the latent",
    "the critic's values come down to what episodes pay, and the actor stops chasing rewards only imagined")

#: What to do when the world model's latent does not carry the observation.
BLIND_MODEL_FIX = Fix(
    "See which observation dimensions the latent loses (dreamscope model-fit RUN_DIR), then fix the world model "
    "before tuning the actor: a larger stochastic latent first (world_model.stoch x classes carries at most "
    "stoch * log2(classes) bits a step; a 4 x 4 latent, 8), then a wider model (world_model.deter for the "
    "dynamics, hidden, units), more model updates per env step (run.train_ratio), and the KL balance that prices "
    "what the posterior carries (world_model.free_nats, kl_rep_scale). world_model.rec_norm=std shifts the "
    "decoder's attention to dimensions that vary little but adds no capacity. Check model/obs_explained_var "
    "after each change",
    "the decoded observations explain most of their variance, and imagined returns can tell apart policies that "
    "act on the state")

#: What to do when no gradient reaches the actor.
DEAD_GRADIENT_FIX = Fix(
    "Check that the actor's loss reaches its parameters: the actor's learning rate is above 0, its output is not "
    "detached, no mask or clamp zeroes the policy-gradient term, and the advantages are not identically 0",
    "the actor's gradient norm leaves numerical zero, and the entropy moves with the learning signal")

#: What to do when the policy has never met a reward.
NO_REWARD_FIX = Fix(
    "Make a first reward reachable before tuning the entropy: a shaped or denser reward, a shorter task or a "
    "curriculum, prefill with a policy that reaches the goal, or longer exploration",
    "positive scores appear in the log; until then any plateau is the best of no reward, not convergence")
