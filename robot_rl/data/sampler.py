"""Episode-aware samplers: transitions (with n-step returns) and windows (history/chunks).

Every index is clipped to its own episode, so no sample ever mixes two episodes. Row ``t``
of a store holds ``obs_t``, the ``action_t`` taken from it and the ``reward_t`` received, so a
transition from ``t`` needs row ``t + 1``: the last row of an episode starts no transition.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np

from robot_rl.contracts import ACTION, REWARD
from robot_rl.data.format import KeySpec, StoreError


class StepSource(Protocol):
    """Anything samplers can read from: :class:`EpisodeStore` or :class:`MemoryCache`."""

    episode_ends: np.ndarray
    schema: dict[str, KeySpec]

    def read(self, key: str, indices: np.ndarray) -> np.ndarray:
        """Rows of ``key`` at committed time ``indices`` (any shape, any order)."""
        ...


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


def valid_steps(starts: np.ndarray, ends: np.ndarray, before: int, after: int) -> tuple[np.ndarray, ...]:
    """Steps ``t`` with ``t - before >= start`` and ``t + after < end``, with their episode bounds."""
    lo, hi = starts + before, ends - after
    counts = np.maximum(hi - lo, 0)
    owner = np.repeat(np.arange(len(starts)), counts)
    offset = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    return lo[owner] + offset, starts[owner], ends[owner]


def _check_keys(source: StepSource, keys: Sequence[str]) -> None:
    for key in keys:
        if key not in source.schema:
            raise StoreError(f"the data has no key {key!r}; it has {', '.join(source.schema)}.")


class _StepSampler:
    """Random batches over the valid steps ``self._t``; subclasses say what ``batch`` returns."""

    _t: np.ndarray
    _rng: np.random.Generator

    def __len__(self) -> int:
        return len(self._t)

    def sample(self, batch_size: int) -> dict[str, object]:
        """A random batch (see ``batch``)."""
        return self.batch(self._rng.integers(0, len(self._t), batch_size))

    def batch(self, positions: np.ndarray) -> dict[str, object]:
        raise NotImplementedError


class TransitionSampler(_StepSampler):
    """Uniform random ``(s, a, r, s', done)`` transitions, optionally with n-step returns.

    ``reward`` is ``sum_{k<n'} gamma^k r_{t+k}`` with ``n' = min(n_step, end - 1 - t)``;
    ``next_obs`` is row ``t + n'``; ``discount`` is ``gamma^n'``; ``done`` is True when
    ``next_obs`` is the last recorded row of its episode.
    """

    def __init__(self, source: StepSource, obs_keys: Sequence[str], episodes: Sequence[int] | None = None,
                 n_step: int = 1, gamma: float = 0.99, seed: int = 0) -> None:
        _check_keys(source, [*obs_keys, ACTION, REWARD])
        if n_step < 1:
            raise StoreError(f"n_step must be at least 1, got {n_step}.")
        if source.schema[REWARD].shape != ():
            raise StoreError(f"transitions need a scalar reward; {REWARD!r} has shape {source.schema[REWARD].shape}.")
        self.source, self.obs_keys, self.n_step, self.gamma = source, list(obs_keys), n_step, gamma
        self._t, _, self._end = valid_steps(*episode_bounds(source.episode_ends, episodes), 0, 1)
        if not len(self._t):
            raise StoreError("the selected episodes hold no transition (each needs at least two steps).")
        self._rng = np.random.default_rng(seed)

    def batch(self, positions: np.ndarray) -> dict[str, object]:
        """The transitions at ``positions`` (indices into the ``len(self)`` valid steps)."""
        t, end = self._t[positions], self._end[positions]
        n_eff = np.minimum(self.n_step, end - 1 - t)
        k = np.arange(self.n_step)
        live = k[None, :] < n_eff[:, None]
        rewards = self.source.read(REWARD, np.minimum(t[:, None] + k, end[:, None] - 1))
        weights = np.where(live, self.gamma ** k, 0.0).astype(np.float32)
        next_t = t + n_eff
        # One read per key for s and s': chunks shared by both are fetched and decoded once.
        both = {key: self.source.read(key, np.concatenate([t, next_t])) for key in self.obs_keys}
        return {
            "obs": {key: rows[: len(t)] for key, rows in both.items()},
            "next_obs": {key: rows[len(t):] for key, rows in both.items()},
            "action": self.source.read(ACTION, t),
            "reward": (rewards * weights).sum(1).astype(np.float32),
            "discount": (self.gamma ** n_eff).astype(np.float32),
            "done": next_t == end - 1,
            "index": t,
        }


class WindowSampler(_StepSampler):
    """Observation histories and action chunks around a step ``t`` inside one episode.

    Observations cover ``t - obs_history + 1 .. t``, actions ``t .. t + action_horizon - 1``.
    With ``pad=True`` every step can be sampled and out-of-episode positions repeat the
    episode's first/last row (flagged in ``obs_is_pad``/``action_is_pad``); with ``pad=False``
    only steps whose whole window lies inside the episode are used.
    """

    def __init__(self, source: StepSource, obs_keys: Sequence[str], obs_history: int = 1,
                 action_horizon: int = 1, episodes: Sequence[int] | None = None, pad: bool = True,
                 action_key: str = ACTION, seed: int = 0) -> None:
        _check_keys(source, [*obs_keys, action_key])
        if obs_history < 1 or action_horizon < 1:
            raise StoreError("obs_history and action_horizon must be at least 1.")
        self.source, self.obs_keys, self.action_key = source, list(obs_keys), action_key
        self._obs_off = np.arange(1 - obs_history, 1)
        self._act_off = np.arange(action_horizon)
        before, after = (0, 0) if pad else (obs_history - 1, action_horizon - 1)
        self._t, self._start, self._end = valid_steps(*episode_bounds(source.episode_ends, episodes), before, after)
        if not len(self._t):
            raise StoreError("the selected episodes are too short for the requested window.")
        self._rng = np.random.default_rng(seed)

    def batch(self, positions: np.ndarray) -> dict[str, object]:
        """Windows at ``positions`` (indices into the ``len(self)`` valid steps)."""
        t, start, end = self._t[positions], self._start[positions], self._end[positions]
        obs_idx, obs_pad = _clipped(t, self._obs_off, start, end)
        act_idx, act_pad = _clipped(t, self._act_off, start, end)
        return {
            "obs": {key: self.source.read(key, obs_idx) for key in self.obs_keys},
            "action": self.source.read(self.action_key, act_idx),
            "obs_is_pad": obs_pad,
            "action_is_pad": act_pad,
            "index": t,
        }


def _clipped(t: np.ndarray, offsets: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    raw = t[:, None] + offsets[None, :]
    idx = np.clip(raw, start[:, None], end[:, None] - 1)
    return idx, idx != raw
