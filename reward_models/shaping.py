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

from collections.abc import Sequence

import numpy as np

from reward_models.config import ShapingConfig
from reward_models.scoring import Frames, RewardModel, StridedScorer


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

    def episode(self, progress: np.ndarray, success: np.ndarray, terminated: bool = False) -> np.ndarray:
        """Per-row rewards of one stored episode: row t is the transition from frame t to t+1.

        The store has no frame after the last action, so the last row reads its own frame as
        the next one (``terminated`` says whether that frame ends the episode for good).
        """
        progress, success = np.asarray(progress), np.asarray(success)
        nxt = np.r_[np.arange(1, len(progress)), len(progress) - 1] if len(progress) else np.zeros(0, int)
        term = np.zeros(len(progress), bool)
        if len(term):
            term[-1] = terminated
        return self(progress, progress[nxt], success[nxt], term)


class OnlineReward:
    """A learned reward for N parallel envs in an RL loop: scores frames with a
    :class:`StridedScorer` (every ``stride`` steps) and shapes them with ``shaper``."""

    def __init__(self, model: RewardModel, shaper: RewardShaper, num_envs: int, stride: int = 1) -> None:
        self.scorer, self.shaper = StridedScorer(model, num_envs, stride), shaper
        self._phi = np.zeros(num_envs, np.float32)

    def reset(self, frames: Frames, instructions: Sequence[str], env_ids: np.ndarray | None = None) -> None:
        """Score the first frames of new episodes (all envs, or ``env_ids``)."""
        mask = np.ones(len(self._phi), bool) if env_ids is None else np.isin(np.arange(len(self._phi)), env_ids)
        progress, _ = self.scorer(frames, instructions, reset=mask)
        self._phi[mask] = progress[mask]

    def __call__(self, next_frames: Frames, instructions: Sequence[str],
                 terminated: np.ndarray | None = None) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Rewards for the step that produced ``next_frames``, and its named terms."""
        progress, success = self.scorer(next_frames, instructions)
        terms = self.shaper.terms(self._phi, progress, success, terminated)
        self._phi = progress.copy()
        return sum(terms.values()).astype(np.float32), terms
