"""Collect transitions from one or several environments (subprocesses when there are several).

The collector owns a gymnasium vector env in same-step autoreset mode: when an episode ends,
the transition keeps its true final observation and the env is reset in the same call. Episode
success means the env reported ``info["success"]`` at any step of the episode.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import gymnasium as gym
import numpy as np

from robot_rl.contracts import INFO_FRAMES, image_key

EnvFactory = Callable[[], gym.Env]


@dataclass
class Transitions:
    """One vector step: arrays with a leading env dimension."""

    obs: dict[str, np.ndarray]
    action: np.ndarray
    reward: np.ndarray
    next_obs: dict[str, np.ndarray]
    terminated: np.ndarray
    success: np.ndarray
    progress: np.ndarray
    instructions: list[str]
    ended: np.ndarray | None = None  # terminated or truncated: the env's episode ended here
    # Per env, futures of the frames of ``obs`` and ``next_obs`` that envs with deferred cameras
    # draw on their worker threads (sim.env.EnvConfig.deferred_cameras); None: none deferred.
    obs_frames: list | None = None
    next_frames: list | None = None

    def resolve_frames(self) -> "Transitions":
        """Put the deferred frames into ``obs`` and ``next_obs`` (waits until they are drawn);
        new dicts, so an observation another step shares is never changed under it."""
        if self.obs_frames is not None:
            self.obs = _with_frames(self.obs, self.obs_frames)
            self.next_obs = _with_frames(self.next_obs, self.next_frames)
            self.obs_frames = self.next_frames = None
        return self


@dataclass
class EpisodeStats:
    returns: list[float] = field(default_factory=list)
    successes: list[bool] = field(default_factory=list)
    lengths: list[int] = field(default_factory=list)


def make_vector_env(make_env: EnvFactory, num_envs: int) -> gym.vector.VectorEnv:
    """``num_envs`` copies: in-process for one, subprocesses (spawned) for several."""
    mode = gym.vector.AutoresetMode.SAME_STEP
    if num_envs > 1:
        return gym.vector.AsyncVectorEnv([make_env] * num_envs, context="spawn", autoreset_mode=mode)
    return gym.vector.SyncVectorEnv([make_env], autoreset_mode=mode)


class Collector:
    """Steps a vector env with a policy and reports transitions and finished episodes."""

    def __init__(self, make_env: EnvFactory, num_envs: int = 1, seed: int = 0) -> None:
        self.envs = make_vector_env(make_env, num_envs)
        self.num_envs = num_envs
        self.obs, infos = self.envs.reset(seed=[seed + i for i in range(num_envs)])
        self.instructions = _instructions(infos, num_envs)
        self.frames = _frames(infos, num_envs)  # futures of self.obs's deferred frames, or None
        self.episode_return = np.zeros(num_envs)
        self.episode_success = np.zeros(num_envs, bool)
        self.episode_length = np.zeros(num_envs, int)
        self.stats = EpisodeStats()
        self.privilege = 0.0  # the envs' privileged-action strength (sim.privilege); a new env has none

    def set_privilege(self, strength: float) -> None:
        """Tell every env the privileged-action curriculum's strength, when it changed."""
        if strength != self.privilege:
            self.envs.call("set_privilege", strength)
            self.privilege = strength

    def step(self, action: np.ndarray, reward_override: Callable[[Transitions], np.ndarray] | None = None,
             track: bool = True) -> Transitions:
        """Apply ``action`` (num_envs, A); ``reward_override`` replaces the env's reward (learned reward).
        ``track=False``: the caller sets the reward later and then calls :meth:`track` (steps in order)."""
        next_obs, reward, terminated, truncated, infos = self.envs.step(action)
        ended = np.logical_or(terminated, truncated)
        final_obs = _final_obs(next_obs, infos, ended)
        step_info = _final_info(infos, ended)
        success = np.asarray(step_info.get("success", np.zeros(self.num_envs, bool)), bool)
        progress = np.asarray(step_info.get("progress", np.zeros(self.num_envs)), np.float32)
        frames = _frames(infos, self.num_envs)
        final_frames = None if frames is None else [
            _lookup(infos["final_info"], INFO_FRAMES, i) if e else f for i, (f, e) in enumerate(zip(frames, ended))]
        transitions = Transitions(self.obs, np.asarray(action, np.float32), np.asarray(reward, np.float32), final_obs,
                                  np.asarray(terminated, bool), success, progress, self.instructions, ended,
                                  self.frames, final_frames)
        self.frames = frames
        if reward_override is not None:
            transitions.reward = np.asarray(reward_override(transitions.resolve_frames()), np.float32)
        if track:
            self.track(transitions)
        self.obs = next_obs
        if ended.any():
            reset_instructions = _instructions(infos, self.num_envs)
            self.instructions = [new if e else old for old, new, e in zip(self.instructions, reset_instructions, ended)]
        return transitions

    def track(self, transitions: Transitions) -> None:
        """Count a step into the episode statistics (return, success, length)."""
        reward, success, ended = transitions.reward, transitions.success, transitions.ended
        self.episode_return += reward
        self.episode_success |= success
        self.episode_length += 1
        for i in np.flatnonzero(ended):
            self.stats.returns.append(float(self.episode_return[i]))
            self.stats.successes.append(bool(self.episode_success[i]))
            self.stats.lengths.append(int(self.episode_length[i]))
            self.episode_return[i], self.episode_success[i], self.episode_length[i] = 0.0, False, 0

    def pop_stats(self) -> EpisodeStats:
        stats, self.stats = self.stats, EpisodeStats()
        return stats

    def close(self) -> None:
        self.envs.close()


