"""Turning predicted progress and success into an RL reward.

With ``Φ(s) = progress(s)`` the reward of a transition ``s -> s'`` is the sum of three named
terms (each weight from ``reward.shaping``; set one to 0 to drop it):

- ``shaping = scale * (γ Φ(s') - Φ(s))``, potential-based (Ng, Harada & Russell 1999): over
  any episode its discounted sum telescopes to ``γ^T Φ(s_T) - Φ(s_0)``, which does not depend
  on the actions in between, so it cannot change which policy is optimal. ``Φ(s') = 0`` when
  ``s'`` is terminal (a true termination, not a time-limit truncation) so the identity holds
  with an absorbing end state;
- ``sparse = weight * 1[success(s') >= threshold]``, the thresholded-success sparse reward:
  the task reward that shaping speeds up;
- ``success = weight * success(s')``, a dense success probability. It is *not* a potential
  difference, so it can change the optimal policy; off by default.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from reward_models.config import ShapingConfig
from robot_rl.contracts import REWARD_KINDS, ground_truth_reward

# reward(progress, next_progress, next_success, terminated) -> reward[B], e.g. a RewardShaper
Shaper = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]


class RewardShaper:
    """``shaper(progress, next_progress, next_success, terminated) -> reward`` (batched)."""

    def __init__(self, gamma: float = 0.99, shaping_scale: float = 1.0, success_weight: float = 0.0,
                 sparse_weight: float = 1.0, sparse_threshold: float = 0.5) -> None:
        self.gamma, self.shaping_scale = float(gamma), float(shaping_scale)
        self.success_weight, self.sparse_weight = float(success_weight), float(sparse_weight)
        self.sparse_threshold = float(sparse_threshold)

    @classmethod
    def from_config(cls, config: ShapingConfig) -> RewardShaper:
        return cls(config.gamma, config.shaping_scale, config.success_weight, config.sparse_weight,
                   config.sparse_threshold)

    def terms(self, progress: np.ndarray, next_progress: np.ndarray, next_success: np.ndarray,
              terminated: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """The named reward terms (``shaping``, ``sparse``, ``success``) of each transition."""
        phi = np.asarray(progress, np.float64)
        phi_next = np.asarray(next_progress, np.float64)
        if terminated is not None:
            phi_next = np.where(np.asarray(terminated, bool), 0.0, phi_next)
        success = np.asarray(next_success, np.float64)
        return {"shaping": self.shaping_scale * (self.gamma * phi_next - phi),
                "sparse": self.sparse_weight * (success >= self.sparse_threshold),
                "success": self.success_weight * success}

    def __call__(self, progress: np.ndarray, next_progress: np.ndarray, next_success: np.ndarray,
                 terminated: np.ndarray | None = None) -> np.ndarray:
        """Total reward of each transition ``s -> s'``: ``progress`` is Φ(s), ``next_progress``
        and ``next_success`` are read from s', ``terminated`` marks terminal s' (Φ(s') = 0)."""
        return sum(self.terms(progress, next_progress, next_success, terminated).values()).astype(np.float32)


def unshaped(kind: str) -> Shaper:
    """The reward without shaping: the sim's ground-truth reward read off the model's scores,
    ``dense`` = progress of the next frame, ``sparse`` = its success thresholded at 0.5."""
    if kind not in REWARD_KINDS:
        raise ValueError(f"reward kind {kind!r} is unknown; expected one of {REWARD_KINDS}.")

    def reward(progress, next_progress, next_success, terminated=None) -> np.ndarray:
        del progress, terminated  # not potential-based: only s' counts
        return np.asarray(ground_truth_reward(next_progress, np.asarray(next_success) > 0.5, kind), np.float32)

    return reward


def episode_rewards(reward: Shaper, progress: np.ndarray, success: np.ndarray) -> np.ndarray:
    """Per-row rewards of one stored episode from its frames' scores: row t is the transition
    from frame t to t+1 (``obs[t], action[t], reward[t], obs[t+1]``, as
    :func:`robot_rl.train.demos.load_store` reads it). The last row has no next frame, so it is
    no transition: its reward is 0, and training drops that row."""
    progress, success = np.asarray(progress), np.asarray(success)
    if len(progress) < 2:
        return np.zeros(len(progress), np.float32)
    rows = reward(progress[:-1], progress[1:], success[1:], np.zeros(len(progress) - 1, bool))
    return np.append(np.asarray(rows, np.float32), np.float32(0.0))
