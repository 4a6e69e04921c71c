"""Open a trained run for the commands that read one back (probe, model-fit, evaluate).

Checkpoints are loaded weights-only: a run directory may come from someone else, and
torch's full unpickling would run whatever code the file names.
"""

from __future__ import annotations

from pathlib import Path

from dreamscope.errors import DreamscopeError
from dreamscope.run_files import CHECKPOINT, CONFIG


def expected_run(needs: tuple[str, ...]) -> str:
    return f"a dreamscope run directory as `dreamscope train` writes it ({', '.join(needs)})"


def run_directory(run_dir: str | Path, needs: tuple[str, ...]) -> Path:
    """The run directory ``run_dir`` names (its checkpoint.pt stands for the run), checked to hold ``needs``."""
    path = Path(run_dir)
    if path.name == CHECKPOINT and path.is_file():
        path = path.parent
    if not path.exists():
        raise DreamscopeError(f"{path}: no such directory; expected {expected_run(needs)}")
    if not path.is_dir():
        raise DreamscopeError(f"{path}: is a file, not a directory; expected {expected_run(needs)}")
    missing = [name for name in needs if not (path / name).is_file()]
    if missing:
        what = " and ".join(str(path / m) for m in missing)
        hint = (" (the checkpoint and replay are written when training ends and every run.checkpoint_every "
                "seconds)") if CONFIG not in missing else ""
        raise DreamscopeError(f"{what}: missing; expected {expected_run(needs)}{hint}")
    return path


def load_agent(path: Path, cfg, obs_dim: int, action_dim: int, device: str):
    """The Agent that ``cfg`` describes, with the weights of ``path``/checkpoint.pt."""
    import torch

    from dreamscope.agent.agent import Agent

    agent = Agent(cfg, obs_dim, action_dim).to(device)
    ckpt = path / CHECKPOINT
    try:
        state = torch.load(ckpt, map_location=device, weights_only=True)
        agent.load_state_dict(state["agent"])
    except KeyError as err:
        raise DreamscopeError(f"{ckpt}: no {err} entry; expected a dreamscope checkpoint "
                              "({'agent', 'optimizer', 'counters', 'rng'})") from None
    except Exception as err:  # unpickling refused, truncated file, shapes not matching config.yaml
        msg = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DreamscopeError(f"{ckpt}: cannot load the checkpoint with {CONFIG}'s model ({msg}); expected the "
                              "weights-only checkpoint `dreamscope train` writes for this config") from None
    return agent
