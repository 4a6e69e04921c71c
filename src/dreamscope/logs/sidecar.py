"""What a run's saved configuration says about its policy: distribution, σ bounds, η, task, action dim.

Several implementations save their resolved configuration beside the log, and it settles what
the entropy alone cannot: the official code's ``config.yaml`` in its logdir (main.py), sheeprl's
``config.yaml`` in the TensorBoard version folder (utils.save_configs) and Hydra's
``.hydra/config.yaml`` one level up, r2dreamer's ``.hydra/config.yaml`` in its logdir, and
look-alike forks of dreamerv3-torch that dump their ``configs.yaml`` section. Each setting is
looked up under the dotted names those code bases use (first hit wins); each value that is used
is recorded in ``Run.meta["inferred"]`` with the file and key it came from. A configuration
that cannot be read, or a value of the wrong kind, costs a warning and nothing else.

Distribution names map onto the doctor's: every Gaussian these code bases call ``normal``,
``bounded_normal`` or ``scaled_normal`` is N(tanh(mean), σ) with σ squashed into
[minstd, maxstd] (official 2023 and 2024+, dreamerv3-torch, r2dreamer, sheeprl), the doctor's
``bounded_normal``; ``tanh_normal`` is a Gaussian squashed by tanh; ``onehot`` and
``categorical`` are discrete. The action dimension comes from the task name for the common
benchmark tasks below (Gymnasium and dm_control action spaces).
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import yaml

#: Config files, relative to the folder of the log, nearest first; the parent's only for logs that
#: sit in a folder of their own (sheeprl's version_N/, official scope/), not for a loose file.
CONFIG_FILES = ("config.yaml", ".hydra/config.yaml")
PARENT_CONFIG_FILES = ("../config.yaml", "../.hydra/config.yaml")

DIST_KEYS = ("agent.policy_dist_cont", "actor_dist_cont", "model.actor.dist.cont.name", "distribution.type",
             "actor.dist")
STD_MIN_KEYS = ("agent.policy.minstd", "actor.minstd", "model.actor.dist.cont.min_std", "algo.actor.min_std",
                "actor.min_std")
STD_MAX_KEYS = ("agent.policy.maxstd", "actor.maxstd", "model.actor.dist.cont.max_std", "algo.actor.max_std",
                "actor.max_std")
ETA_KEYS = ("agent.imag_loss.actent", "actent", "model.act_entropy", "algo.actor.ent_coef", "actor.entropy",
            "dreamer.entropyScale")
TASK_KEYS = ("task", "env.task", "env.id", "environmentName")

DIST_NAMES = {"bounded_normal": "bounded_normal", "normal": "bounded_normal", "scaled_normal": "bounded_normal",
              "tanh_normal": "tanh_normal", "onehot": "discrete", "categorical": "discrete", "discrete": "discrete"}

#: Action dimensions of common continuous-control tasks, by the task name with any suite prefix
#: (``dmc_``, ``gym_``, ``dmc/``) dropped; dm_control names are ``<domain>_<task>``.
TASK_ACTION_DIMS = {
    r"pendulum-v\d": 1, r"mountaincarcontinuous-v\d": 1, r"lunarlandercontinuous-v\d": 2, r"bipedalwalker(hardcore)?-v\d": 4,
    r"carracing-v\d": 3, r"invertedpendulum-v\d": 1, r"inverteddoublependulum-v\d": 1, r"reacher-v\d": 2,
    r"swimmer-v\d": 2, r"hopper-v\d": 3, r"halfcheetah-v\d": 6, r"walker2d-v\d": 6, r"ant-v\d": 8,
    r"humanoid-v\d": 17, r"pusher-v\d": 7,
    r"cartpole_\w+": 1, r"pendulum_swingup": 1, r"acrobot_\w+": 1, r"walker_\w+": 6, r"cheetah_run": 6,
    r"hopper_\w+": 4, r"reacher_\w+": 2, r"finger_\w+": 2, r"cup_catch|ball_in_cup_catch": 2,
    r"point_mass_\w+": 2, r"quadruped_\w+": 12, r"humanoid_\w+": 21, r"fish_\w+": 5,
    r"airhockey[\w-]*": 4,
}


def _flatten(tree, prefix: str = "") -> dict:
    out = {}
    if isinstance(tree, dict):
        for key, value in tree.items():
            out.update(_flatten(value, f"{prefix}{key}."))
    elif prefix:
        out[prefix[:-1]] = tree
    return out


def _first(flat: dict, keys: tuple[str, ...]):
    return next(((k, flat[k]) for k in keys if flat.get(k) is not None), (None, None))


def _number(value) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        value = float(value)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def task_action_dim(task: str) -> int | None:
    """The action dimension of a known task name, else None."""
    name = re.sub(r"^(dmc|gym|gymnasium|dm_control)[_:]", "", task.strip().lower().split("/")[-1])
    return next((d for pattern, d in TASK_ACTION_DIMS.items() if re.fullmatch(pattern, name)), None)


def find_config(log: Path, parents: bool) -> Path | None:
    folder = log if log.is_dir() else log.parent
    names = CONFIG_FILES + (PARENT_CONFIG_FILES if parents else ())
    return next((folder / name for name in names if (folder / name).is_file()), None)


def naturaldreamer_config(root: Path, csv: Path) -> Path | None:
    """The NaturalDreamer config (``*.yml`` in the run folder or its configs/) that names ``csv``.

    NaturalDreamer writes ``<metricsFolder>/<environmentName>_<runName>.csv``; the config whose
    environmentName and runName give that name is the run's.
    """
    for file in sorted([*root.glob("*.yml"), *root.glob("*.yaml"), *root.glob("configs/*.yml")]):
        try:
            config = yaml.safe_load(file.read_text(encoding="utf-8", errors="replace"))
        except (yaml.YAMLError, RecursionError):
            continue
        if isinstance(config, dict) and f"{config.get('environmentName')}_{config.get('runName')}.csv" == \
                str(csv.relative_to(root)).split("/", 1)[-1]:
            return file
    return None


def read_config(log: Path, meta: dict, warnings: list[str], parents: bool = False, file: Path | None = None) -> None:
    """Fill ``meta`` (dist, std_min, std_max, eta, task, action_dim) from the config beside ``log`` (or ``file``).

    ``parents`` also looks one folder up. Keys already in ``meta`` (a dreamscope meta.json)
    are left as they are.
    """
    file = file or find_config(log, parents)
    if file is None:
        return
    try:
        flat = _flatten(yaml.safe_load(file.read_text(encoding="utf-8", errors="replace")))
    except (yaml.YAMLError, RecursionError) as error:
        warnings.append(f"{file}: not readable as YAML ({str(error).splitlines()[0]}); its settings are not used")
        return
    found: dict[str, tuple[str, object]] = {}
    key, value = _first(flat, DIST_KEYS)
    if key is not None:
        dist = DIST_NAMES.get(str(value).lower())
        if dist is not None:
            found["dist"] = (f"{key} = {value}", dist)
        elif str(value).lower() != "auto":
            warnings.append(f"{file}: {key} = {value!r} is not a distribution the doctor knows "
                            f"({', '.join(sorted(DIST_NAMES))}); dist not set")
    for name, keys in (("std_min", STD_MIN_KEYS), ("std_max", STD_MAX_KEYS), ("eta", ETA_KEYS)):
        key, value = _first(flat, keys)
        if key is None:
            continue
        number = _number(value)
        if number is None or number < 0 or (name != "eta" and number == 0):
            warnings.append(f"{file}: {key} = {value!r} is not a {'non-negative' if name == 'eta' else 'positive'} "
                            f"number; {name} not set")
            continue
        found[name] = (f"{key} = {value}", number)
    if "std_min" in found and "std_max" in found and not found["std_min"][1] < found["std_max"][1]:
        warnings.append(f"{file}: std bounds {found['std_min'][0]}, {found['std_max'][0]} are not increasing; "
                        f"not used")
        del found["std_min"], found["std_max"]
    key, value = _first(flat, TASK_KEYS)
    if isinstance(value, str) and value:
        found["task"] = (f"{key} = {value}", value)
        dim = task_action_dim(value)
        if dim is not None:
            found["action_dim"] = (f"{key} = {value}: a task with {dim}-D actions", dim)
            if "dist" not in found and str(_first(flat, DIST_KEYS)[1]).lower() == "auto":
                found["dist"] = (f"{_first(flat, DIST_KEYS)[0]} = auto on a continuous task: scaled_normal",
                                 "bounded_normal")
    inferred = meta.setdefault("inferred", {})
    for name, (evidence, value) in found.items():
        if name not in meta:
            meta[name] = value
            inferred[name] = f"{file}: {evidence}"
    if not inferred:
        del meta["inferred"]
    meta["config_file"] = str(file)
