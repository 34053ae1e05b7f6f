"""The online RL loop: collect -> update -> evaluate -> checkpoint, until a budget of env steps.

It takes built pieces (agent, env factories, buffers, logger) and typed settings, never the
whole config. Steps count environment (agent) steps over all parallel envs; with ``utd`` the
agent makes ``utd`` gradient updates per env step once ``seed_steps`` random steps are in.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from robot_rl.train.checkpoint import checkpoint_path, load_checkpoint, restore_agent, save_checkpoint
from robot_rl.train.collect import Collector, EnvFactory
from robot_rl.train.evaluate import EvalResult, evaluate_and_record
from robot_rl.train.logger import Logger
from robot_rl.train.replay import MixedSampler, ReplayBuffer, batch_to_torch

log = logging.getLogger(__name__)


@dataclass
class OnlineConfig:
    """Budget and schedule of one online run."""

    total_steps: int = 100_000
    seed_steps: int = 5_000
    batch_size: int = 256
    utd: int = 1
    demo_fraction: float = 0.5
    num_envs: int = 1
    eval_every: int = 10_000
    eval_episodes: int = 10
    video_episodes: int = 4
    checkpoint_every: int = 10_000
    log_every: int = 1_000
    normalize_obs: bool = True
    seed: int = 0
    video_fps: float = 20.0
    progress_bar: bool = True


class OnlineTrainer:
    """Runs one online training job in ``run_dir``; ``run()`` returns the final evaluation."""

    def __init__(self, agent, make_env: EnvFactory, make_eval_env: EnvFactory, config: OnlineConfig, run_dir: Path,
                 logger: Logger, buffer: ReplayBuffer, demos: ReplayBuffer | None = None,
                 reward_override: Callable | None = None, resume: bool = False) -> None:
        self.agent, self.config, self.run_dir, self.logger = agent, config, Path(run_dir), logger
        self.make_env, self.make_eval_env = make_env, make_eval_env
        self.buffer, self.demos, self.reward_override = buffer, demos, reward_override
        self.sampler = MixedSampler(buffer, demos, config.demo_fraction)
        self.rng = np.random.default_rng(config.seed)
        self.step, self.normalized, self.wall_s = 0, False, 0.0
        self.last_eval: EvalResult | None = None
        self.collector: Collector | None = None
        self.eval_env = None
        if resume:
            self.restore()

    # --- the loop ----------------------------------------------------------------------------
    def run(self) -> EvalResult:
        cfg = self.config
        self.collector = Collector(self.make_env, cfg.num_envs, seed=cfg.seed + 7919 * (self.step + 1))
        bar = _progress_bar(cfg.total_steps, self.step, cfg.progress_bar)
        start, start_wall = time.perf_counter(), self.wall_s
        next_eval, next_ckpt, next_log = (_next(self.step, every) for every in
                                         (cfg.eval_every, cfg.checkpoint_every, cfg.log_every))
        self.update_metrics: dict[str, float] = {}
        self.logged_step = -1
        try:
            while self.step < cfg.total_steps:
                self.collect()
                self.update()
                self.wall_s = start_wall + time.perf_counter() - start
                bar.update(cfg.num_envs)
                if self.step >= next_log:
                    self.log_train(bar)
                    next_log = _next(self.step, cfg.log_every)
                if self.step >= next_eval and self.step < cfg.total_steps:  # the final one follows the loop
                    self.evaluate(video=False)
                    next_eval = _next(self.step, cfg.eval_every)
                if self.step >= next_ckpt and self.step < cfg.total_steps:
                    self.checkpoint()
                    next_ckpt = _next(self.step, cfg.checkpoint_every)
            if self.step != self.logged_step:
                self.log_train(bar)
            result = self.evaluate(video=True)
            self.checkpoint()
            return result
        finally:
            bar.close()
            self.collector.close()
            if self.eval_env is not None:
                self.eval_env.close()

    def collect(self) -> None:
        """One vector step: random actions during the seed phase, then the stochastic policy."""
        collector = self.collector
        if self.step < self.config.seed_steps:
            action = self.rng.uniform(-1, 1, (collector.num_envs, *self.action_shape())).astype(np.float32)
        else:
            action = self.agent.act(collector.obs)
        t = collector.step(action, self.reward_override)
        self.buffer.add(t.obs, t.action, t.reward, t.next_obs, t.terminated)
        self.step += collector.num_envs

    def update(self) -> None:
        """``utd`` updates per env step collected, once the seed phase is over."""
        if self.step < self.config.seed_steps or len(self.buffer) == 0:
            return
        if not self.normalized:
            self.fit_normalization()
        n = self.config.utd * self.collector.num_envs
        for i in range(n):
            batch = batch_to_torch(self.sampler.sample(self.config.batch_size))
            self.update_metrics = self.agent.update(batch, update_actor=i == n - 1)

    def evaluate(self, video: bool) -> EvalResult:
        if self.eval_env is None:
            self.eval_env = self.make_eval_env()
        cfg = self.config
        self.last_eval = evaluate_and_record(
            lambda obs: self.agent.act(obs, deterministic=True), self.eval_env, episodes=cfg.eval_episodes,
            seed=cfg.seed, video_episodes=cfg.video_episodes if video else 0, video_fps=cfg.video_fps,
            step=self.step, run_dir=self.run_dir, logger=self.logger, wall_s=self.wall_s)
        return self.last_eval

    def checkpoint(self) -> None:
        state = {"step": self.step, "agent": self.agent.state_dict(), "normalized": self.normalized,
                 "wall_s": self.wall_s, "trainer_rng": self.rng.bit_generator.state}
        save_checkpoint(self.run_dir / "checkpoints", state, self.buffer)
        self.logger.flush()

    def restore(self) -> None:
        state = load_checkpoint(self.run_dir / "checkpoints", self.buffer)
        if state is None:
            log.info("no checkpoint in %s; starting from scratch", self.run_dir)
            return
        restore_agent(self.agent, state, checkpoint_path(self.run_dir / "checkpoints"))
        self.step, self.normalized, self.wall_s = state["step"], state["normalized"], state["wall_s"]
        self.rng.bit_generator.state = state["trainer_rng"]
        log.info("resumed %s at step %d (replay buffer: %d transitions)", self.run_dir, self.step, len(self.buffer))

    # --- helpers -----------------------------------------------------------------------------
    def action_shape(self) -> tuple[int, ...]:
        return self.buffer.arrays["action"].shape[1:]

    def fit_normalization(self) -> None:
        """Freeze observation normalisation from everything seen so far (online + demos)."""
        if self.config.normalize_obs:
            values = {}
            for key in self.agent.encoder.state_keys:
                parts = [self.buffer.observations(key)]
                if self.demos is not None and len(self.demos):
                    parts.append(self.demos.observations(key))
                values[key] = np.concatenate(parts)
            self.agent.fit_normalization(values)
        self.normalized = True

    def log_train(self, bar) -> None:
        stats = self.collector.pop_stats()
        metrics = dict(self.update_metrics)
        metrics.update({"train/env_steps": self.step, "train/updates": self.agent.num_updates,
                        "train/wall_s": self.wall_s, "train/steps_per_s": self.step / max(self.wall_s, 1e-9)})
        if stats.returns:
            metrics.update({"train/episode_return": float(np.mean(stats.returns)),
                            "train/success_rate": float(np.mean(stats.successes)),
                            "train/episodes": len(stats.returns)})
        agreement = getattr(self.reward_override, "agreement", None)
        if agreement is not None:
            metrics.update(agreement.metrics())
            agreement.reset()
        self.logger.log(metrics, self.step)
        self.logged_step = self.step
        postfix = {"ret": metrics.get("train/episode_return", float("nan")),
                   "success": metrics.get("train/success_rate", float("nan"))}
        if self.last_eval is not None:
            postfix["eval_success"] = self.last_eval.success_rate
        bar.set_postfix({k: f"{v:.2f}" for k, v in postfix.items()}, refresh=False)


def _next(step: int, every: int) -> int:
    return (step // every + 1) * every if every > 0 else 1 << 62


def _progress_bar(total: int, initial: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit="step", dynamic_ncols=True,
                mininterval=1.0)
