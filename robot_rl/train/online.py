"""The online RL loop: collect -> update -> evaluate -> checkpoint, until a budget of env steps.

It takes built pieces (agent, env factories, buffers, logger) and typed settings, never the
whole config. Steps count environment (agent) steps over all parallel envs; with ``utd`` the
agent makes ``utd`` gradient updates per env step once ``seed_steps`` random steps are in.
The schedule, evaluation and checkpoints are ``loop.TrainLoop``'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from robot_rl.algos.base import Agent
from robot_rl.train.collect import Collector, EnvFactory, Transitions
from robot_rl.train.logger import Logger
from robot_rl.train.loop import LoopConfig, TrainLoop
from robot_rl.train.replay import MixedSampler, ReplayBuffer, batch_to_torch
from robot_rl.train.rewards import BackgroundLabels


@dataclass(frozen=True)
class PrivilegeSchedule:
    """The privileged-action curriculum (Mao et al. 2025; ``sim.privilege``): the assisted grasp's
    strength is ``grasp_assist`` for ``hold_steps`` env steps, then falls linearly to none over
    ``anneal_steps``; the rest of training, like every evaluation, has no help."""

    grasp_assist: float = 0.0
    hold_steps: int = 0
    anneal_steps: int = 0

    def strength(self, step: int) -> float:
        """The strength at env step ``step``, in steps of 0.01 (the envs are told when it changes)."""
        if step < self.hold_steps:
            value = self.grasp_assist
        else:
            left = 1.0 - (step - self.hold_steps) / self.anneal_steps if self.anneal_steps else 0.0
            value = self.grasp_assist * min(max(left, 0.0), 1.0)
        return round(value, 2)


@dataclass
class OnlineConfig(LoopConfig):
    """Budget and schedule of one online run."""

    total_steps: int = 100_000
    seed_steps: int = 5_000
    batch_size: int = 256
    utd: int = 1
    demo_fraction: float = 0.5
    num_envs: int = 1
    privilege: PrivilegeSchedule = field(default_factory=PrivilegeSchedule)


class OnlineTrainer(TrainLoop):
    """Runs one online training job in ``run_dir``; ``run()`` returns the final evaluation."""

    def __init__(self, agent: Agent, make_env: EnvFactory, make_eval_env: EnvFactory, config: OnlineConfig,
                 run_dir: Path, logger: Logger, buffer: ReplayBuffer, demos: ReplayBuffer | None = None,
                 reward_override: Callable | None = None, resume: bool = False) -> None:
        super().__init__(agent, make_eval_env, config, config.total_steps, run_dir, logger)
        self.make_env, self.buffer, self.demos, self.reward_override = make_env, buffer, demos, reward_override
        self.saved_buffer = buffer
        self.sampler = MixedSampler(buffer, demos, config.demo_fraction)
        self.rng = np.random.default_rng(config.seed)
        self.normalized = False
        self.logged_step = -1
        self.collector: Collector | None = None
        # a learned reward that can label steps in batches is scored beside the learner
        every = int(getattr(reward_override, "background_every", 0) or 0)
        self.labels = BackgroundLabels(reward_override, every) if every and hasattr(reward_override, "label_steps") else None
        if resume:
            self.restore()

    # --- the steps of the loop -----------------------------------------------------------------
    def start(self) -> None:
        self.collector = Collector(self.make_env, self.config.num_envs, seed=self.config.seed + 7919 * (self.step + 1))

    def train_step(self) -> None:
        self.collect()
        self.update()

    def collect(self) -> None:
        """One vector step: random actions during the seed phase, then the stochastic policy."""
        collector = self.collector
        collector.set_privilege(self.config.privilege.strength(self.step))
        if self.step < self.config.seed_steps:
            action = self.rng.uniform(-1, 1, (collector.num_envs, *self.action_shape())).astype(np.float32)
        else:
            action = self.agent.act(collector.obs, deterministic=False)
        t = collector.step(action, None if self.labels else self.reward_override, track=False)
        self.store([t] if self.labels is None else self.labels.add(t))
        self.step += collector.num_envs

    def store(self, steps: list[Transitions]) -> None:
        """Rewarded steps into the replay buffer and the episode statistics, in collection order."""
        for t in steps:
            self.buffer.add(t.obs, t.action, t.reward, t.next_obs, t.terminated)
            self.collector.track(t)

    def flush_labels(self) -> None:
        """Every step collected so far into the buffer (its reward scored now if still pending)."""
        if self.labels is not None and self.collector is not None:
            self.store(self.labels.flush())

    def update(self) -> None:
        """``utd`` updates per env step collected, once the seed phase is over."""
        if self.step < self.config.seed_steps or len(self.buffer) == 0:
            return
        if not self.normalized:
            self.fit_normalization()
        n = self.config.utd * self.collector.num_envs
        for i in range(n):
            batch = batch_to_torch(self.sample(), self.agent.device)
            self.update_metrics = self.agent.update(batch, update_actor=i == n - 1)

    def sample(self) -> dict:
        """A batch of transitions, or of runs of ``agent.sequence_length`` consecutive ones for an
        agent that learns from rollouts (TD-MPC2)."""
        length = int(getattr(self.agent, "sequence_length", 0))
        if length:
            stride = self.collector.num_envs if self.collector is not None else 1  # Ray actors commit whole episodes
            return self.sampler.sample_sequences(self.config.batch_size, length, stride)
        return self.sampler.sample(self.config.batch_size)

    def finish(self, bar) -> None:
        self.flush_labels()
        if self.step != self.logged_step:
            self.log(bar)

    def close(self) -> None:
        if self.labels is not None:
            self.labels.close()
        if self.collector is not None:
            self.collector.close()
        super().close()

    def checkpoint(self) -> None:
        self.flush_labels()  # a checkpoint's buffer holds every step collected before it
        super().checkpoint()

    # --- checkpoint state ----------------------------------------------------------------------
    def checkpoint_state(self) -> dict:
        return {"normalized": self.normalized, "trainer_rng": self.rng.bit_generator.state}

    def load_checkpoint_state(self, state: dict) -> None:
        self.normalized = state["normalized"]
        self.rng.bit_generator.state = state["trainer_rng"]

    # --- helpers -------------------------------------------------------------------------------
    def action_shape(self) -> tuple[int, ...]:
        return self.buffer.arrays["action"].shape[1:]

    def fit_normalization(self) -> None:
        """Freeze observation normalisation from everything seen so far (online + demos)."""
        fit_normalization(self.agent, self.buffer, self.demos, self.config.normalize_obs)
        self.normalized = True

    def progress_metrics(self) -> dict[str, float]:
        """Where the run stands: env steps, updates, time, and the curriculum's strength when it has one."""
        metrics = {"train/env_steps": self.step, "train/updates": self.agent.num_updates,
                   "train/wall_s": self.wall_s, "train/steps_per_s": self.step / max(self.wall_s, 1e-9)}
        if self.config.privilege.grasp_assist:
            metrics["train/privilege"] = self.config.privilege.strength(self.step)
        return metrics

    def log(self, bar) -> None:
        stats = self.collector.pop_stats()
        metrics = {**self.update_metrics, **self.progress_metrics()}
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


def fit_normalization(agent: Agent, buffer: ReplayBuffer, demos: ReplayBuffer | None, enabled: bool) -> None:
    """Freeze ``agent``'s observation normalisation from both buffers' observations (when ``enabled``)."""
    if not enabled:
        return
    values = {}
    for key in agent.encoder.state_keys:
        parts = [buffer.observations(key)]
        if demos is not None and len(demos):
            parts.append(demos.observations(key))
        values[key] = np.concatenate(parts)
    agent.fit_normalization(values)
