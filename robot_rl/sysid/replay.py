"""Recorded arm motion replayed in the sim under candidate physics: what system identification compares.

An ``Episode`` is what a robot recording holds: the state the arm started in (``obs/state``),
the commands it was sent and the states it went through. ``Simulator`` puts one sim arm in that
start state (joint positions and velocities) and sends it the same commands under a candidate
``Calibration`` (link masses, joint damping, actuator gains, command latency), returning the
joint positions it goes through. The commands go through the same controller as on the robot,
so what differs between the two trajectories is the physics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.randomize import Calibration

# What sysid fits: three scales in log space, and the latency by trying each count of steps.
SCALES = ("link_mass_scale", "damping_scale", "gain_scale")
MAX_LATENCY_STEPS = 3
WINDOW_STEPS = 10  # multiple shooting: each replay window restarts from the recorded state


@dataclass
class Episode:
    """One recorded motion: ``start`` (D,) obs/state, ``actions`` (T, A), ``states`` (T, D) after each action."""

    start: np.ndarray
    actions: np.ndarray
    states: np.ndarray


class Simulator:
    """One sim env of the task and robot, reused for every candidate (no recompiling)."""

    def __init__(self, task: str, robot: str, **env_kwargs) -> None:
        import sim

        env_kwargs = {**env_kwargs, "cameras": (), "calibration": None}
        self.env = sim.load(task, robot, "none", **env_kwargs)
        layout = self.env.env_spec.state_layout
        self.joint_pos, self.joint_vel = slice(*layout["joint_pos"]), slice(*layout["joint_vel"])

    def joint_actions(self, commands: np.ndarray) -> np.ndarray:
        """``joint_abs`` actions of joint targets in radians (T, joints) plus a gripper column."""
        lo, hi = self.env.scene.robot.joint_range.T
        out = np.array(commands, np.float64)
        out[:, :-1] = 2.0 * (out[:, :-1] - lo) / (hi - lo) - 1.0
        return out

    def apply(self, calibration: Calibration) -> None:
        """Give the sim ``calibration``'s physics."""
        self.env.randomizer.calibrate(calibration)
        self.env.reset(seed=0)

    def replay(self, start: np.ndarray, actions: np.ndarray, in_flight: np.ndarray | None = None) -> np.ndarray:
        """Joint positions (T, joints) after each of ``actions`` from the state ``start``, with the
        commands sent just before (``in_flight``) still in the latency queue."""
        env = self.env
        env.place_arm(start[self.joint_pos], start[self.joint_vel])
        env.randomizer.prime(np.zeros((0, actions.shape[1])) if in_flight is None else in_flight)
        out = np.empty((len(actions), self.joint_pos.stop - self.joint_pos.start))
        self.ee_path = np.empty((len(actions), 3))  # where the hand went: explore keeps to free space
        for t, action in enumerate(actions):
            out[t] = env.step(action)[0]["obs/state"][self.joint_pos]
            self.ee_path[t] = env.scene.ee_pos()
        return out

    def rollout(self, calibration: Calibration, start: np.ndarray, actions: np.ndarray) -> np.ndarray:
        """A whole motion from its start under ``calibration``."""
        self.apply(calibration)
        return self.replay(start, actions)

    def error(self, calibration: Calibration, episodes: list[Episode], window: int = WINDOW_STEPS) -> float:
        """Mean squared joint-position error (rad²) of the sim under ``calibration``, replaying each
        episode in windows of ``window`` steps, each from the recorded state at its start (multiple
        shooting: one early difference does not swamp the rest, so the error is smooth in the
        parameters)."""
        self.apply(calibration)
        errors = []
        for e in episodes:
            states = np.concatenate([e.start[None], e.states])
            for w in range(0, len(e.actions), window):
                predicted = self.replay(states[w], e.actions[w:w + window], e.actions[:w])
                errors.append(np.mean((predicted - e.states[w:w + window, self.joint_pos]) ** 2, axis=1))
        return float(np.mean(np.concatenate(errors)))

    def close(self) -> None:
        self.env.close()


def read_episodes(path: str, max_episodes: int | None = None) -> tuple[list[Episode], dict]:
    """The recorded motions of a Zarr store (``obs/state`` and ``action``, verified) and its attrs.

    Step t's command is ``action[t]``; the state it led to is ``obs/state[t + 1]``, so an episode
    of T rows gives T - 1 commands to replay. A store with ``info/command`` (the joint targets a
    ROS 2 node sent the arm) is replayed from those instead: what the arm was told, after the
    node's IK and safety filter, not the operator's intent. Its actions are then the targets in
    radians plus the gripper command, and the facts say ``action_space: joint_abs`` and
    ``commands: True`` (``Simulator.joint_actions`` puts them in the sim's action units)."""
    from robot_rl.config import ConfigError
    from robot_rl.contracts import ACTION, INFO_COMMAND, OBS_STATE
    from robot_rl.data.store import EpisodeStore

    with EpisodeStore.open(path) as store:
        missing = [k for k in (OBS_STATE, ACTION) if k not in store.schema]
        if missing:
            raise ConfigError(f"data={path} has no {' or '.join(missing)}; sysid replays the recorded commands and "
                              "compares the joint states (a store from robot-rl record or the ROS 2 recorder).")
        commands = INFO_COMMAND in store.schema
        keys = [OBS_STATE, ACTION, *([INFO_COMMAND] if commands else [])]
        count = store.num_episodes if max_episodes is None else min(max_episodes, store.num_episodes)
        episodes = []
        for index in range(count):
            rows = store.read_episode(index, keys, verify=True)
            state, action = rows[OBS_STATE].astype(np.float64), rows[ACTION].astype(np.float64)
            if commands:  # the targets sent, and the gripper command (the action's last value, absolute)
                action = np.concatenate([rows[INFO_COMMAND].astype(np.float64), action[:, -1:]], axis=1)
            if len(state) >= 2:
                episodes.append(Episode(state[0], action[:-1], state[1:]))
        if not episodes:
            raise ConfigError(f"data={path} holds no episode of two steps or more to replay.")
        attrs = store.store_attrs
        facts = {"robot": attrs.robot, "task": attrs.extra.get("task"), "control_rate_hz": attrs.control_rate_hz,
                 "action_space": "joint_abs" if commands else attrs.action_space, "commands": commands}
        return episodes, {k: v for k, v in facts.items() if v is not None}
