"""Training batches with RoboReward-style negatives mixed in.

Each batch holds three kinds of rows (fractions from :class:`NegativesConfig`):

- ``real``: any recorded frame with its own instruction and targets. Perturbed or random
  rollouts in the data are the *real failures*;
- ``clipped`` (temporal clipping): a successful episode cut at a random step before its
  success, so that frame is partial progress and not success. Scripted demos spend most of
  their frames holding the finished state; clipping keeps the way there well represented;
- ``counterfactual`` (relabelling): a frame of an episode that got somewhere, read with an
  instruction its state does not satisfy (see :mod:`reward_models.instructions`), labelled
  not successful with progress ``negatives.counterfactual_progress``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from reward_models.config import NegativesConfig
from reward_models.dataset import RewardDataset
from reward_models.instructions import InstructionBank

KINDS = ("real", "clipped", "counterfactual")


@dataclass
class Batch:
    """Row indices into the dataset, the instruction read with each, and targets."""

    rows: np.ndarray
    instructions: list[str]
    progress: np.ndarray
    success: np.ndarray
    progress_weight: np.ndarray
    kind: np.ndarray  # index into KINDS


class BatchSampler:
    """Draws :class:`Batch` es from a dataset with a seeded generator."""

    def __init__(self, data: RewardDataset, bank: InstructionBank, config: NegativesConfig, seed: int = 0,
                 rephrase: float = 0.0) -> None:
        self.data, self.bank, self.config, self.rephrase = data, bank, config, rephrase
        self.rng = np.random.default_rng(seed)
        self.episode_of = np.repeat(np.arange(len(data.episodes)), [e.stop - e.start for e in data.episodes])
        self._before_success = np.concatenate(
            [np.arange(e.start, e.first_success) for e in data.episodes if e.first_success is not None]
            or [np.zeros(0, np.int64)]).astype(np.int64)
        # Counterfactuals matter where the true instruction is (nearly) satisfied.
        advanced = np.flatnonzero(data.progress >= 0.5)
        self._cf_rows = advanced if len(advanced) else np.arange(len(data))
        self._cf_ok = np.array([bool(bank.counterfactuals(e.task, e.instruction, config.kinds)) for e in data.episodes])
        self._cf_rows = self._cf_rows[self._cf_ok[self.episode_of[self._cf_rows]]]

    def sample(self, batch_size: int) -> Batch:
        """One batch: ``real`` rows, then ``clipped``, then ``counterfactual``."""
        n_clip = int(round(self.config.clipped * batch_size)) if len(self._before_success) else 0
        n_cf = int(round(self.config.counterfactual * batch_size)) if len(self._cf_rows) else 0
        n_real = batch_size - n_clip - n_cf
        real = self.rng.integers(0, len(self.data), n_real)
        clip = self._before_success[self.rng.integers(0, len(self._before_success), n_clip)] if n_clip else real[:0]
        cf = self._cf_rows[self.rng.integers(0, len(self._cf_rows), n_cf)] if n_cf else real[:0]
        rows = np.concatenate([real, clip, cf])
        texts = [self._phrase(int(e)) for e in self.episode_of[rows[: n_real + n_clip]]]
        texts += [self._mismatch(int(e)) for e in self.episode_of[cf]]
        d = self.data
        progress, success, weight = d.progress[rows].copy(), d.success[rows].copy(), d.progress_weight[rows].copy()
        success[n_real:] = 0.0  # clipped rows lie before success by construction; counterfactuals never succeed
        progress[n_real + n_clip:] = self.config.counterfactual_progress
        weight[n_real + n_clip:] = 1.0
        kind = np.repeat(np.arange(3), [n_real, n_clip, n_cf])
        return Batch(rows, texts, progress, success, weight, kind)

    def _phrase(self, episode: int) -> str:
        ep = self.data.episodes[episode]
        if self.rephrase and self.rng.random() < self.rephrase:
            return self.bank.rephrase(ep.task, ep.instruction, self.rng)
        return ep.instruction

    def _mismatch(self, episode: int) -> str:
        ep = self.data.episodes[episode]
        options = self.bank.counterfactuals(ep.task, self._phrase(episode), self.config.kinds, self.rng)
        return options[self.rng.integers(len(options))][1]