def _final_obs(next_obs: dict[str, np.ndarray], infos: dict[str, Any], ended: np.ndarray) -> dict[str, np.ndarray]:
    """``next_obs`` with the ended envs' rows replaced by their true final observations."""
    if not ended.any():
        return next_obs
    final = {k: v.copy() for k, v in next_obs.items()}
    for i in np.flatnonzero(ended):
        obs_i = infos["final_obs"][i]
        for key in final:
            final[key][i] = obs_i[key]
    return final


def _final_info(infos: dict[str, Any], ended: np.ndarray) -> dict[str, np.ndarray]:
    """This step's ``success``/``progress`` per env (for ended envs they live under ``final_info``)."""
    final = infos.get("final_info", {})
    out: dict[str, np.ndarray] = {}
    for key in ("success", "progress"):
        if key not in infos and not _has(final, key):
            continue
        values = np.array(infos[key]) if key in infos else np.zeros(len(ended))
        for i in np.flatnonzero(ended):
            values[i] = _lookup(final, key, i)
        out[key] = values
    return out


def _has(final: Any, key: str) -> bool:
    if isinstance(final, dict):
        return key in final
    return len(final) > 0 and key in final[0]


def _lookup(final: Any, key: str, i: int) -> Any:
    """``final_info`` is a dict of arrays in gymnasium 1.x (a list of dicts in older releases)."""
    if isinstance(final, dict):
        return final[key][i]
    return final[i][key]


def _frames(infos: dict[str, Any], num_envs: int) -> list | None:
    """Per env, the future of its deferred frames (sim envs with ``deferred_cameras``), or None."""
    values = infos.get(INFO_FRAMES)
    return None if values is None else [values[i] for i in range(num_envs)]


def _with_frames(obs: dict[str, np.ndarray], futures: list) -> dict[str, np.ndarray]:
    """``obs`` with each deferred camera's frames stacked over the envs."""
    frames = [future.result() for future in futures]
    return {**obs, **{image_key(c): np.stack([f[c] for f in frames]) for c in frames[0]}}


def _instructions(infos: dict[str, Any], num_envs: int) -> list[str]:
    values = infos.get("instruction")
    return [str(v) for v in values] if values is not None else [""] * num_envs
