"""Typed run configuration: dataclasses with DreamerV3's defaults, size presets, YAML, dotted overrides.

Names follow the paper and the official code (``imag_horizon``, ``return_lambda``,
``entropy_scale`` = actent, ``retnorm``) so that a user can map settings one to one.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, get_type_hints

import yaml

from dreamscope.errors import DreamscopeError
from dreamscope.run_files import CONFIG_CHANGES


@dataclass
class WorldModelConfig:
    deter: int = 512
    hidden: int = 64
    stoch: int = 32
    classes: int = 4
    blocks: int = 8  # block-diagonal GRU groups, as the official RSSM
    units: int = 64  # encoder / decoder / head width
    enc_layers: int = 3
    dec_layers: int = 3
    head_layers: int = 1  # reward and continue heads
    unimix: float = 0.01
    free_nats: float = 1.0
    kl_dyn_scale: float = 1.0  # newest official; 0.5 in the 2023 paper
    kl_rep_scale: float = 0.1
    reward_bins: int = 255
    zero_init_heads: bool = True  # reward head output layer starts at zero (predicts 0)
    terminal_weight: float = 1.0  # weight of terminal rows in the continue loss; 1 is official
    rec_norm: str = "none"  # none (official) | std: weigh each observation dim's error by 1 / its running variance


@dataclass
class ActorConfig:
    dist: str = "bounded_normal"  # bounded_normal (official) | tanh_normal (SAC-style ports)
    layers: int = 3
    units: int = 64
    std_min: float = 0.1  # bounded_normal and tanh_normal with std_bound=minmax
    std_max: float = 1.0
    std_bound: str = "logstd_squash"  # tanh_normal only: logstd_squash | logstd_clamp | minmax
    logstd_min: float = -5.0
    logstd_max: float = 2.0
    grad: str = "reinforce"  # reinforce (official for continuous) | backprop (through the dynamics)
    entropy_scale: float = 3e-4  # eta, "actent" in the official config (initial eta for schedules/target)
    entropy_space: str = "distribution"  # distribution (what ports use) | action (tanh_normal: entropy of tanh(x))
    entropy_control: str = "fixed"  # fixed | linear | exp | cosine (eta -> entropy_scale_end) | target
    entropy_scale_end: float = 3e-4
    entropy_schedule_updates: int = 10_000
    entropy_target_level: float = 0.5  # target between floor (0) and ceiling (1); < 0 uses entropy_target
    entropy_target: float = 0.0  # nats per action dim, when entropy_target_level < 0
    entropy_controller_lr: float = 0.01  # step on log eta per nat of entropy error per dim
    outscale: float = 0.01  # small initial output: the policy starts near mean 0


@dataclass
class CriticConfig:
    layers: int = 3
    units: int = 64
    bins: int = 255
    slow_rate: float = 0.02  # EMA rate of the slow critic
    slow_reg: float = 1.0  # weight of the regulariser towards the slow critic
    replay_loss: float = 0.3  # scale of the critic's loss on replayed sequences (official repval); 0: imagination only
    zero_init: bool = True


@dataclass
class BehaviorConfig:
    imag_horizon: int = 15
    horizon: int = 333  # gamma = 1 - 1/horizon
    return_lambda: float = 0.95
    continuation: str = "prob"  # prob: p(continue) discounts imagination (official) | threshold: p > 0.5
    retnorm: str = "perc"  # perc (official) | none | std
    retnorm_rate: float = 0.01
    retnorm_limit: float = 1.0
    retnorm_lo: float = 5.0
    retnorm_hi: float = 95.0


@dataclass
class OptimConfig:
    optimizer: str = "laprop"  # laprop (official) | adam
    lr: float = 4e-5
    eps: float = 1e-20
    beta1: float = 0.9
    beta2: float = 0.999
    agc: float = 0.3  # adaptive gradient clipping; 0 disables
    clip_norm: float = 0.0  # global norm clipping; 0 disables (use instead of agc)
    warmup: int = 1000


@dataclass
class RunConfig:
    env: str = "airhockey"
    steps: int = 20_000  # env steps (after action repeat)
    seed: int = 0
    envs: int = 1
    action_repeat: int = 1
    train_ratio: float = 512.0  # replayed steps per env step
    batch_size: int = 16
    batch_length: int = 64
    prefill: int = 2_500  # env steps collected by prefill_policy before training
    prefill_policy: str = "random"  # random | module:function, a scripted policy of one observation
    replay_size: int = 1_000_000
    log_every: int = 1_000  # env steps between metric lines
    signals_every: int = 10  # updates between full entropy-signal measurements (K)
    checkpoint_every: float = 300.0  # seconds between checkpoints
    reward_scale: float = 1.0  # multiplies rewards before replay (0 removes the learning signal)
    reward_smoothing: str = "none"  # DreamSmooth: none | gaussian | uniform | ema
    smoothing_sigma: float = 3.0
    smoothing_delta: int = 9
    smoothing_alpha: float = 0.33
    device: str = "cpu"
    threads: int = 0  # torch intra-op threads; 0 keeps torch's default
    compile: bool = False  # torch.compile the filter step, the imagination rollout and the actor-critic loss
    precision: str = "float32"  # auto | float32 | bfloat16: the update's matrix products (auto: bfloat16 where native)


@dataclass
class Config:
    run: RunConfig = field(default_factory=RunConfig)
    world_model: WorldModelConfig = field(default_factory=WorldModelConfig)
    actor: ActorConfig = field(default_factory=ActorConfig)
    critic: CriticConfig = field(default_factory=CriticConfig)
    behavior: BehaviorConfig = field(default_factory=BehaviorConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


#: Official size presets (deter, hidden, classes, units); see the official configs.yaml.
PRESETS: dict[str, dict[str, Any]] = {
    "size1m": {"world_model.deter": 512, "world_model.hidden": 64, "world_model.classes": 4, "units": 64},
    "size12m": {"world_model.deter": 2048, "world_model.hidden": 256, "world_model.classes": 16, "units": 256},
    "size25m": {"world_model.deter": 3072, "world_model.hidden": 384, "world_model.classes": 24, "units": 384},
    # Not official: small enough for unit tests and CI.
    "tiny": {"world_model.deter": 32, "world_model.hidden": 16, "world_model.stoch": 4, "world_model.classes": 4,
             "world_model.blocks": 4, "world_model.reward_bins": 31, "critic.bins": 31, "units": 16},
}

_CHOICES = {
    "world_model.rec_norm": ("none", "std"),
    "actor.dist": ("bounded_normal", "tanh_normal"),
    "actor.std_bound": ("logstd_squash", "logstd_clamp", "minmax"),
    "actor.grad": ("reinforce", "backprop"),
    "actor.entropy_space": ("distribution", "action"),
    "actor.entropy_control": ("fixed", "linear", "exp", "cosine", "target"),
    "behavior.retnorm": ("perc", "none", "std"),
    "behavior.continuation": ("prob", "threshold"),
    "run.reward_smoothing": ("none", "gaussian", "uniform", "ema"),
    "optim.optimizer": ("laprop", "adam"),
    "run.precision": ("auto", "float32", "bfloat16"),
}

#: Numeric keys that may be negative; every other number must be >= 0.
_SIGNED = {"run.seed", "actor.logstd_min", "actor.logstd_max", "actor.entropy_target_level", "actor.entropy_target"}


def _all_keys(cfg: Any, prefix: str = "") -> dict[str, type]:
    keys: dict[str, type] = {}
    hints = get_type_hints(type(cfg))
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            keys.update(_all_keys(value, f"{prefix}{f.name}."))
        else:
            keys[f"{prefix}{f.name}"] = hints[f.name]
    return keys


def _coerce(key: str, raw: Any, kind: type, origin: str) -> Any:
    value = raw
    if isinstance(raw, str) and kind is not str:
        value = yaml.safe_load(raw)
        if kind in (int, float) and isinstance(value, str):
            try:  # YAML 1.1 reads "3e-3" as a string
                value = float(value)
            except ValueError:
                pass
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if kind is int and isinstance(value, float) and value.is_integer():
        value = int(value)  # allow 1e6 for step counts
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise DreamscopeError(f"{origin}: {key}={raw!r} is not a valid {kind.__name__}")
    if key in _CHOICES and value not in _CHOICES[key]:
        raise DreamscopeError(f"{origin}: {key}={value!r}; accepted: {', '.join(_CHOICES[key])}")
    if kind in (int, float) and key not in _SIGNED and value < 0:
        raise DreamscopeError(f"{origin}: {key}={value!r} must be >= 0")
    return value


def apply_overrides(cfg: Config, overrides: dict[str, Any], origin: str = "--set") -> Config:
    """Set dotted keys (``actor.entropy_scale=3e-3``); unknown keys and bad types raise DreamscopeError."""
    keys = _all_keys(cfg)
    for key, raw in overrides.items():
        if key not in keys:
            close = difflib.get_close_matches(key, keys, n=3)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; see `dreamscope train --help`"
            raise DreamscopeError(f"{origin}: unknown config key {key!r}{hint}")
        section, name = key.split(".")
        setattr(getattr(cfg, section), name, _coerce(key, raw, keys[key], origin))
    return cfg


def apply_preset(cfg: Config, name: str) -> Config:
    if name not in PRESETS:
        raise DreamscopeError(f"--preset {name!r} is unknown; accepted: {', '.join(PRESETS)}")
    values = dict(PRESETS[name])
    units = values.pop("units")
    values.update({"world_model.units": units, "actor.units": units, "critic.units": units})
    return apply_overrides(cfg, values, origin=f"preset {name}")


#: Configs that ship inside the package, so `--config NAME` works from any install.
BUNDLED_CONFIGS = Path(__file__).resolve().parent / "configs"


def bundled_config_names() -> list[str]:
    return sorted(path.stem for path in BUNDLED_CONFIGS.glob("*.yaml"))


def resolve_config_file(name_or_path: str | Path) -> Path:
    """A YAML path as given, else the bundled config of that name (with or without ``.yaml``)."""
    path = Path(name_or_path)
    if path.exists():
        return path
    bundled = BUNDLED_CONFIGS / (path.name if path.suffix == ".yaml" else f"{path.name}.yaml")
    if path.parent == Path(".") and bundled.exists():
        return bundled
    raise DreamscopeError(f"--config {name_or_path}: no such file, and not a bundled config; "
                          f"accepted: a YAML path or one of {', '.join(bundled_config_names())} "
                          f"(in {BUNDLED_CONFIGS})")


def compose(preset: str, config_files: str | Path | Sequence[str | Path] | None, overrides: dict[str, str]) -> Config:
    """The preset, then each YAML file's sections in order, then dotted overrides: how the CLI
    builds a run's config. Several files layer a change (a remedy) on a base set-up."""
    cfg = apply_preset(Config(), preset)
    for config_file in [config_files] if isinstance(config_files, (str, Path)) else config_files or []:
        cfg = load_yaml(resolve_config_file(config_file), cfg)
    return apply_overrides(cfg, overrides)


