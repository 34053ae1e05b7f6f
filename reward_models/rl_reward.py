"""A reward model as the reward of an RL loop: the one adapter the trainers call.

``LearnedReward`` rewards a collector step (``Transitions``: ``obs``, ``next_obs``,
``instructions``, ``terminated`` and the sim's ground-truth ``progress``/``success``) and
labels stored episodes for demonstrations and offline RL. It scores each frame once: the
score of a step's next frame is kept as the potential Φ of the following step's first
frame, so potential-based shaping (``Φ(s') - Φ(s)``) costs one network pass per step, and
with ``stride`` > 1 an env's frame is scored only every ``stride`` steps (and at a reset).

It works with any ``score(frames, instructions) -> (progress[B], success[B])`` callable
(``RewardModel.score`` fits); :func:`load_learned_reward` is the ``reward=vlm`` group's
``_target_`` and builds it from a saved model.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Callable

import numpy as np

from reward_models.scoring import strided_rows
from reward_models.shaping import RewardShaper, Shaper, episode_rewards, unshaped
from robot_rl.contracts import INFO_PROGRESS, INFO_SUCCESS, image_key

ScoreFn = Callable[[Any, list[str]], tuple[np.ndarray, np.ndarray]]


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

    def extend(self, other: RewardAgreement) -> None:
        """Take in what another instance saw (an env actor's, robot_rl.distributed)."""
        for mine, theirs in ((self.learned_p, other.learned_p), (self.true_p, other.true_p),
                             (self.learned_s, other.learned_s), (self.true_s, other.true_s)):
            mine.extend(theirs)

    def metrics(self) -> dict[str, float]:
        if not self.learned_p:
            return {}
        lp, tp = np.concatenate(self.learned_p), np.concatenate(self.true_p)
        ls, ts = np.concatenate(self.learned_s), np.concatenate(self.true_s)
        corr = float(np.corrcoef(lp, tp)[0, 1]) if lp.std() > 0 and tp.std() > 0 else 0.0
        return {"train/reward_progress_mae": float(np.abs(lp - tp).mean()), "train/reward_progress_corr": corr,
                "train/reward_success_agreement": float((ls == ts).mean())}


class LearnedReward:
    """Rewards from a reward model. Without a ``shaper``: dense = progress of the next frame,
    sparse = its success. With one: ``shaper(Φ(s), Φ(s'), success(s'), terminated)``."""

    def __init__(self, score: ScoreFn, cameras: Sequence[str], kind: str = "dense", batch_size: int = 64,
                 shaper: Shaper | None = None, stride: int = 1, image_size: int | None = None) -> None:
        if not cameras:
            raise ValueError("a learned reward needs at least one camera to score.")
        self.score_fn, self.cameras, self.batch_size = score, tuple(cameras), max(1, int(batch_size))
        self.reward_fn: Shaper = shaper if shaper is not None else unshaped(kind)
        self.needs_previous = shaper is not None  # only shaping reads Φ(s)
        self.stride, self.image_size = max(1, int(stride)), image_size
        self.agreement = RewardAgreement()
        # Per env: the held scores, steps since they were computed, and the frame the last step ended on.
        self._age = np.zeros(0, np.int64)
        self._progress, self._success = np.zeros(0, np.float32), np.zeros(0, np.float32)
        self._frames: dict[str, np.ndarray] | None = None
        self._texts: list[str] = []

    def score(self, frames: Mapping[str, np.ndarray], instructions: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(progress, success) for a batch of frames (``obs/images/<camera>`` keys), in chunks of ``batch_size``."""
        n = len(instructions)
        progress, success = np.zeros(n, np.float32), np.zeros(n, np.float32)
        for lo in range(0, n, self.batch_size):
            hi = min(n, lo + self.batch_size)
            views = {c: frames[image_key(c)][lo:hi] for c in self.cameras}
            p, s = self.score_fn(views if len(views) > 1 else views[self.cameras[0]], instructions[lo:hi])
            progress[lo:hi], success[lo:hi] = np.asarray(p).reshape(-1), np.asarray(s).reshape(-1)
        return progress, success

    def __call__(self, transitions: Any) -> np.ndarray:
        """Reward of one collector step, logging its agreement with the step's ground truth."""
        texts = list(transitions.instructions)
        self._start(len(texts))
        fresh = np.flatnonzero(~self._same(transitions.obs, texts))  # new episodes (or the first call)
        if self.needs_previous:
            self._rescore(transitions.obs, texts, fresh)
            phi = self._progress.copy()
        else:
            self._age[fresh] = self.stride  # a held score belongs to another episode: score the next frame
        self._age += 1
        self._rescore(transitions.next_obs, texts, np.flatnonzero(self._age >= self.stride))
        self._frames = {c: np.array(transitions.next_obs[image_key(c)]) for c in self.cameras}
        progress, success = self._progress.copy(), self._success.copy()
        self.agreement.add(progress, success, transitions.progress, transitions.success)
        before = phi if self.needs_previous else progress
        return np.asarray(self.reward_fn(before, progress, success, transitions.terminated), np.float32)

    def label_episode(self, episode: Mapping[str, np.ndarray], instruction: str) -> np.ndarray:
        """Rewards for every row of a stored episode (see :func:`reward_models.shaping.episode_rewards`),
        scoring every ``stride``-th frame (and the last) and holding each score until the next."""
        picks, owner = strided_rows(len(next(iter(episode.values()))), self.stride)
        frames = {k: v[picks] for k, v in episode.items() if k.startswith("obs/images/")}
        progress, success = (a[owner] for a in self.score(frames, [instruction] * len(picks)))
        if INFO_PROGRESS in episode and INFO_SUCCESS in episode:
            self.agreement.add(progress[1:], success[1:], episode[INFO_PROGRESS][:-1], episode[INFO_SUCCESS][:-1])
        return episode_rewards(self.reward_fn, progress, success)

    def _start(self, num_envs: int) -> None:
        if len(self._age) != num_envs:
            self._age = np.zeros(num_envs, np.int64)
            self._progress, self._success = np.zeros(num_envs, np.float32), np.zeros(num_envs, np.float32)
            self._frames, self._texts = None, [""] * num_envs

    def _rescore(self, frames: Mapping[str, np.ndarray], texts: list[str], envs: np.ndarray) -> None:
        """Score the frames of ``envs`` in one pass and hold those scores from now on."""
        if not len(envs):
            return
        picked = {image_key(c): np.asarray(frames[image_key(c)])[envs] for c in self.cameras}
        self._progress[envs], self._success[envs] = self.score(picked, [texts[i] for i in envs])
        self._age[envs] = 0
        for i in envs:
            self._texts[i] = texts[i]

    def _same(self, obs: Mapping[str, np.ndarray], texts: list[str]) -> np.ndarray:
        """Per env: is ``obs`` the frame (and instruction) the last step ended on? The collector
        does not say which envs it reset; an identical input has an identical score."""
        if self._frames is None:
            return np.zeros(len(texts), bool)
        same = np.array([a == b for a, b in zip(texts, self._texts)], bool)
        for c in self.cameras:
            now, then = np.asarray(obs[image_key(c)]), self._frames[c]
            same &= (now.reshape(len(now), -1) == then.reshape(len(then), -1)).all(axis=1)
        return same


def load_learned_reward(model_path: str | None, env_reward: str = "dense", device: str = "auto",
                        score: Mapping[str, Any] | None = None,
                        shaping: Mapping[str, Any] | None = None) -> LearnedReward:
    """The ``reward=vlm`` group's ``_target_``: a saved model, scored every ``score.stride``
    steps in batches of ``score.batch_size``, shaped by ``shaping`` (unshaped: ``env_reward``)."""
    from pathlib import Path

    from reward_models.config import ShapingConfig, from_dict
    from reward_models.io import load

    if not model_path:
        raise ValueError("reward=vlm needs reward.model_path=<directory of a trained reward model>.")
    if not Path(model_path).exists():
        raise FileNotFoundError(f"reward model {model_path} does not exist.")
    model = load(model_path, device=str(device))
    if model.meta.get("train", {}).get("labels") == "preferences" and (shaping is not None or env_reward != "dense"):
        raise ValueError(f"reward model {model_path} was learned from preferences and has no success output; use it "
                         "as dense progress: reward.shaping=null env.reward=dense.")
    score = dict(score or {})
    model.batch_size = int(score.get("batch_size", model.batch_size))
    shaper = RewardShaper.from_config(from_dict(ShapingConfig, dict(shaping))) if shaping is not None else None
    return LearnedReward(model.score, model.cameras, env_reward, model.batch_size, shaper,
                         int(score.get("stride", 1)), int(model.config.image_size))


class FrozenFeatures:
    """A reward model's instruction-conditioned image features as a frozen encoder
    (``RewardModel.features``): what an RL agent on the robot reads instead of raw frames, so
    its updates stay as cheap as a state agent's."""

    def __init__(self, model: Any) -> None:
        self.model, self.cameras, self.dim = model, tuple(model.cameras), int(model.feature_dim)
        self.image_size = int(model.config.image_size)

    def __call__(self, frames: Mapping[str, np.ndarray], instructions: list[str]) -> np.ndarray:
        return self.model.features({c: frames[image_key(c)] for c in self.cameras}, instructions)


def load_frozen_features(model_path: str, device: str = "cpu") -> FrozenFeatures:
    """``encoder.source=reward``'s builder: the reward model at ``model_path`` as a frozen encoder."""
    from pathlib import Path

    from reward_models.io import load

    if not model_path or not Path(model_path).exists():
        raise FileNotFoundError(f"the frozen encoder's reward model {model_path!r} does not exist; give "
                                "encoder.path=<directory of a trained reward model> (or reward.model_path).")
    return FrozenFeatures(load(model_path, device=str(device)))
