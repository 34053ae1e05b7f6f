"""Per-frame training targets: sim ground truth when the store has it, else from the data.

``sim``: ``info/progress`` and ``info/success`` as recorded (privileged state).
``data``: what any teleop or real-robot store supports without privileged state:

- the last ``success_tail`` fraction of a successful episode's frames (at least one)
  count as success, and progress is time along the episode up to there, ``t / t_success``;
- a failed episode is never successful, and its progress is left unsupervised (weight 0):
  how far a failure got is unknown without privileged state. Clipped successful episodes
  (see :mod:`reward_models.negatives`) teach partial progress instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from reward_models.config import RewardModelError
from robot_rl.contracts import INFO_PROGRESS, INFO_SUCCESS


@dataclass
class EpisodeTargets:
    """Targets for one episode's T frames."""

    progress: np.ndarray  # float32 [T]
    success: np.ndarray  # float32 [T]
    progress_weight: np.ndarray  # float32 [T]
    first_success: int | None  # first successful frame, None for a failed episode


def resolve_mode(mode: str, keys: Iterable[str], where: str) -> str:
    """``auto`` -> ``sim`` when both ground-truth keys exist, else ``data``; ``sim`` without
    them is refused with one sentence."""
    have = {INFO_PROGRESS, INFO_SUCCESS} <= set(keys)
    if mode == "sim" and not have:
        raise RewardModelError(f"{where} has no {INFO_PROGRESS} and {INFO_SUCCESS} ground truth, so labels=sim "
                               "cannot be used; use labels=data (time and episode success) instead.")
    if mode == "auto":
        return "sim" if have else "data"
    return mode


def sim_targets(progress: np.ndarray, success: np.ndarray) -> EpisodeTargets:
    """Targets straight from recorded ground truth."""
    success = np.asarray(success, bool)
    first = int(np.argmax(success)) if success.any() else None
    return EpisodeTargets(np.clip(np.asarray(progress, np.float32), 0, 1), success.astype(np.float32),
                         np.ones(len(success), np.float32), first)


def data_targets(length: int, episode_success: bool, success_tail: float) -> EpisodeTargets:
    """Targets from time and the episode's success flag alone."""
    t = np.arange(length, dtype=np.float32)
    if not episode_success:
        zeros = np.zeros(length, np.float32)
        return EpisodeTargets(zeros, zeros.copy(), zeros.copy(), None)
    tail = max(1, int(round(success_tail * length)))
    first = length - tail
    success = (t >= first).astype(np.float32)
    progress = np.where(success > 0, 1.0, t / max(first, 1)).astype(np.float32)
    return EpisodeTargets(progress, success, np.ones(length, np.float32), first)
