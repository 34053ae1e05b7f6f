"""Scripted experts: waypoint policies over privileged sim state, in the ee_delta action space.

They make demonstrations for every task. Each is a short list of phases; a phase has a target
for the tool-centre point, a gripper command, and a condition that ends it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from sim.arena import CUBE_HALF_M
from sim.env import RobotEnv

OPEN, CLOSED = -1.0, 1.0
CARRY_HEIGHT_M = 0.14


def wrap_quarter_turn(angle_rad: float) -> float:
    """An angle folded into [-pi/4, pi/4]: a cube looks the same every quarter turn."""
    return float((angle_rad + np.pi / 4) % (np.pi / 2) - np.pi / 4)


@dataclass
class Phase:
    target: Callable[[], np.ndarray]
    gripper: float
    tolerance_m: float = 0.012
    hold_steps: int = 0  # stay this many steps after reaching the target (e.g. to close)
    align_yaw: bool = True
    max_speed: float = 1.0  # fraction of the controller's largest step


class WaypointExpert:
    """Follows phases in order; the last one holds until the episode ends."""

    # Below 1 on purpose: with the train preset's one-step action latency a gain of 1.2 made the
    # loop e[k+1] = e[k] - g*e[k-1] oscillate (train-preset success 61-85%); 0.8 stays stable.
    def __init__(self, env: RobotEnv, gain: float = 0.8) -> None:
        if env.config.controller.action_space != "ee_delta":
            raise ValueError("scripted experts act in the ee_delta action space; set action_space=ee_delta.")
        self.env, self.scene, self.task = env, env.scene, env.task
        self.gain = gain
        self.phases: list[Phase] = []
        self._index, self._held = 0, 0

    def reset(self) -> None:
        """Plan this episode's phases from the freshly reset scene."""
        self.phases = self.plan()
        self._index, self._held = 0, 0

    def plan(self) -> list[Phase]:
        raise NotImplementedError

    def act(self) -> np.ndarray:
        phase = self.phases[self._index]
        target = phase.target()
        error = target - self.scene.ee_pos()
        if np.linalg.norm(error) < phase.tolerance_m:
            self._held += 1
            if self._held > phase.hold_steps and self._index < len(self.phases) - 1:
                self._index, self._held = self._index + 1, 0
        cfg = self.env.config.controller
        move = np.clip(self.gain * error / cfg.max_pos_step_m, -phase.max_speed, phase.max_speed)
        yaw = 0.0
        if phase.align_yaw:
            yaw_error = wrap_quarter_turn(self.scene.object_yaw(self.task.target_cube) - self.scene.ee_yaw())
            yaw = float(np.clip(yaw_error / cfg.max_yaw_step_rad, -1, 1))
        return np.array([*move, yaw, phase.gripper], dtype=np.float32)

    # --- shared targets --------------------------------------------------------------------
    def above(self, name: str, height_m: float) -> Callable[[], np.ndarray]:
        return lambda: self.scene.object_pos(name) + [0, 0, height_m]

    def pick_phases(self) -> list[Phase]:
        cube = self.task.target_cube
        return [
            Phase(self.above(cube, 0.1), OPEN, tolerance_m=0.02),
            Phase(self.above(cube, -0.004), OPEN, tolerance_m=0.008),
            Phase(self.above(cube, -0.004), CLOSED, tolerance_m=0.02, hold_steps=5),
        ]


class ReachExpert(WaypointExpert):
    def plan(self) -> list[Phase]:
        return [Phase(lambda: self.task.goal_pos(self.scene), OPEN, tolerance_m=0.005, align_yaw=False)]


class LiftExpert(WaypointExpert):
    def plan(self) -> list[Phase]:
        start = self.scene.object_pos(self.task.target_cube)
        lift = Phase(lambda: start + [0, 0, CARRY_HEIGHT_M], CLOSED, align_yaw=False)
        return [*self.pick_phases(), lift]


class PlaceExpert(WaypointExpert):
    """Pick, carry above the place, lower, release, back off upwards."""

    release_height_m = 0.0

    def plan(self) -> list[Phase]:
        def over(height_m: float) -> Callable[[], np.ndarray]:
            return lambda: np.array([*self.task.place_xy(self.scene), height_m])

        carry_z = CARRY_HEIGHT_M
        start = self.scene.object_pos(self.task.target_cube)
        return [
            *self.pick_phases(),
            Phase(lambda: start + [0, 0, carry_z], CLOSED, tolerance_m=0.03, align_yaw=False),
            Phase(over(carry_z), CLOSED, tolerance_m=0.015, align_yaw=False),
            Phase(over(self.release_height_m), CLOSED, tolerance_m=0.008, align_yaw=False),
            Phase(over(self.release_height_m), OPEN, tolerance_m=0.03, hold_steps=4, align_yaw=False),
            Phase(over(carry_z), OPEN, align_yaw=False),
        ]


