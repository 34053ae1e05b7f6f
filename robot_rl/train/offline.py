"""The offline loop (IQL, BC): update -> evaluate -> checkpoint over a fixed dataset.

The dataset is a replay buffer loaded from a Zarr store (``demos.load_store``); it is not
saved in checkpoints (the store is the source of truth and is reloaded on resume). The
schedule, evaluation and checkpoints are ``loop.TrainLoop``'s.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from robot_rl.algos.base import Agent
from robot_rl.train.collect import EnvFactory
from robot_rl.train.logger import Logger
from robot_rl.train.loop import LoopConfig, TrainLoop
from robot_rl.train.replay import ReplayBuffer, batch_to_torch


@dataclass
class OfflineConfig(LoopConfig):
    """Budget and schedule of one offline run."""

    total_updates: int = 20_000
    batch_size: int = 256
    eval_every: int = 5_000
    checkpoint_every: int = 5_000
    log_every: int = 500


class OfflineTrainer(TrainLoop):
    """Trains ``agent`` on ``dataset`` for ``total_updates``; ``run()`` returns the final evaluation."""

    unit = "update"

    def __init__(self, agent: Agent, dataset: ReplayBuffer, make_eval_env: EnvFactory | None, config: OfflineConfig,
                 run_dir: Path, logger: Logger, resume: bool = False) -> None:
        super().__init__(agent, make_eval_env, config, config.total_updates, run_dir, logger)
        self.dataset = dataset
        if config.normalize_obs:
            agent.fit_normalization({k: dataset.observations(k) for k in agent.encoder.state_keys})
        if resume:
            self.restore()

    def train_step(self) -> None:
        batch = batch_to_torch(self.dataset.sample(self.config.batch_size), self.agent.device)
        self.update_metrics = self.agent.update(batch)
        self.step += 1

    def log(self, bar) -> None:
        self.logger.log({**self.update_metrics, "train/updates": self.step, "train/wall_s": self.wall_s}, self.step)
        if self.last_eval is not None:
            bar.set_postfix(eval_success=f"{self.last_eval.success_rate:.2f}", refresh=False)

    def checkpoint_state(self) -> dict:
        return {"dataset_rng": self.dataset.rng.bit_generator.state}

    def load_checkpoint_state(self, state: dict) -> None:
        self.dataset.rng.bit_generator.state = state["dataset_rng"]
