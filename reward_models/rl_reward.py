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
                 shaper: Shaper | None = None, stride: int = 1, image_size: int | None = None,
                 background_every: int = 0, model: Any = None) -> None:
        if not cameras:
            raise ValueError("a learned reward needs at least one camera to score.")
        self.score_fn, self.cameras, self.batch_size = score, tuple(cameras), max(1, int(batch_size))
        self.reward_fn: Shaper = shaper if shaper is not None else unshaped(kind)
        self.needs_previous = shaper is not None  # only shaping reads Φ(s)
        self.stride, self.image_size = max(1, int(stride)), image_size
        # > 0: the online trainer scores this many steps at a time beside the learner
        # (robot_rl.train.rewards.BackgroundLabels); 0: each step when it is collected
        self.background_every = max(0, int(background_every))
        self.agreement = RewardAgreement()
        self.model = model  # the RewardModel behind ``score``, where there is one (load_learned_reward)
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
        return self.record(transitions, *self.label_steps([transitions])[0])

    def record(self, transitions: Any, reward: np.ndarray, progress: np.ndarray, success: np.ndarray) -> np.ndarray:
        """Log a labelled step's agreement with its ground truth; returns its reward."""
        self.agreement.add(progress, success, transitions.progress, transitions.success)
        return reward

    def label_steps(self, steps: Sequence[Any]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """``(reward, progress, success)`` of consecutive collector steps, every frame they need
        scored in **one** batched pass (a batch of 16 costs a third per frame of 16 single calls).

        Which frames need a score depends only on the frames (a new episode, the stride), not on
        the scores, so the steps are planned first: per env, the held score is an index into the
        frames to score (-1: the score held from before these steps); then scored; then rewarded
        in order. Steps must come in collection order; the result is what calling the reward on
        each step in turn gives."""
        picked: dict[str, list[np.ndarray]] = {image_key(c): [] for c in self.cameras}
        texts: list[str] = []
        plan = []
        held = np.zeros(0, np.int64)  # per env: the queued frame whose score it holds
        for t in steps:
            step_texts = list(t.instructions)
            self._start(len(step_texts))
            if len(held) != len(step_texts):
                held = np.full(len(step_texts), -1)
            fresh = np.flatnonzero(~self._same(t.obs, step_texts))  # new episodes (or the first call)
            if self.needs_previous:
                self._request(t.obs, step_texts, fresh, held, picked, texts)
                phi = held.copy()
            else:
                self._age[fresh] = self.stride  # a held score belongs to another episode: score the next frame
            self._age += 1
            self._request(t.next_obs, step_texts, np.flatnonzero(self._age >= self.stride), held, picked, texts)
            self._frames = {c: np.array(t.next_obs[image_key(c)]) for c in self.cameras}
            plan.append((phi if self.needs_previous else None, held.copy()))
        frames = {k: np.concatenate(v) for k, v in picked.items() if v}
        progress, success = self.score(frames, texts) if texts else (np.zeros(0, np.float32),) * 2
        progress, success = np.append(progress, 0).astype(np.float32), np.append(success, 0).astype(np.float32)
        before_p, before_s = self._progress.copy(), self._success.copy()

        def read(source: np.ndarray, scores: np.ndarray, before: np.ndarray) -> np.ndarray:
            return np.where(source >= 0, scores[source], before)  # index -1 reads the appended 0, unused

        out = []
        for t, (phi_source, source) in zip(steps, plan):
            p, s = read(source, progress, before_p), read(source, success, before_s)
            phi = read(phi_source, progress, before_p) if self.needs_previous else p
            out.append((np.asarray(self.reward_fn(phi, p, s, t.terminated), np.float32), p, s))
        if plan:
            self._progress, self._success = out[-1][1].astype(np.float32), out[-1][2].astype(np.float32)
        return out

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

    def _request(self, frames: Mapping[str, np.ndarray], texts: list[str], envs: np.ndarray, held: np.ndarray,
                 picked: dict[str, list[np.ndarray]], queue: list[str]) -> None:
        """Queue the frames of ``envs`` for scoring; those envs hold their scores from now on."""
        if not len(envs):
            return
        for key in picked:
            picked[key].append(np.asarray(frames[key])[envs])
        held[envs] = len(queue) + np.arange(len(envs))
        queue.extend(texts[i] for i in envs)
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
                         int(score.get("stride", 1)), int(model.config.image_size),
                         int(score.get("background_every", 0)), model)


class FrozenFeatures:
    """A reward model's instruction-conditioned image features as a frozen encoder
    (``RewardModel.features``): what an RL agent on the robot reads instead of raw frames, so
    its updates stay as cheap as a state agent's."""

    def __init__(self, model: Any) -> None:
        self.model, self.cameras, self.dim = model, tuple(model.cameras), int(model.feature_dim)
        self.image_size = int(model.config.image_size)

    def __call__(self, frames: Mapping[str, np.ndarray], instructions: list[str]) -> np.ndarray:
        return self.model.features({c: frames[image_key(c)] for c in self.cameras}, instructions)


def load_frozen_features(model_path: str, device: str = "cpu", reward: LearnedReward | None = None,
                         reward_path: str | None = None) -> FrozenFeatures:
    """``ros.encoder=reward``'s builder: the reward model at ``model_path`` as a frozen encoder.

    Where ``reward`` is that same model (``reward_path``, the directory it was loaded from, is
    ``model_path``), its network is shared and each frame goes through it once for both the
    reward and the features (``RewardModel.reuse_last``): on the 2-core build machine that is one
    pass of about 6 ms per control tick instead of two of 5.5 and 6."""
    from pathlib import Path

    from reward_models.io import load

    if not model_path or not Path(model_path).exists():
        raise FileNotFoundError(f"the frozen encoder's reward model {model_path!r} does not exist; give "
                                "ros.encoder_path=<directory of a trained reward model> (or reward.model_path).")
    shared = getattr(reward, "model", None)
    if shared is not None and reward_path and Path(reward_path).resolve() == Path(model_path).resolve():
        shared.reuse_last = True
        return FrozenFeatures(shared)
    return FrozenFeatures(load(model_path, device=str(device)))
