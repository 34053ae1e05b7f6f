"""Homing for the robot env (``RosRobotEnv`` mixes this in): the arm goes to its home pose between
episodes, slowly and through the same safety filter as every other command.

An ee_delta arm first lifts the hand straight up to the home pose's height (it may be low among
the objects) and moves it in a straight line over to the home pose's hand position (inside the
workspace box, which a joint-space line can leave); then, as any arm, it moves in joint space at
``home_speed_rad_s``. An arm that does not get there within ``home_timeout_s`` is one sentence
(``RobotConnectionError``) naming the joint and what the safety filter held for.
"""

from __future__ import annotations

import time

import numpy as np
from std_msgs.msg import Float64MultiArray

from hardware.ros.conversions import joint_command

HOME_ACTION = 0.25  # homing moves the hand at most a quarter of the ee_delta controller's step per tick
HOME_NEAR_M = 0.02  # a Cartesian homing phase ends this close to its goal
HOME_PHASE_S = 4.0  # ... or after this long


class Homing:
    """``_home()`` for ``RosRobotEnv`` (its config, robot model, safety filter, publishers and loop)."""

    def _home(self) -> None:
        """Move to the home pose, every command through the safety filter (see the module docstring)."""
        cfg = self.config
        home = np.asarray(self.robot.home_qpos, np.float64)
        obs = self._fresh_observation(newer_than_s=-np.inf)
        self.safety.activate(obs.q, time.perf_counter())
        self._homing = {"hold": "", "deadline": time.monotonic() + cfg.home_timeout_s}
        self._loop.reset()
        if cfg.action_space == "ee_delta":
            goal = self.robot.ee_position(home)
            for phase in ("lift", "across"):
                for _ in range(int(HOME_PHASE_S * cfg.control_rate_hz)):
                    ee = self.robot.ee_position(obs.q)
                    delta = np.array([0.0, 0.0, max(0.0, goal[2] - ee[2])]) if phase == "lift" else goal - ee
                    if np.linalg.norm(delta) < HOME_NEAR_M:
                        break
                    action = np.zeros(self.action_space.shape, np.float32)
                    action[:3], action[-1] = np.clip(delta / self._max_pos_step(), -HOME_ACTION, HOME_ACTION), -1.0
                    obs = self._home_step(self.robot.joint_targets(action, obs.q, obs.q_gripper)[0], obs, home)
        # The target moves at home_speed from where the arm is towards home and waits there: an arm
        # that trails it (damped, loaded, frictional) still feels the whole gap, where a target kept
        # one step from the measured arm can push too weakly to move it.
        step, target = cfg.home_speed_rad_s * self.period_s, obs.q.copy()
        while np.max(np.abs(obs.q - home)) > cfg.home_tolerance_rad:
            target = target + np.clip(home - target, -step, step)
            obs = self._home_step(target, obs, home)

    def _home_step(self, target: np.ndarray, obs, home: np.ndarray):
        """One homing tick: ``target`` through the safety filter; the next observation."""
        cfg, state = self.config, self._homing
        if self.estop.tripped:
            self._wait_out_estop()
            obs = self._fresh_observation(newer_than_s=-np.inf)
            self.safety.activate(obs.q, time.perf_counter())
        if time.monotonic() > state["deadline"]:
            far = int(np.argmax(np.abs(obs.q - home)))
            held = f"; the safety filter held: {state['hold']}" if state["hold"] else "; is it blocked?"
            from hardware.ros.robot_env import RobotConnectionError  # the env's module imports this one

            raise RobotConnectionError(
                f"the arm did not reach its home pose in {cfg.home_timeout_s:g} s (joint "
                f"{self.robot.joint_names[far]} is {abs(obs.q[far] - home[far]):.2f} rad away){held}")
        now = time.perf_counter()
        command = self.safety.filter(target, obs.q, obs.time_s, now, target_time_s=now)
        state["hold"] = command.reason if not command.publish else ""
        if command.publish:
            message = joint_command(cfg.command_interface, self.robot.joint_names, command.positions, self.period_s)
            self.safety.send_if_safe(obs.time_s, lambda: self._command_pub.publish(message))
            self._gripper_pub.publish(Float64MultiArray(data=self._open_gripper()))
        self._loop.wait()
        return self._fresh_observation(newer_than_s=obs.time_s)

    def _open_gripper(self) -> list[float]:
        _, gripper = self.robot.joint_targets(np.append(np.zeros(self.action_space.shape[0] - 1), -1.0),
                                              np.asarray(self.robot.home_qpos, np.float64))
        return np.asarray(gripper, np.float64).tolist()

    def _max_pos_step(self) -> float:
        """The ee_delta controller's largest hand step per tick (m)."""
        controller = getattr(self.robot, "controller", None)
        return float(getattr(getattr(controller, "config", None), "max_pos_step_m", 0.04))
