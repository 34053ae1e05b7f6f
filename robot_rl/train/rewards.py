"""The reward a training run uses, built from the ``reward`` config group.

Each file of ``robot_rl/conf/reward/`` names its kind's builder in ``_target_``; a second
reward-model kind is one class (satisfying :class:`TrainingReward`) plus one YAML file.
``reward=gt`` is :class:`GroundTruthReward`, the sim's privileged progress/success;
``reward=vlm`` is ``reward_models.rl_reward.LearnedReward`` (the library never imports it:
the group's ``_target_`` names it, as the algo group names an algorithm).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import Any, Protocol

import numpy as np

from robot_rl.config import locate
from robot_rl.contracts import INFO_PROGRESS, INFO_SUCCESS, REWARD, ground_truth_reward


class TrainingReward(Protocol):
    """What the trainers need from a reward: the frames it reads, a collector step's reward,
    and a stored episode's per-row rewards (row t: frame t -> t+1; the last row is dropped)."""

    cameras: tuple[str, ...]  # cameras the env must render for it
    image_size: int | None  # the frame size it reads; None: any
    agreement: Any  # a ``RewardAgreement`` (``metrics()``, ``reset()``), or None

    def __call__(self, transitions: Any) -> np.ndarray: ...

    def label_episode(self, episode: Mapping[str, np.ndarray], instruction: str) -> np.ndarray: ...


class GroundTruthReward:
    """``reward=gt``: the env's own reward online; stored episodes from their ``info/*``."""

    cameras: tuple[str, ...] = ()
    image_size: int | None = None
    agreement = None

    def __init__(self, env_reward: str = "dense") -> None:
        self.kind = env_reward

    def __call__(self, transitions: Any) -> np.ndarray:
        return np.asarray(transitions.reward, np.float32)

    def label_episode(self, episode: Mapping[str, np.ndarray], instruction: str) -> np.ndarray:
        return stored_gt_reward(episode, self.kind)


def stored_gt_reward(episode: Mapping[str, np.ndarray], kind: str) -> np.ndarray:
    """Ground-truth rewards of a stored episode, from ``info/*`` (else its recorded ``reward``)."""
    if INFO_PROGRESS in episode and INFO_SUCCESS in episode:
        return np.asarray(ground_truth_reward(episode[INFO_PROGRESS], episode[INFO_SUCCESS], kind), np.float32)
    return np.asarray(episode[REWARD], np.float32)


def build_reward(group: Mapping[str, Any], env_reward: str) -> TrainingReward:
    """The reward group's ``_target_`` called with the group's keys its signature names
    (the group also holds keys for other verbs, such as ``reward train``'s ``model``)."""
    target = locate(str(group.get("_target_", f"{__name__}.GroundTruthReward")), "reward._target_")
    params = inspect.signature(target).parameters
    kwargs = {k: _plain(v) for k, v in group.items() if k in params and not k.startswith("_")}
    if "env_reward" in params:
        kwargs["env_reward"] = env_reward
    return target(**kwargs)


def _plain(value: Any) -> Any:
    """OmegaConf nodes as plain dicts and lists, so builders take ordinary typed arguments."""
    try:
        from omegaconf import DictConfig, ListConfig, OmegaConf
    except ImportError:  # pragma: no cover - hydra is a core dependency
        return value
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, (DictConfig, ListConfig)) else value


class BackgroundLabels:
    """A learned reward scored off the training thread, ``every`` collector steps at a time.

    Online training does not need a step's reward until the step is sampled, so the trainer
    hands steps over as they are collected; every ``every`` steps the gathered steps are scored
    in one batched pass (``reward.label_steps``) on a worker thread, while the training thread
    goes on stepping the env and updating (torch releases the GIL: on two cores the reward
    network runs beside the learner; an env's deferred cameras are drawn beside it too, and
    their frames waited for here). The batch handed over ``every`` steps earlier is collected
    then, so a step reaches the replay buffer ``every``-``2*every`` steps after it happened,
    at fixed steps: a run is as reproducible as with rewards scored at once. ``flush`` scores
    whatever is pending now (before a checkpoint, at the end)."""

    def __init__(self, reward: Any, every: int) -> None:
        from concurrent.futures import ThreadPoolExecutor

        self.reward, self.every = reward, max(1, int(every))
        self.pool = ThreadPoolExecutor(1, thread_name_prefix="reward")
        self.pending: list = []
        self.scoring: tuple[list, Any] | None = None  # (steps, future of their labels)

    def add(self, transitions: Any) -> list:
        """Hand over one collector step; returns the steps labelled since (reward set), in order."""
        self.pending.append(transitions)
        if len(self.pending) < self.every:
            return []
        done = self._collect()
        self.scoring = (self.pending, self.pool.submit(self._score, self.pending))
        self.pending = []
        return done

    def flush(self) -> list:
        """Every step handed over, labelled (waits for the worker)."""
        done = self._collect()
        if self.pending:
            done += self._label(self.pending, self._score(self.pending))
            self.pending = []
        return done

    def _score(self, steps: list) -> list:
        """Labels of ``steps``, their deferred frames (drawn by the envs' render threads) waited for here."""
        for t in steps:
            t.resolve_frames()
        return self.reward.label_steps(steps)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)

    def _collect(self) -> list:
        if self.scoring is None:
            return []
        steps, future = self.scoring
        self.scoring = None
        return self._label(steps, future.result())

    def _label(self, steps: list, labels: list) -> list:
        for t, (reward, progress, success) in zip(steps, labels):
            t.reward = self.reward.record(t, reward, progress, success)
        return steps
