"""What the online and offline loops share: the schedule, evaluation in the sim, checkpoints.

``TrainLoop.run`` is the loop: ``train_step`` (collect -> update online, update offline),
then, each on its own schedule, log -> evaluate -> checkpoint. The last evaluation (with
videos) and checkpoint follow the loop. ``online.py`` and ``offline.py`` fill in the steps.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

from robot_rl.algos.base import Agent
from robot_rl.train.checkpoint import checkpoint_path, load_checkpoint, restore_agent, save_checkpoint
from robot_rl.train.collect import EnvFactory
from robot_rl.train.device import describe
from robot_rl.train.logger import Logger
from robot_rl.train.replay import ReplayBuffer
from robot_rl.train.rollouts import EvalResult, run_episodes, write_video_grid

log = logging.getLogger(__name__)


@dataclass
class LoopConfig:
    """The schedule and evaluation settings both loops share (``every`` 0 turns a step off)."""

    eval_every: int = 10_000
    eval_episodes: int = 10
    video_episodes: int = 4
    checkpoint_every: int = 10_000
    log_every: int = 1_000
    normalize_obs: bool = True
    seed: int = 0
    video_fps: float = 20.0
    progress_bar: bool = True


class Every:
    """True once each time a step counter reaches the next multiple of ``every`` (never when 0)."""

    def __init__(self, every: int, step: int) -> None:
        self.every, self.next = every, _next(step, every)

    def __call__(self, step: int) -> bool:
        if step < self.next:
            return False
        self.next = _next(step, self.every)
        return True


class TrainLoop:
    """The loop both trainers run; subclasses define ``train_step``, ``log`` and their checkpoint state."""

    unit = "step"

    def __init__(self, agent: Agent, make_eval_env: EnvFactory | None, config: LoopConfig, total: int,
                 run_dir: Path, logger: Logger) -> None:
        self.agent, self.make_eval_env, self.config, self.total = agent, make_eval_env, config, total
        self.run_dir, self.logger = Path(run_dir), logger
        self.step, self.wall_s = 0, 0.0
        self.update_metrics: dict[str, float] = {}
        self.last_eval: EvalResult | None = None
        self.eval_env = None
        self.saved_buffer: ReplayBuffer | None = None  # a replay buffer that checkpoints carry

    def run(self) -> EvalResult | None:
        """Train to ``total`` steps; returns the final evaluation (None when there is none)."""
        cfg = self.config
        log.info("training in %s on %s", self.run_dir, describe(getattr(self.agent, "device", "cpu")))
        self.start()
        bar = _progress_bar(self.total, self.step, cfg.progress_bar, self.unit)
        log_due, eval_due, checkpoint_due = (Every(every, self.step) for every in
                                             (cfg.log_every, cfg.eval_every, cfg.checkpoint_every))
        start, start_wall = time.perf_counter(), self.wall_s
        try:
            while self.step < self.total:
                before = self.step
                self.train_step()
                self.wall_s = start_wall + time.perf_counter() - start
                bar.update(self.step - before)
                if log_due(self.step):
                    self.log(bar)
                final = self.step >= self.total  # the final evaluation and checkpoint follow the loop
                if eval_due(self.step) and not final:
                    self.evaluate(video=False)
                if checkpoint_due(self.step) and not final:
                    self.checkpoint()
            self.finish(bar)
            result = self.evaluate(video=True)
            self.checkpoint()
            return result
        finally:
            bar.close()
            self.close()

    # --- what each loop fills in ---------------------------------------------------------------
    def start(self) -> None:
        """Before the first step (e.g. start the env workers)."""

    def train_step(self) -> None:
        raise NotImplementedError

    def log(self, bar) -> None:
        raise NotImplementedError

    def finish(self, bar) -> None:
        """After the last step, before the final evaluation."""

    def close(self) -> None:
        if self.eval_env is not None:
            self.eval_env.close()

    # --- evaluate and checkpoint ---------------------------------------------------------------
    def evaluate(self, video: bool) -> EvalResult | None:
        """Deterministic episodes in the eval env: ``eval/`` metrics and (with ``video``) a video grid.

        Seeds are offset from training seeds (10_000 + 1000 * seed) so evaluation never replays
        a training episode.
        """
        cfg = self.config
        if self.make_eval_env is None or cfg.eval_episodes <= 0:
            return None
        if self.eval_env is None:
            self.eval_env = self.make_eval_env()
        started = time.perf_counter()
        result = run_episodes(lambda obs: self.agent.act(obs, deterministic=True), self.eval_env, cfg.eval_episodes,
                              seed=10_000 + cfg.seed * 1000, video_episodes=cfg.video_episodes if video else 0)
        # duration_s: the evaluation's own time, for throughput figures that leave it out
        self.logger.log({**result.metrics(), "eval/wall_s": self.wall_s,
                         "eval/duration_s": time.perf_counter() - started}, self.step)
        if result.frames:
            labels = [f"{'success' if s else 'fail'} R={r:.0f}" for s, r in zip(result.successes, result.returns)]
            write_video_grid(self.run_dir / "videos" / f"eval_{self.step}.mp4", result.frames, cfg.video_fps, labels)
        self.last_eval = result
        return result

    def checkpoint_state(self) -> dict:
        """What besides the agent, step and wall time a resumed run needs."""
        return {}

    def load_checkpoint_state(self, state: dict) -> None:
        """Restore what ``checkpoint_state`` saved."""

    def checkpoint(self) -> None:
        state = {"step": self.step, "agent": self.agent.state_dict(), "wall_s": self.wall_s,
                 **self.checkpoint_state()}
        save_checkpoint(self.run_dir / "checkpoints", state, self.saved_buffer)
        self.logger.flush()

    def restore(self) -> bool:
        """Continue from the run's latest checkpoint; False when there is none."""
        state = load_checkpoint(self.run_dir / "checkpoints", self.saved_buffer)
        if state is None:
            log.info("no checkpoint in %s; starting from scratch", self.run_dir)
            return False
        restore_agent(self.agent, state, checkpoint_path(self.run_dir / "checkpoints"))
        self.step, self.wall_s = state["step"], state["wall_s"]
        self.load_checkpoint_state(state)
        log.info("resumed %s at %s %d", self.run_dir, self.unit, self.step)
        return True


def _next(step: int, every: int) -> int:
    return (step // every + 1) * every if every > 0 else 1 << 62


def _progress_bar(total: int, initial: int, enabled: bool, unit: str):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, disable=not enabled, unit=unit, dynamic_ncols=True, mininterval=1.0)
