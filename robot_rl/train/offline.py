"""The offline loop (IQL, BC): update -> evaluate -> checkpoint over a fixed dataset.

The dataset is a replay buffer loaded from a Zarr store; it is not saved in checkpoints (the
store is the source of truth and is reloaded on resume).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from robot_rl.train.checkpoint import checkpoint_path, load_checkpoint, restore_agent, save_checkpoint
from robot_rl.train.collect import EnvFactory
from robot_rl.train.evaluate import EvalResult, evaluate_and_record
from robot_rl.train.logger import Logger
from robot_rl.train.replay import ReplayBuffer, batch_to_torch

log = logging.getLogger(__name__)


@dataclass
class OfflineConfig:
    total_updates: int = 20_000
    batch_size: int = 256
    eval_every: int = 5_000
    eval_episodes: int = 10
    video_episodes: int = 4
    checkpoint_every: int = 5_000
    log_every: int = 500
    normalize_obs: bool = True
    seed: int = 0
    video_fps: float = 20.0
    progress_bar: bool = True


class OfflineTrainer:
    """Trains ``agent`` on ``dataset`` for ``total_updates``; ``run()`` returns the final evaluation."""

    def __init__(self, agent, dataset: ReplayBuffer, make_eval_env: EnvFactory | None, config: OfflineConfig,
                 run_dir: Path, logger: Logger, resume: bool = False) -> None:
        self.agent, self.dataset, self.make_eval_env = agent, dataset, make_eval_env
        self.config, self.run_dir, self.logger = config, Path(run_dir), logger
        self.step, self.wall_s, self.eval_env = 0, 0.0, None
        self.last_eval: EvalResult | None = None
        if config.normalize_obs:
            agent.fit_normalization({k: dataset.observations(k) for k in agent.encoder.state_keys})
        if resume:
            self.restore()

    def run(self) -> EvalResult | None:
        from tqdm import tqdm

        cfg = self.config
        bar = tqdm(total=cfg.total_updates, initial=self.step, disable=not cfg.progress_bar, unit="update",
                   mininterval=1.0, dynamic_ncols=True)
        start, start_wall = time.perf_counter(), self.wall_s
        try:
            while self.step < cfg.total_updates:
                metrics = self.update()
                self.wall_s = start_wall + time.perf_counter() - start
                bar.update(1)
                if self.step % cfg.log_every == 0:
                    self.logger.log({**metrics, "train/updates": self.step, "train/wall_s": self.wall_s}, self.step)
                if cfg.eval_every and self.step % cfg.eval_every == 0 and self.step < cfg.total_updates:
                    self.evaluate(video=False)
                    bar.set_postfix(eval_success=f"{self.last_eval.success_rate:.2f}", refresh=False)
                if self.step % cfg.checkpoint_every == 0:
                    self.checkpoint()
            result = self.evaluate(video=True)
            self.checkpoint()
            return result
        finally:
            bar.close()
            if self.eval_env is not None:
                self.eval_env.close()

    def update(self) -> dict[str, float]:
        metrics = self.agent.update(batch_to_torch(self.dataset.sample(self.config.batch_size)))
        self.step += 1
        return metrics

    def evaluate(self, video: bool) -> EvalResult | None:
        if self.make_eval_env is None or self.config.eval_episodes <= 0:
            return None
        if self.eval_env is None:
            self.eval_env = self.make_eval_env()
        cfg = self.config
        self.last_eval = evaluate_and_record(
            lambda obs: self.agent.act(obs, deterministic=True), self.eval_env, episodes=cfg.eval_episodes,
            seed=cfg.seed, video_episodes=cfg.video_episodes if video else 0, video_fps=cfg.video_fps,
            step=self.step, run_dir=self.run_dir, logger=self.logger, wall_s=self.wall_s)
        return self.last_eval

    def checkpoint(self) -> None:
        state = {"step": self.step, "agent": self.agent.state_dict(), "wall_s": self.wall_s,
                 "dataset_rng": self.dataset.rng.bit_generator.state}
        save_checkpoint(self.run_dir / "checkpoints", state)
        self.logger.flush()

    def restore(self) -> None:
        state = load_checkpoint(self.run_dir / "checkpoints")
        if state is None:
            log.info("no checkpoint in %s; starting from scratch", self.run_dir)
            return
        restore_agent(self.agent, state, checkpoint_path(self.run_dir / "checkpoints"))
        self.step, self.wall_s = state["step"], state["wall_s"]
        self.dataset.rng.bit_generator.state = state["dataset_rng"]
        log.info("resumed %s at update %d", self.run_dir, self.step)
