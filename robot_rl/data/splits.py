"""Which episodes to use: a seeded train/validation split and the row range of each episode.

Training reads episodes through ``robot_rl.train.demos.load_store`` (into a replay buffer);
these helpers choose and bound episodes for it, for ``MemoryCache`` and for data tools.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from robot_rl.data.format import StoreError


def split_episodes(num_episodes: int, val_fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded train/validation split of episode indices (each returned sorted).

    A positive ``val_fraction`` gives at least one validation episode when there are two or more.
    """
    if not 0.0 <= val_fraction < 1.0:
        raise StoreError(f"val_fraction must be in [0, 1), got {val_fraction}.")
    order = np.random.default_rng(seed).permutation(num_episodes)
    n_val = int(round(val_fraction * num_episodes))
    if val_fraction > 0 and num_episodes >= 2:
        n_val = min(max(n_val, 1), num_episodes - 1)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def episode_bounds(episode_ends: np.ndarray, episodes: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(starts, ends)`` of the selected episodes (all when ``episodes`` is None)."""
    ends = np.asarray(episode_ends, dtype=np.int64)
    starts = np.concatenate([[0], ends[:-1]]).astype(np.int64)
    if episodes is None:
        return starts, ends
    sel = np.asarray(episodes, dtype=np.int64)
    if sel.size and (sel.min() < -len(ends) or sel.max() >= len(ends)):
        raise StoreError(f"episode indices must be in 0..{len(ends) - 1}.")
    return starts[sel], ends[sel]
