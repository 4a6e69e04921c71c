"""Uniform sequence replay, one stream per environment, saved with the run so that it resumes.

Each row is one environment step: the observation, the action that led to it
(``prev_action``, zero on the first step of an episode), the reward received on arriving,
and the ``is_first`` / ``is_terminal`` flags. Sequences may cross episode boundaries; the
RSSM resets its state where ``is_first`` is set, as in the official implementation.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from dreamscope.errors import DreamscopeError

FIELDS = ("obs", "prev_action", "reward", "is_first", "is_terminal")


class Replay:
    def __init__(self, capacity: int, num_streams: int, obs_dim: int, action_dim: int, seed: int = 0):
        if capacity < num_streams:
            raise DreamscopeError(f"run.replay_size={capacity} must be at least run.envs={num_streams}")
        self.per_stream = capacity // num_streams
        shape = (num_streams, self.per_stream)
        self.data = {
            "obs": np.zeros((*shape, obs_dim), np.float32),
            "prev_action": np.zeros((*shape, action_dim), np.float32),
            "reward": np.zeros(shape, np.float32),
            "is_first": np.zeros(shape, bool),
            "is_terminal": np.zeros(shape, bool),
        }
        self.length = np.zeros(num_streams, np.int64)  # rows filled per stream (<= per_stream)
        self.cursor = np.zeros(num_streams, np.int64)  # next row to write per stream
        self.total = 0  # rows ever added
        self.rng = np.random.default_rng(seed)

    def add(self, step: dict[str, np.ndarray]) -> None:
        """Append one row to every stream (arrays with a leading env axis)."""
        for stream in range(len(self.cursor)):
            self.extend(stream, {key: step[key][stream : stream + 1] for key in FIELDS})

    def extend(self, stream: int, rows: dict[str, np.ndarray]) -> None:
        """Append consecutive rows (arrays with a leading time axis) to one stream."""
        n = len(rows["reward"])
        index = (self.cursor[stream] + np.arange(n)) % self.per_stream
        for key in FIELDS:
            self.data[key][stream, index] = rows[key]
        self.cursor[stream] = (self.cursor[stream] + n) % self.per_stream
        self.length[stream] = min(self.length[stream] + n, self.per_stream)
        self.total += n

    def __len__(self) -> int:
        return int(self.length.sum())

    def can_sample(self, seq_len: int) -> bool:
        return bool((self.length >= seq_len).any())

    def sample(self, batch: int, seq_len: int, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
        """``batch`` sequences of ``seq_len`` consecutive rows, uniform over valid start rows."""
        starts_per_stream = np.maximum(self.length - seq_len + 1, 0)
        if starts_per_stream.sum() == 0:
            raise DreamscopeError(f"replay holds {len(self)} rows, fewer than one sequence of {seq_len}")
        stream = self.rng.choice(len(self.length), size=batch, p=starts_per_stream / starts_per_stream.sum())
        offset = self.rng.integers(0, starts_per_stream[stream])
        # Oldest row of a full ring buffer sits at the cursor.
        oldest = np.where(self.length[stream] == self.per_stream, self.cursor[stream], 0)
        rows = (oldest[:, None] + offset[:, None] + np.arange(seq_len)) % self.per_stream
        out = {key: torch.from_numpy(self.data[key][stream[:, None], rows]).to(device) for key in FIELDS}
        out["is_first"][:, 0] = True  # no context before the sampled window: start from a fresh state
        return out

    # ------------------------------------------------------------------------- persistence
    def save(self, path: str | Path) -> None:
        """Write atomically (temp file + rename) so a kill never leaves a half-written replay."""
        path = Path(path)
        tmp = path.with_suffix(".tmp.npz")
        used = int(self.length.max())
        arrays = {key: value[:, :used] for key, value in self.data.items()}
        np.savez(tmp, length=self.length, cursor=self.cursor, total=np.int64(self.total),
                 per_stream=np.int64(self.per_stream), **arrays)
        os.replace(tmp, path)

    @staticmethod
    def saved_total(path: str | Path) -> int:
        """Rows ever added to the replay saved at `path`, read without loading its arrays."""
        try:
            with np.load(path, allow_pickle=False) as saved:
                return int(saved["total"])
        except (OSError, ValueError, KeyError) as err:
            raise DreamscopeError(f"{path}: cannot read the saved replay ({err}); delete it to start the replay afresh") from None

    def load(self, path: str | Path) -> None:
        path = Path(path)
        try:
            with np.load(path, allow_pickle=False) as saved:
                if int(saved["per_stream"]) != self.per_stream or len(saved["length"]) != len(self.length):
                    raise DreamscopeError(
                        f"{path}: replay was saved with {len(saved['length'])} streams x {int(saved['per_stream'])} rows, "
                        f"this run has {len(self.length)} x {self.per_stream}; keep run.envs and run.replay_size")
                self.length = saved["length"].copy()
                self.cursor = saved["cursor"].copy()
                self.total = int(saved["total"])
                for key in FIELDS:
                    used = saved[key].shape[1]
                    self.data[key][:, :used] = saved[key]
        except (OSError, ValueError, KeyError) as err:
            raise DreamscopeError(f"{path}: cannot read the saved replay ({err}); delete it to start the replay afresh") from None
