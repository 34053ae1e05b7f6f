"""Rewards for training: ground truth from the sim, or a learned reward model, or both.

The learned model is any ``score(frames, instructions) -> (progress[B], success[B])`` callable
(``reward_models.RewardModel.score`` fits; the CLI builds it, the library never imports it).
When a learned reward drives training the sim's ground truth is still there, so every
collected step also feeds ``RewardAgreement``: how far the learned progress is from the true
progress and how often the learned success agrees with the true one.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from robot_rl.contracts import INFO_PROGRESS, INFO_SUCCESS, REWARD, image_key

ScoreFn = Callable[[object, list[str]], tuple[np.ndarray, np.ndarray]]
# shaper(progress, next_progress, next_success, terminated) -> reward, e.g. reward_models.RewardShaper
Shaper = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
REWARD_KINDS = ("dense", "sparse")


def gt_reward(progress: np.ndarray, success: np.ndarray, kind: str) -> np.ndarray:
    """The sim's ground-truth reward: dense = progress, sparse = success (as ``sim.env``)."""
    return np.asarray(progress if kind == "dense" else success, np.float32)


class RewardAgreement:
    """Running agreement of learned and ground-truth rewards, reported as ``train/reward_*``."""

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.learned_p, self.true_p, self.learned_s, self.true_s = [], [], [], []

    def add(self, progress: np.ndarray, success: np.ndarray, true_progress: np.ndarray, true_success: np.ndarray) -> None:
        self.learned_p.append(np.asarray(progress, float))
        self.true_p.append(np.asarray(true_progress, float))
        self.learned_s.append(np.asarray(success, float) > 0.5)
        self.true_s.append(np.asarray(true_success, bool))

    def metrics(self) -> dict[str, float]:
        if not self.learned_p:
            return {}
        lp, tp = np.concatenate(self.learned_p), np.concatenate(self.true_p)
        ls, ts = np.concatenate(self.learned_s), np.concatenate(self.true_s)
        corr = float(np.corrcoef(lp, tp)[0, 1]) if lp.std() > 0 and tp.std() > 0 else 0.0
        return {"train/reward_progress_mae": float(np.abs(lp - tp).mean()), "train/reward_progress_corr": corr,
                "train/reward_success_agreement": float((ls == ts).mean())}


class LearnedReward:
    """Scores frames with a reward model. Without a ``shaper``: dense = progress of the next frame,
    sparse = its success. With one: ``shaper(P(s), P(s'), success(s'), terminated)`` (potential-based)."""

    def __init__(self, score: ScoreFn, cameras: list[str], kind: str = "dense", batch_size: int = 64,
                 shaper: Shaper | None = None) -> None:
        if kind not in REWARD_KINDS:
            raise ValueError(f"reward kind {kind!r} is unknown; expected one of {REWARD_KINDS}.")
        if not cameras:
            raise ValueError("a learned reward needs at least one camera to score.")
        self.score_fn, self.cameras, self.kind, self.batch_size = score, list(cameras), kind, batch_size
        self.shaper = shaper
        self.agreement = RewardAgreement()

    def reward(self, progress: np.ndarray, next_progress: np.ndarray, next_success: np.ndarray,
               terminated: np.ndarray) -> np.ndarray:
        if self.shaper is not None:
            return np.asarray(self.shaper(progress, next_progress, next_success, terminated), np.float32)
        return next_progress if self.kind == "dense" else (next_success > 0.5).astype(np.float32)

    def score(self, obs: dict[str, np.ndarray], instructions: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(progress, success) for a batch of observations, in chunks of ``batch_size``."""
        n = len(instructions)
        progress, success = np.zeros(n, np.float32), np.zeros(n, np.float32)
        for lo in range(0, n, self.batch_size):
            hi = min(n, lo + self.batch_size)
            frames = {c: obs[image_key(c)][lo:hi] for c in self.cameras}
            p, s = self.score_fn(frames if len(frames) > 1 else frames[self.cameras[0]], instructions[lo:hi])
            progress[lo:hi], success[lo:hi] = np.asarray(p).reshape(-1), np.asarray(s).reshape(-1)
        return progress, success

    def __call__(self, transitions) -> np.ndarray:
        """Reward for a collector step (``Transitions``), logging agreement with its ground truth."""
        progress, success = self.score(transitions.next_obs, transitions.instructions)
        self.agreement.add(progress, success, transitions.progress, transitions.success)
        before = self.score(transitions.obs, transitions.instructions)[0] if self.shaper is not None else progress
        return self.reward(before, progress, success, transitions.terminated)

    def label_episode(self, episode: dict[str, np.ndarray], instruction: str) -> np.ndarray:
        """Rewards for every row of a stored episode (row t is the transition from frame t to t+1)."""
        frames = {k: v for k, v in episode.items() if k.startswith("obs/images/")}
        length = len(next(iter(episode.values())))
        progress, success = self.score(frames, [instruction] * length)
        if INFO_PROGRESS in episode and INFO_SUCCESS in episode:
            self.agreement.add(progress[1:], success[1:], episode[INFO_PROGRESS][:-1], episode[INFO_SUCCESS][:-1])
        rewards = self.reward(progress[:-1], progress[1:], success[1:], np.zeros(length - 1, bool))
        # The last row has no next frame; it is never a transition (see ``demos.load_store``).
        return np.append(rewards, 0.0).astype(np.float32)


def stored_gt_reward(episode: dict[str, np.ndarray], kind: str) -> np.ndarray:
    """Ground-truth rewards of a stored episode, from ``info/*`` (else its recorded ``reward``)."""
    if INFO_PROGRESS in episode and INFO_SUCCESS in episode:
        return gt_reward(episode[INFO_PROGRESS], episode[INFO_SUCCESS], kind)
    return np.asarray(episode[REWARD], np.float32)