class PickPlaceExpert(PlaceExpert):
    release_height_m = CUBE_HALF_M + 0.03


class StackExpert(PlaceExpert):
    release_height_m = 3 * CUBE_HALF_M + 0.004


class PushExpert(WaypointExpert):
    """Closed gripper as a pusher: approach behind the cube, push along the line to the goal.

    When the cube drifts off the push line (it turns, or the contact was off-centre) the
    pusher lifts over it and approaches again from behind along the new line.
    """

    push_z_m = 0.012  # below the cube's centre: a fingertip pushing higher tips the cube over
    clear_z_m = 0.075
    realign_angle_rad = 0.4

    def plan(self) -> list[Phase]:
        self._approach = self._behind_point()
        return [Phase(self._target, CLOSED, tolerance_m=0.0, align_yaw=False, max_speed=1.0)]

    def act(self) -> np.ndarray:
        self.phases[0].max_speed = 1.0 if self._approach is not None else 0.35
        action = super().act()
        action[3] = self._yaw_action()
        return action

    def _yaw_action(self) -> float:
        """Turn the closing axis across the push line, so the fingers' sides, not their slanted
        backs (a three-finger hand closes to a wedge), meet the cube; a half turn looks the same."""
        if len(self.scene.robot.finger_bodies) < 2:
            return 0.0
        push_yaw = np.arctan2(*self._direction()[::-1])
        error = push_yaw + np.pi / 2 - self.scene.closing_axis_yaw()
        error = (error + np.pi / 2) % np.pi - np.pi / 2
        return float(np.clip(error / self.env.config.controller.max_yaw_step_rad, -1, 1))

    def _direction(self) -> np.ndarray:
        delta = self.task.goal_pos(self.scene)[:2] - self.scene.object_pos(self.task.target_cube)[:2]
        return delta / max(np.linalg.norm(delta), 1e-6)

    def _behind_point(self) -> np.ndarray:
        cube = self.scene.object_pos(self.task.target_cube)[:2]
        return cube - self._direction() * (CUBE_HALF_M + 0.04)

    def _target(self) -> np.ndarray:
        tcp = self.scene.ee_pos()
        if self._approach is not None:
            return self._approach_target(tcp)
        cube = self.scene.object_pos(self.task.target_cube)[:2]
        remaining = np.linalg.norm(self.task.goal_pos(self.scene)[:2] - cube)
        if remaining < 0.02:  # well inside the task tolerance: stop rather than chase the last cm
            return np.array([*tcp[:2], self.push_z_m])
        direction = self._direction()
        to_cube = cube - tcp[:2]
        cos_angle = to_cube @ direction / max(np.linalg.norm(to_cube), 1e-6)
        if cos_angle < np.cos(self.realign_angle_rad):
            self._approach = self._behind_point()
            return self._approach_target(tcp)
        contact = cube - direction * (CUBE_HALF_M + 0.012)
        return np.array([*(contact + direction * min(remaining, 0.012)), self.push_z_m])

    def _approach_target(self, tcp: np.ndarray) -> np.ndarray:
        """Up, over to the behind point, then down; hands over to pushing at the bottom."""
        xy_error = np.linalg.norm(self._approach - tcp[:2])
        if xy_error > 0.012:
            height = self.clear_z_m if tcp[2] > self.clear_z_m - 0.015 else self.clear_z_m + 0.01
            xy = self._approach if tcp[2] > self.clear_z_m - 0.015 else tcp[:2]
            return np.array([*xy, height])
        if tcp[2] > self.push_z_m + 0.008:
            return np.array([*self._approach, self.push_z_m])
        self._approach = None
        return np.array([*tcp[:2], self.push_z_m])


EXPERTS: dict[str, type[WaypointExpert]] = {
    "reach": ReachExpert, "lift": LiftExpert, "push": PushExpert,
    "pick_place": PickPlaceExpert, "stack": StackExpert,
}


def make_expert(env: RobotEnv) -> WaypointExpert:
    """The scripted expert for ``env``'s task."""
    if env.task.name not in EXPERTS:
        raise ValueError(f"no scripted expert for task {env.task.name!r}; experts exist for {sorted(EXPERTS)}.")
    return EXPERTS[env.task.name](env)
