"""An env whose observations carry the episode's instruction as ``obs/instruction``.

The sim says its instruction in ``info["instruction"]`` (text); a language-conditioned student
reads the text's frozen embedding (``robot_rl.policy.instruction``). This wrapper adds it to
every observation, and to the observation space and the env's data contract, so training,
evaluation and the policy contract check see it like any other input. ``instruction=`` fixes
the text (an operator's own words, or the instruction-swap test) instead of the env's.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import gymnasium as gym
import numpy as np

from robot_rl.contracts import INSTRUCTION_ENCODER, OBS_INSTRUCTION, ArraySpec
from robot_rl.policy.instruction import InstructionEmbedder


class EmbedInstruction(gym.Wrapper):
    def __init__(self, env: gym.Env, embedder: InstructionEmbedder | None = None, instruction: str | None = None) -> None:
        super().__init__(env)
        self.embedder = embedder or InstructionEmbedder()
        self.fixed = instruction
        dim = int(INSTRUCTION_ENCODER["dim"])
        self.observation_space = gym.spaces.Dict({**env.observation_space.spaces,
                                                  OBS_INSTRUCTION: gym.spaces.Box(-1.0, 1.0, (dim,), np.float32)})
        self._vector = np.zeros(dim, np.float32)
        self.instruction = ""

    @property
    def env_spec(self):
        spec = self.env.unwrapped.env_spec
        dim = int(INSTRUCTION_ENCODER["dim"])
        return replace(spec, observations={**spec.observations, OBS_INSTRUCTION: ArraySpec((dim,), "float32", -1.0, 1.0)})

    def reset(self, **kwargs) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        obs, info = self.env.reset(**kwargs)
        self.instruction = self.fixed or str(info.get("instruction", ""))
        self._vector = self.embedder(self.instruction)
        if self.fixed:
            info["instruction"] = self.fixed
        return self._add(obs), info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        if self.fixed:
            info["instruction"] = self.fixed
        return self._add(obs), reward, terminated, truncated, info

    def _add(self, obs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {**obs, OBS_INSTRUCTION: self._vector}
