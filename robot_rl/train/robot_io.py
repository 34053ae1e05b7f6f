"""What goes in and out of learning on the robot: the frozen-encoder view of the robot env and the
Zarr store every robot episode is committed to (robot_rl.train.robot runs them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from robot_rl.contracts import ACTION, INFO_PROGRESS, INFO_SUCCESS, REWARD, image_key

OBS_FEATURES = "obs/features"
INFO_INTERVENTION = "info/intervention"
INFO_OPERATOR = "info/operator"
INFO_TASK_SUCCESS = "info/task_success"  # the sim bridge's ground truth (ros.sim only)


@dataclass
class Episode:
    """One finished episode on the robot."""

    steps: int
    ret: float
    success: bool
    interventions: int
    task_success: bool | None = None  # ground truth, where the robot is a simulator
    ended_by: str = ""  # success | time | estop | operator


class Encoded(gym.Wrapper):
    """The robot env with ``obs/features``: the camera frames through a frozen encoder
    (``encode(frames, instructions) -> [B, D]``, e.g. ``reward_models.rl_reward.FrozenFeatures``)."""

    def __init__(self, env: gym.Env, encode: Any) -> None:
        super().__init__(env)
        self.encode = encode
        self.observation_space = gym.spaces.Dict({**env.observation_space.spaces,
                                                  OBS_FEATURES: gym.spaces.Box(-np.inf, np.inf, (encode.dim,), np.float32)})

    def reset(self, **kwargs):
        obs, info = self.env.reset(**kwargs)
        return self._add(obs, info["instruction"]), info

    def step(self, action):
        self.send(action)
        return self.receive()

    def send(self, action) -> None:
        self.env.send(action)

    def time_left_s(self) -> float:
        return self.env.time_left_s()

    @property
    def between_ticks(self) -> bool:
        return self.env.between_ticks

    def receive(self):
        obs, reward, terminated, truncated, info = self.env.receive()
        return self._add(obs, info["instruction"]), reward, terminated, truncated, info

    def _add(self, obs: dict, instruction: str) -> dict:
        frames = {image_key(c): obs[image_key(c)][None] for c in self.encode.cameras}
        return {**obs, OBS_FEATURES: self.encode(frames, [instruction])[0]}


class EpisodeRecorder:
    """Commits every robot episode to the Zarr store at ``path`` (robot_rl.data.writer)."""

    def __init__(self, path: str, obs_space: gym.spaces.Dict, action_dim: int, attrs: dict[str, Any]) -> None:
        from robot_rl.data.writer import EpisodeWriter

        schema = {k: (s.shape, s.dtype) for k, s in obs_space.spaces.items() if k != OBS_FEATURES}
        schema.update({ACTION: ((action_dim,), np.float32), REWARD: ((), np.float32), INFO_SUCCESS: ((), np.bool_),
                       INFO_PROGRESS: ((), np.float32), INFO_INTERVENTION: ((), np.bool_),
                       INFO_OPERATOR: ((), np.bool_), INFO_TASK_SUCCESS: ((), np.bool_)})
        self.keys = [k for k in schema if k.startswith("obs/")]
        self.writer = EpisodeWriter(path, schema, attrs)
        self.path = path

    def start(self, instruction: str, task: str, phase: str) -> None:
        self.writer.start_episode(source="real", instruction=instruction, task=task, extra={"phase": phase})

    def add(self, obs: dict, action: np.ndarray, reward: float, info: dict) -> None:
        row = {k: obs[k] for k in self.keys}
        row.update({ACTION: np.asarray(action, np.float32), REWARD: np.float32(reward),
                    INFO_SUCCESS: np.bool_(info["success"]), INFO_PROGRESS: np.float32(info.get("progress", 0.0)),
                    INFO_INTERVENTION: np.bool_(info["intervention"]), INFO_OPERATOR: np.bool_(info["operator"]),
                    INFO_TASK_SUCCESS: np.bool_(info.get("task_success", False))})
        self.writer.add_step(row)

    def end(self, episode: Episode, keep: bool = True, label: str = "") -> None:
        extra = {"interventions": episode.interventions, "operator_label": label, "ended_by": episode.ended_by}
        if episode.task_success is not None:
            extra["task_success"] = episode.task_success
        self.writer.end_episode(episode.success, keep=keep, wait=True, extra=extra)

    def close(self) -> None:
        self.writer.close()
