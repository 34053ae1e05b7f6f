"""Distillation by DAgger: a privileged teacher's behaviour into a deployable student.

Each round collects episodes (the teacher executes each with probability β, else the
student; the teacher labels every step, see ``dagger.py``), commits them to the run's
``distill.zarr``, adds them to the aggregate dataset and makes a fixed number of behaviour-
cloning updates on it. β starts at ``beta0`` (1: the first round is the teacher's alone, plain
behaviour cloning) and decays geometrically, so later rounds are mostly the student's own
states relabelled. Collection cycles through the ``collect_randomize`` presets (``train``:
visual and dynamics, and nominal); the evaluation uses the run's own randomisation, one seeded
set of episodes per task. The unit of
the loop is a round; schedule, evaluation and checkpoints are ``loop.TrainLoop``'s. A resumed
run reloads its aggregate from the store (the source of truth), including episodes committed
after the last checkpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from robot_rl.algos.base import Agent
from robot_rl.train.collect import EnvFactory
from robot_rl.algos.networks import ObsSpec
from robot_rl.train.dagger import AUX, Aggregate, DaggerCollector, EpisodeSink, load_aggregate, store_schema
from robot_rl.train.logger import Logger
from robot_rl.train.loop import LoopConfig, TrainLoop
from robot_rl.train.replay import batch_to_torch
from robot_rl.train.rollouts import EvalResult, run_episodes, write_video_grid
from robot_rl.train.teachers import TaskCycle, TeacherLabels

EVAL_SEED = 10_000  # as TrainLoop.evaluate: never a training episode's seed


@dataclass
class DistillConfig(LoopConfig):
    """Budget and schedule of one distillation run (``eval_every``/``checkpoint_every`` in rounds)."""

    rounds: int = 10
    episodes_per_round: int = 20
    updates_per_round: int = 500
    batch_size: int = 128
    beta0: float = 1.0
    beta_decay: float = 0.5
    eval_every: int = 5
    checkpoint_every: int = 1
    log_every: int = 1

    def beta(self, round_: int) -> float:
        return float(self.beta0 * self.beta_decay ** round_)


class DistillTrainer(TrainLoop):
    """DAgger rounds (collect -> aggregate -> update) of ``agent`` under ``teacher``; ``run()``
    returns the final evaluation over every task (per task in ``per_task``)."""

    unit = "round"

    def __init__(self, agent: Agent, obs_specs: dict[str, ObsSpec], action_dim: int, collect_makers: list[EnvFactory],
                 eval_makers: dict[str, EnvFactory], config: DistillConfig, run_dir: Path, logger: Logger,
                 store_attrs: dict, teacher_source: str, resume: bool = False, device: str = "cpu",
                 aux_dim: int = 0, make_collector: Callable | None = None) -> None:
        super().__init__(agent, None, config, config.rounds, run_dir, logger)
        self.collect_makers, self.eval_makers, self.device = collect_makers, eval_makers, device
        self.make_collector = make_collector or DaggerCollector  # robot_rl.distributed.dagger: on Ray actors
        # the privileged state as an auxiliary target (algos/bc.py), when the agent weighs it
        self.aux_dim = aux_dim if getattr(agent.config, "aux_weight", 0.0) > 0 else 0
        if self.aux_dim:
            agent.enable_aux(self.aux_dim)
        self.store_path = self.run_dir / "distill.zarr"
        self.schema, self.store_attrs = store_schema(obs_specs, action_dim, self.aux_dim), store_attrs
        self.teacher_source = teacher_source
        self.data = Aggregate(obs_specs, action_dim, config.seed, self.aux_dim)
        self.normalized = False
        self.collector: DaggerCollector | None = None
        self.sink: EpisodeSink | None = None
        self.eval_envs: dict = {}
        self.per_task: dict[str, EvalResult] = {}
        if resume and self.restore():
            load_aggregate(self.store_path, self.data)

    # --- the steps of the loop -----------------------------------------------------------------
    def start(self) -> None:
        self.sink = EpisodeSink(self.store_path, self.schema, self.store_attrs, self.teacher_source)
        self.collector = self.make_collector(self.collect_makers, list(self.agent.obs_keys),
                                             self.config.seed + 7919 * (self.step + 1), aux=bool(self.aux_dim))

    def train_step(self) -> None:
        cfg: DistillConfig = self.config
        beta = cfg.beta(self.step)
        seed = (cfg.seed + 1) * 1_000_000 + self.step * 10_000  # never an evaluation seed (EVAL_SEED + 1000 * seed)
        episodes = self.collector.collect(cfg.episodes_per_round, beta, self.student, seed, self.sink)
        for episode in episodes:
            self.data.add(episode.arrays())
        if not self.normalized:
            self.fit_normalization()
        losses = [self.agent.update(batch_to_torch(self.data.sample(cfg.batch_size), self.device))
                  for _ in range(cfg.updates_per_round)]
        self.step += 1
        self.update_metrics = self.round_metrics(episodes, losses, beta)

    def student(self, obs: dict) -> np.ndarray:
        return self.agent.act(obs, deterministic=True)

    def round_metrics(self, episodes, losses: list[dict], beta: float) -> dict[str, float]:
        metrics = {k: float(np.mean([m[k] for m in losses])) for k in losses[0]} if losses else {}
        first = {f"{k}_first": v for k, v in losses[0].items()} if losses else {}
        metrics.update(first, **{"train/beta": beta, "train/env_steps": len(self.data),
                                 "train/episodes": self.step * self.config.episodes_per_round})
        for who, by_teacher in (("teacher", True), ("student", False)):
            runs = [e.success for e in episodes if e.by_teacher == by_teacher]
            if runs:
                metrics[f"train/{who}_success"] = float(np.mean(runs))
        return metrics

    def fit_normalization(self) -> None:
        if self.config.normalize_obs:
            self.agent.fit_normalization({k: self.data.observations(k) for k in self.agent.encoder.state_keys})
        if self.aux_dim:
            self.agent.fit_aux(self.data.observations(AUX))
        self.normalized = True

    def checkpoint_state(self) -> dict:
        return {"normalized": self.normalized, "data_rng": self.data.rng.bit_generator.state}

    def load_checkpoint_state(self, state: dict) -> None:
        self.normalized = state["normalized"]
        self.data.rng.bit_generator.state = state["data_rng"]

    def log(self, bar) -> None:
        self.logger.log({**self.update_metrics, "train/rounds": self.step, "train/updates": self.agent.num_updates,
                         "train/wall_s": self.wall_s}, self.step)
        shown = {k.split("/")[1]: f"{v:.3g}" for k, v in self.update_metrics.items()
                 if k in ("losses/bc", "train/student_success", "train/beta")}
        bar.set_postfix(shown, refresh=False)

    def close(self) -> None:
        for part in (self.collector, self.sink, *self.eval_envs.values()):
            if part is not None:
                part.close()
        self.eval_envs = {}

    # --- evaluation: per task, and the teacher on the same seeds ----------------------------------
    def evaluate(self, video: bool) -> EvalResult | None:
        cfg = self.config
        act = lambda obs: self.agent.act(obs, deterministic=True)  # noqa: E731
        self.per_task = run_tasks(lambda env: act, self.eval_makers, self.eval_envs, cfg, video)
        result = merge(list(self.per_task.values()))
        metrics = {**result.metrics(), "eval/wall_s": self.wall_s}
        if len(self.per_task) > 1:
            metrics.update({f"eval/{t}/success_rate": r.success_rate for t, r in self.per_task.items()})
        self.logger.log(metrics, self.step)
        if result.frames:
            labels = [f"{'success' if s else 'fail'} R={r:.0f}" for s, r in zip(result.successes, result.returns)]
            write_video_grid(self.run_dir / "videos" / f"eval_{self.step}.mp4", result.frames, cfg.video_fps, labels)
        self.last_eval = result
        return result


def run_tasks(act_in: Callable, makers: dict[str, EnvFactory], envs: dict, cfg: LoopConfig,
              video: bool) -> dict[str, EvalResult]:
    """``act_in(env)`` on each task's eval env (made once, kept in ``envs``) for ``eval_episodes``
    seeds, the same for every task and every policy evaluated (paired)."""
    out = {}
    for task, make in makers.items():
        if task not in envs:
            envs[task] = make()
        videos = max(1, cfg.video_episodes // len(makers)) if video and cfg.video_episodes else 0
        out[task] = run_episodes(act_in(envs[task]), envs[task], cfg.eval_episodes, seed=EVAL_SEED + cfg.seed * 1000,
                                 video_episodes=videos)
    return out


def merge(results: list[EvalResult]) -> EvalResult:
    """One result over several tasks' episodes (the success rate is over all of them)."""
    successes = [s for r in results for s in r.successes]
    returns = [x for r in results for x in r.returns]
    return EvalResult(float(np.mean(successes)), float(np.mean(returns)), float(np.std(returns)), len(successes),
                      returns, successes, [f for r in results for f in r.frames])


def evaluate_teacher(makers: dict[str, EnvFactory], cfg: LoopConfig) -> dict[str, EvalResult]:
    """The teacher on the student's evaluation episodes (same tasks, seeds and randomisation; the
    envs carry ``TeacherLabels``): the reference the student's success is read against."""
    envs: dict = {}
    try:
        return run_tasks(lambda env: (lambda obs: teacher_of(env).teacher_action[None]), makers, envs, cfg, False)
    finally:
        for env in envs.values():
            env.close()


def teacher_of(env) -> TeacherLabels:
    """The ``TeacherLabels`` wrapper inside ``env`` (through ``TaskCycle``'s current task)."""
    while not isinstance(env, TeacherLabels):
        env = env.current if isinstance(env, TaskCycle) else env.env
    return env