def parse_set_args(pairs: list[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise DreamscopeError(f"--set {pair!r}: expected KEY=VALUE, e.g. actor.entropy_scale=3e-3")
        out[key.strip()] = value.strip()
    return out


def flatten(nested: dict, prefix: str = "") -> dict[str, Any]:
    flat = {}
    for key, value in nested.items():
        if isinstance(value, dict):
            flat.update(flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


#: Keys added after runs were first recorded, each with the value that does what runs written
#: before it did. A run's config.yaml holds every key, so one it lacks is younger than the run.
LEGACY_VALUES = {"critic.replay_loss": 0.0, "behavior.continuation": "threshold"}
#: Runs record the env id an alias resolved to; one that recorded an alias predates that, when
#: the air-hockey aliases named the v0 ids (no goal flag in the observation).
LEGACY_ENV_ALIASES = {"airhockey": "dreamscope/AirHockey-v0", "airhockey-dense": "dreamscope/AirHockeyDense-v0",
                      "airhockey-idle": "dreamscope/AirHockeyIdle-v0"}


def _read_sections(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise DreamscopeError(f"config file {path} does not exist") from None
    except yaml.YAMLError as err:
        raise DreamscopeError(f"config file {path} is not valid YAML: {err}") from None
    if not isinstance(data, dict):
        raise DreamscopeError(f"config file {path}: expected a mapping of sections, got {type(data).__name__}")
    return flatten(data)


def load_yaml(path: str | Path, cfg: Config | None = None) -> Config:
    """Read a config file (nested sections) on top of ``cfg``; keys it leaves out keep their value."""
    return apply_overrides(cfg or Config(), _read_sections(Path(path)), origin=str(path))


def load_run_config(path: str | Path) -> Config:
    """A run's own config.yaml, as `train` wrote it, with the changes each `train --resume` recorded
    beside it (CONFIG_CHANGES) applied in order. Keys younger than the run take their
    ``LEGACY_VALUES`` and a recorded alias its ``LEGACY_ENV_ALIASES`` id, so that a run resumed,
    probed or re-swept goes on as it was trained."""
    recorded = _read_sections(Path(path))
    env = recorded.get("run.env")
    if isinstance(env, str) and env in LEGACY_ENV_ALIASES:
        recorded["run.env"] = LEGACY_ENV_ALIASES[env]
    cfg = apply_overrides(Config(), {**LEGACY_VALUES, **recorded}, origin=str(path))
    changes = Path(path).parent / CONFIG_CHANGES
    if changes.is_file():
        for number, line in enumerate(changes.read_text().splitlines(), 1):
            try:
                changed = {key: change["to"] for key, change in json.loads(line)["changes"].items()}
            except (ValueError, KeyError, TypeError, AttributeError):
                raise DreamscopeError(f"{changes}:{number}: expected {{\"step\": N, \"changes\": {{KEY: {{\"from\", "
                                      f"\"to\", \"by\"}}}}}} as `train --resume` writes it") from None
            cfg = apply_overrides(cfg, changed, origin=f"{changes}:{number}")
    return cfg


def dump_yaml(cfg: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
