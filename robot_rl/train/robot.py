"""Online RL on a robot: real-time episodes in the control loop, learning on a thread beside it.

``RobotTrainer`` is the online trainer (replay, normalisation, checkpoints, resume) with
collection replaced by episodes on one robot env (``hardware.ros.robot_env``, or anything with
its ``send``/``receive``/``time_left_s`` split). A robot cannot wait for a learner, so the
gradient updates run on a ``Learner`` thread of their own (robot_rl.train.robot_learner; torch
releases the GIL in its kernels), niced below the control loop: every env step owes ``utd``
updates, and the learner pays them between a tick's command and the next tick (never in the
window where the loop turns an observation into a command) and freely between episodes. The
control loop acts with a CPU copy of the policy that the learner offers every ``publish_every``
updates. Updates the learner cannot pay within ``max_owed`` are dropped and counted
(``train/updates_dropped``); the effective UTD is logged. Checkpoints pause the learner; the
final evaluation waits until what is owed is paid. With ``ray.address`` the learner runs in a Ray
worker on another machine instead (``make_learner``: robot_rl.distributed.robot_learner); this
process keeps the control loop, the store and complete checkpoints.

Everything the robot did is kept:
- every episode, training and evaluation, is committed to a Zarr store (``store``) as it ends,
  with the executed action, the reward, the reward model's and the operator's judgement and
  the intervention flags; a run that dies loses only the episode in progress;
- steps where the operator intervened also go to the demonstration buffer (RLPD samples it
  beside the online data), and the intervention rate is logged; once they fill a batch, the
  random seed phase is over and learning starts, while the operator still drives;
- on ``resume=true`` the store refills what the checkpoint lacks: training episodes committed
  after it go back to the replay buffer, every operator step to the demonstrations.

Evaluation runs deterministic episodes on the same robot, without interventions.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import gymnasium as gym
import numpy as np

from robot_rl.algos.base import Agent
from robot_rl.contracts import ACTION, REWARD, image_key
from robot_rl.train.logger import Logger
from robot_rl.train.online import OnlineConfig, OnlineTrainer
from robot_rl.train.replay import ReplayBuffer
from robot_rl.train.robot_io import INFO_INTERVENTION, OBS_FEATURES, Episode, EpisodeRecorder
from robot_rl.train.robot_learner import Learner, offer_weights
from robot_rl.train.rollouts import EvalResult

log = logging.getLogger(__name__)

UPDATE_MARGIN_S = 0.003  # of a tick left free after an update


@dataclass
class RobotConfig(OnlineConfig):
    store: str = ""  # the Zarr store every episode is committed to
    publish_every: int = 50  # learner updates between refreshes of the control loop's policy copy
    random_start: bool = True  # uniform random actions until learning starts (False: the policy acts from the start)
    actor_warmup: int = 0  # updates of the critic alone before the actor learns
    # An episode that ends in success is terminal for the critic only with a sparse (success)
    # reward. With dense progress the success state keeps paying, so its value is bootstrapped:
    # a terminal there would teach the policy that succeeding stops the reward.
    success_is_terminal: bool = True
    max_owed: int = 1000  # updates the learner may fall behind before new ones are dropped


class RobotTrainer(OnlineTrainer):
    """Online RL through one robot env (see the module docstring); ``run()`` returns the final evaluation."""

    def __init__(self, agent: Agent, make_env: Callable[[], gym.Env], config: RobotConfig, run_dir: Path,
                 logger: Logger, buffer: ReplayBuffer, demos: ReplayBuffer, attrs: dict[str, Any], task: str,
                 resume: bool = False, make_learner: Callable[[Any], Any] = Learner) -> None:
        self.env: gym.Env | None = None
        self.make_learner = make_learner  # Learner (a thread here) or a remote one (robot_rl.distributed.robot_learner)
        self.attrs, self.task = attrs, task
        self.recorder: EpisodeRecorder | None = None
        self.learner: Learner | None = None
        self.actor: Agent | None = None  # the control loop's CPU copy of the policy
        self.buffer_lock = threading.Lock()  # the control loop adds while the learner samples
        self.published = -1  # the agent's update count of the actor copy's weights
        self.offered = -1  # ... of the weights last offered to it
        self.pending_weights: tuple[dict, int] | None = None  # offered by the learner, taken by the control loop
        self.owed_at_checkpoint = 0.0
        self.in_episode = False  # the control loop is stepping an episode (the learner keeps out of its ticks)
        self.episodes: list[Episode] = []
        self.intervention_steps = self.episode_steps = 0
        self.learning_steps = 0  # env steps that owed updates (the effective UTD's denominator)
        self.store_episodes = 0  # store episodes the replay buffer holds (checkpointed)
        self.resumed = False
        self.last_eval_truth: float | None = None  # the last evaluation's ground-truth success (a sim robot)
        self.timing = None  # the robot env's command timing, kept past its close
        super().__init__(agent, make_env, self._eval_env, config, run_dir, logger, buffer, demos, None, resume=False)
        if resume:
            self.resumed = self.restore()

    # --- the loop's steps ----------------------------------------------------------------------
    def run(self) -> EvalResult | None:
        """The loop; when the robot stops answering, a checkpoint first (replay buffer and counters:
        the committed episodes are in the store already), then the error."""
        try:
            return super().run()
        except Exception:
            if self.recorder is not None and self.step > 0:
                self.checkpoint()
                log.warning("checkpoint saved at step %d; resume=true continues this run", self.step)
            raise

    def start(self) -> None:
        self.actor = copy.deepcopy(self.agent).to("cpu")
        self.publish()
        self.refresh_actor()
        self.env = self.make_env()
        self.recorder = EpisodeRecorder(self.config.store, self.env.observation_space, self.action_shape()[0],
                                        self.attrs)
        if self.resumed:
            self.refill_from_store()
        self.learner = self.make_learner(self)
        if self.owed_at_checkpoint:
            self.learner.owe(self.owed_at_checkpoint)

    def _eval_env(self) -> gym.Env:
        return self.env

    def train_step(self) -> None:
        self.episodes.append(self.episode(explore=True))

    def finish(self, bar) -> None:
        """Before the final evaluation: what is owed is paid (the arm holds meanwhile)."""
        self.learner.drain(timeout_s=max(60.0, 2 * self.learner.owed * max(self.learner.update_s, 0.01)))
        self.publish()
        self.refresh_actor()
        super().finish(bar)

    def episode(self, explore: bool) -> Episode:
        """One episode on the robot, committed to the store; transitions to the buffers when exploring."""
        env, cfg = self.env, self.config
        robot = env.unwrapped
        robot.interventions_enabled = explore and robot.intervention is not None
        obs, info = env.reset()
        self.recorder.start(info["instruction"], self.task, "train" if explore else "eval")
        self.in_episode = True
        ret, steps, interventions, success, truth, label = 0.0, 0, 0, False, None, ""
        try:
            while True:
                if self.learner is not None:
                    self.learner.check()  # between steps: an episode that took its last step is kept
                if explore and cfg.random_start and not self.learning:
                    action = self.rng.uniform(-1, 1, self.action_shape()).astype(np.float32)
                else:
                    self.refresh_actor()
                    action = self.actor.act(_batch(obs), deterministic=not explore)[0]
                env.send(action)
                next_obs, reward, terminated, truncated, info = env.receive()
                executed = np.asarray(info["action"], np.float32)
                self.recorder.add(obs, executed, reward, info)
                if explore:
                    self.add(obs, executed, reward, next_obs, terminated and cfg.success_is_terminal,
                             info["intervention"])
                ret, steps = ret + reward, steps + 1
                interventions += int(info["intervention"])
                success = success or info["success"]
                truth = info["task_success"] if "task_success" in info and truth is not True else truth
                label = info.get("operator_label") or label
                obs = next_obs
                if terminated or truncated:
                    break
        except BaseException:
            self.recorder.end(Episode(steps, ret, success, interventions), keep=False)  # only this one is lost
            raise
        finally:
            self.in_episode = False
        ended_by = ("estop" if info.get("estop") else "operator" if label else "success" if terminated else "time")
        episode = Episode(steps, ret, bool(success), interventions, truth, ended_by)
        self.recorder.end(episode, label=label)
        if info.get("estop"):
            log.warning("episode ended by the e-stop after %d steps; training pauses until it is reset", steps)
        return episode

    def add(self, obs: dict, action: np.ndarray, reward: float, next_obs: dict, terminated: bool,
            intervention: bool) -> None:
        """One transition to the replay buffer (and, the operator's, to the demonstrations too)."""
        args = (_batch(obs), action[None], np.array([reward], np.float32), _batch(next_obs), np.array([terminated]))
        with self.buffer_lock:
            self.buffer.add(*args)
            if intervention:
                self.demos.add(*args)
        self.learner.added(args, intervention)
        self.intervention_steps += int(intervention)
        self.episode_steps += 1
        self.step += 1
        if self.learning:
            self.learner.owe(self.config.utd)
            self.learning_steps += 1

    @property
    def learning(self) -> bool:
        """Whether the agent learns (and acts): after ``seed_steps`` of random actions, or as soon as
        the operator has shown a batch's worth of steps. An operator who takes over the first
        episodes gives better data than random actions; the policy learns from it while they
        drive, so what it has learned is there when they let go (not an untrained actor)."""
        return self.step > self.config.seed_steps or len(self.demos) >= self.config.batch_size

    def may_update(self, update_s: float) -> bool:
        """Whether an update may start now: never between a tick and its command (the control
        loop's few milliseconds must not share the GIL and the cores), and within a step only if
        it should end before the next tick; between episodes, always."""
        env = self.env if self.in_episode else None
        if env is None:
            return True
        return env.between_ticks and env.time_left_s() > update_s + UPDATE_MARGIN_S

    def publish(self) -> None:
        """Offer the policy's weights (a CPU copy) to the control loop; called where nothing updates."""
        offer_weights(self)

    def refresh_actor(self) -> None:
        """The control loop takes the newest weights offered, if any (never waits for the learner)."""
        pending, self.pending_weights = self.pending_weights, None
        if pending is not None:
            weights, self.published = pending
            for name, state in weights.items():
                getattr(self.actor, name).load_state_dict(state)

    def evaluate(self, video: bool) -> EvalResult | None:
        if self.config.eval_episodes <= 0:
            return None
        started = time.perf_counter()
        episodes = [self.episode(explore=False) for _ in range(self.config.eval_episodes)]
        returns = [e.ret for e in episodes]
        result = EvalResult(float(np.mean([e.success for e in episodes])), float(np.mean(returns)),
                            float(np.std(returns)), len(episodes), returns, [e.success for e in episodes])
        metrics = {**result.metrics(), "eval/wall_s": self.wall_s, "eval/duration_s": time.perf_counter() - started}
        truths = [e.task_success for e in episodes if e.task_success is not None]
        if truths:
            self.last_eval_truth = metrics["eval/task_success_rate"] = float(np.mean(truths))
        self.logger.log(metrics, self.step)
        self.last_eval = result
        return result

    def log(self, bar) -> None:
        episodes, self.episodes = self.episodes, []
        metrics = dict(self.update_metrics)
        learner = self.learner
        learned = max(1, self.learning_steps)
        updates = learner.updates
        metrics.update({"train/env_steps": self.step, "train/updates": updates,
                        "train/wall_s": self.wall_s, "train/owed_updates": learner.owed,
                        "train/updates_dropped": learner.dropped, "train/effective_utd": updates / learned,
                        "train/update_ms": learner.update_s * 1e3, "train/demo_steps": len(self.demos),
                        "train/policy_lag": updates - self.published})
        if episodes:
            metrics.update({"train/episode_return": float(np.mean([e.ret for e in episodes])),
                            "train/success_rate": float(np.mean([e.success for e in episodes])),
                            "train/episodes": len(episodes)})
            truths = [e.task_success for e in episodes if e.task_success is not None]
            if truths:
                metrics["train/task_success_rate"] = float(np.mean(truths))
        if self.episode_steps:
            metrics["train/intervention_rate"] = self.intervention_steps / self.episode_steps
            self.intervention_steps = self.episode_steps = 0
        jitter = robot_jitter_ms(self.env)
        if jitter is not None:
            metrics["robot/command_jitter_ms_p99"] = jitter
        self.logger.log(metrics, self.step)
        self.logged_step = self.step
        bar.set_postfix({"ret": f"{metrics.get('train/episode_return', float('nan')):.2f}"}, refresh=False)

    def close(self) -> None:
        try:
            if self.learner is not None:
                self.learner.stop()
            if self.recorder is not None:
                self.recorder.close()
        finally:
            if self.env is not None:
                self.timing = getattr(self.env.unwrapped, "timing", None)
                self.env.close()
                self.env = None

    def jitter_summary(self) -> dict | None:
        """The command stream over the run (ms): jitter p50/p99 (see StepTiming) and each command's
        time after its tick p50/p99, with how many of each."""
        timing = self.timing if self.env is None else getattr(self.env.unwrapped, "timing", None)
        values = timing.jitter_ms() if timing is not None else []
        if not len(values):
            return None
        offsets = np.asarray(timing.offsets_ms)
        return {"p50": float(np.percentile(values, 50)), "p99": float(np.percentile(values, 99)), "n": len(values),
                "after_tick_p50": float(np.percentile(offsets, 50)), "after_tick_p99": float(np.percentile(offsets, 99))}

    # --- checkpoints and resume ------------------------------------------------------------------
    def checkpoint_state(self) -> dict:
        state = super().checkpoint_state()
        state.update(owed=self.learner.owed if self.learner is not None else self.owed_at_checkpoint,
                     store_episodes=self._committed(), learning_steps=self.learning_steps)
        return state

    def load_checkpoint_state(self, state: dict) -> None:
        super().load_checkpoint_state(state)
        self.owed_at_checkpoint = float(state.get("owed", 0.0))
        self.store_episodes = int(state.get("store_episodes", 0))
        self.learning_steps = int(state.get("learning_steps", max(0, self.step - self.config.seed_steps)))

    def checkpoint(self) -> None:
        """The agent, buffer and counters as they are between two updates (the learner pauses)."""
        with self.learner.paused() if self.learner is not None else _nothing(), self.buffer_lock:
            super().checkpoint()
        self.store_episodes = self._committed()

    def _committed(self) -> int:
        return self.recorder.writer.num_episodes if self.recorder is not None else self.store_episodes

    def refill_from_store(self) -> None:
        """The store back into the buffers a resumed run lost: training episodes committed after the
        checkpoint into the replay buffer, and the operator's steps of every training episode into
        the demonstrations (that buffer is not checkpointed: the store holds it)."""
        from robot_rl.data.store import EpisodeStore

        with EpisodeStore.open(self.config.store) as store:
            infos = store.episode_infos()
            online = human = 0
            for index in range(store.num_episodes):
                if infos[index].extra.get("phase") != "train":
                    continue
                data = store.read_episode(index)
                added, operator = self._replay(data, infos[index].instruction, index >= self.store_episodes)
                online, human = online + added, human + operator
        log.info("resume: %d steps committed after the checkpoint back in the replay buffer, %d operator steps in "
                 "the demonstrations", online, human)

    def _replay(self, data: dict[str, np.ndarray], instruction: str, online: bool) -> tuple[int, int]:
        """Add one stored episode's transitions (to the replay buffer when ``online``; the
        operator's to the demonstrations); (online steps, operator steps) added."""
        n = len(data[ACTION]) - 1  # row t holds obs t and action t; its next obs is row t+1
        human = data[INFO_INTERVENTION][:-1] if n > 0 else np.zeros(0, bool)
        if n < 1 or not (online or human.any()):
            return 0, 0
        obs = {k: v for k, v in data.items() if k.startswith("obs/")}
        encode = getattr(self.env, "encode", None)
        if encode is not None:
            frames = {image_key(c): obs[image_key(c)] for c in encode.cameras}
            obs[OBS_FEATURES] = encode(frames, [instruction] * len(data[ACTION]))
        now = {k: v[:-1] for k, v in obs.items()}
        after = {k: v[1:] for k, v in obs.items()}
        done = np.zeros(n, bool)  # the terminal transition left from the last row, whose next obs is not stored
        action, reward = data[ACTION][:-1], data[REWARD][:-1]
        if online:
            self.buffer.add(now, action, reward, after, done)
        if human.any():
            self.demos.add({k: v[human] for k, v in now.items()}, action[human], reward[human],
                           {k: v[human] for k, v in after.items()}, done[human])
        return (n if online else 0), int(human.sum())


def robot_jitter_ms(env: gym.Env | None) -> float | None:
    """p99 of how far the robot env's command publishes strayed from their ticks, in ms."""
    timing = getattr(getattr(env, "unwrapped", None), "timing", None)
    if timing is None:
        return None
    values = timing.jitter_ms()
    return float(np.percentile(values, 99)) if len(values) else None


@contextmanager
def _nothing():
    yield


def _batch(obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.asarray(v)[None] for k, v in obs.items()}
