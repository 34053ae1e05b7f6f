"""Push: slide the named cube onto the goal marker without lifting it; its scripted expert."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from dm_control import mjcf

from sim.arena import CUBE_HALF_M, add_marker
from sim.experts import CLOSED, WaypointExpert
from sim.scene import Scene, norm
from sim.tasks.base import Task, TaskConfig, closeness


@dataclass
class PushConfig(TaskConfig):
    tolerance_m: float = 0.04
    goal_distance_m: tuple[float, float] = (0.12, 0.2)


class Push(Task):
    name = "push"
    config_class = PushConfig

    def __init__(self, config: PushConfig) -> None:
        super().__init__(config)
        self.config: PushConfig = config
        self._start_distance = 1.0

    def build(self, arena: mjcf.RootElement) -> None:
        super().build(arena)
        add_marker(arena, "goal")

    def place_objects(self, scene: Scene, rng: np.random.Generator, extra_places: int = 0) -> list[np.ndarray]:
        places = super().place_objects(scene, rng, extra_places)
        cube = scene.object_pos(self.target_cube)
        for _ in range(100):
            angle = rng.uniform(-np.pi, np.pi)
            goal = cube[:2] + rng.uniform(*self.config.goal_distance_m) * np.array([np.cos(angle), np.sin(angle)])
            if np.all(goal >= self.config.spawn_low_m) and np.all(goal <= self.config.spawn_high_m):
                break
        scene.set_mocap_pos("goal", np.array([*goal, 0.0]))
        return places

    def after_reset(self, scene: Scene) -> None:
        self._start_distance = max(self.goal_distance(scene), 1e-3)

    def goal_pos(self, scene: Scene) -> np.ndarray:
        return scene.mocap_pos("goal")

    def goal_distance(self, scene: Scene) -> float:
        """The cube's distance to the goal disc in the table's plane: what success is judged on."""
        return norm(scene.object_pos(self.target_cube)[:2] - self.goal_pos(scene)[:2])

    def evaluate(self, scene: Scene) -> tuple[bool, float]:
        distance = self.goal_distance(scene)
        if distance < self.config.tolerance_m:
            return True, 1.0
        moved = closeness(distance, self._start_distance)
        progress = 0.3 * self.reach_term(scene, scene.object_pos(self.target_cube)) + 0.7 * moved
        return False, min(progress, 0.99)


class PushExpert(WaypointExpert):
    """Closed gripper as a pusher: approach behind the cube, push along the line to the goal.

    When the cube drifts off the push line (it turns, or the contact was off-centre) the
    pusher lifts over it and approaches again from behind along the new line.
    """

    # Its pushing moves are speed-capped, and at the arm's gain of 0.5 its approaches ran out of
    # time under the train preset (85% against 100% at 0.8, hard 84% against 83%, 60-100 seeds).
    task_gain = 0.8
    push_z_m = 0.012  # below the cube's centre: a fingertip pushing higher tips the cube over
    clear_z_m = 0.075
    realign_angle_rad = 0.4

    def reset(self) -> None:
        self._approach = self._behind_point()

    def act(self) -> np.ndarray:
        max_speed = 1.0 if self._approach is not None else 0.35  # pushing is slower than approaching
        action = self.command(self._target() - self.scene.ee_pos(), CLOSED, max_speed)
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
