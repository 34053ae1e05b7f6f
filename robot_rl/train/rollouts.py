"""Rollouts of a policy in a sim env: N seeded episodes -> success rate, return, frames; video grids.

``act`` maps a batch of raw observations (dict of arrays with a leading batch dim) to actions;
an agent's ``lambda obs: agent.act(obs, deterministic=True)`` and an exported ``Policy.act``
both fit. Success means ``info["success"]`` was true at any step of the episode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import gymnasium as gym
import numpy as np

ActFn = Callable[[dict[str, np.ndarray]], np.ndarray]


@dataclass
class EvalResult:
    success_rate: float
    mean_return: float
    std_return: float
    episodes: int
    returns: list[float] = field(default_factory=list)
    successes: list[bool] = field(default_factory=list)
    frames: list[list[np.ndarray]] = field(default_factory=list)

    def metrics(self, prefix: str = "eval") -> dict[str, float]:
        return {f"{prefix}/success_rate": self.success_rate, f"{prefix}/return": self.mean_return,
                f"{prefix}/return_std": self.std_return}


def run_episode(act: ActFn, env: gym.Env, seed: int | None, record: bool,
                render: Callable[[], np.ndarray] | None = None) -> tuple[float, int | None, list[np.ndarray]]:
    """(return, the step count at the first success or None, frames) of one episode; with
    ``record``, ``frames[t]`` shows the state after t steps, drawn by ``render`` (default env.render)."""
    render = render or env.render
    obs, _ = env.reset(seed=seed)
    total, first_success, frames, steps = 0.0, None, [], 0
    while True:
        if record:
            frames.append(render())
        action = act({k: v[None] for k, v in obs.items()})[0]
        obs, reward, terminated, truncated, info = env.step(action)
        total, steps = total + float(reward), steps + 1
        if first_success is None and info.get("success", False):
            first_success = steps
        if terminated or truncated:
            if record:
                frames.append(render())
            return total, first_success, frames


def run_episodes(act: ActFn, env: gym.Env, episodes: int, seed: int = 10_000, video_episodes: int = 0,
             on_episode: Callable[[int, bool], None] | None = None) -> EvalResult:
    """Run ``episodes`` episodes with seeds ``seed, seed+1, ...``; keep frames of the first ``video_episodes``.
    ``on_episode(index, success)`` is called after each (a progress bar)."""
    if int(episodes) < 1:  # a mean over no episodes is NaN, not a success rate
        raise ValueError(f"evaluation needs at least one episode, got episodes={episodes}.")
    returns, successes, videos = [], [], []
    for i in range(episodes):
        ret, first_success, frames = run_episode(act, env, seed + i, record=i < video_episodes)
        success = first_success is not None
        returns.append(ret)
        successes.append(success)
        if frames:
            videos.append(frames)
        if on_episode is not None:
            on_episode(i, success)
    return EvalResult(float(np.mean(successes)), float(np.mean(returns)), float(np.std(returns)), episodes,
                      returns, successes, videos)


def write_video_grid(path: Path, videos: list[list[np.ndarray]], fps: float, labels: list[str] | None = None,
                     cols: int = 4) -> Path | None:
    """Tile episodes side by side (shorter ones hold their last frame) into one mp4."""
    from robot_rl.media import annotate, grid, write_video

    if not videos:
        return None
    length = max(len(v) for v in videos)
    tiles_per_step = []
    for t in range(length):
        tiles = [v[min(t, len(v) - 1)] for v in videos]
        if labels:
            tiles = [annotate(tile, [label]) for tile, label in zip(tiles, labels)]
        rows = [tiles[i: i + cols] for i in range(0, len(tiles), cols)]
        blank = np.zeros_like(tiles[0])
        rows[-1] = rows[-1] + [blank] * (len(rows[0]) - len(rows[-1]))
        tiles_per_step.append(grid(rows))
    return write_video(path, tiles_per_step, fps)
