"""Reach: bring the gripper just above the named cube; its scripted expert flies there."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.arena import CUBE_HALF_M
from sim.experts import OPEN, WaypointExpert
from sim.scene import Scene, norm
from sim.tasks.base import Task, TaskConfig


@dataclass
class ReachConfig(TaskConfig):
    hover_m: float = 0.04
    tolerance_m: float = 0.03


class Reach(Task):
    name = "reach"
    config_class = ReachConfig

    def __init__(self, config: ReachConfig) -> None:
        super().__init__(config)
        self.config: ReachConfig = config

    def goal_pos(self, scene: Scene) -> np.ndarray:
        return scene.object_pos(self.target_cube) + [0, 0, CUBE_HALF_M + self.config.hover_m]

    def goal_distance(self, scene: Scene, goal: np.ndarray | None = None) -> float:
        """The hand's distance to the point above the cube: what success is judged on."""
        return norm(scene.ee_pos() - (self.goal_pos(scene) if goal is None else goal))

    def evaluate(self, scene: Scene) -> tuple[bool, float]:
        goal = self.goal_pos(scene)
        success = self.goal_distance(scene, goal) < self.config.tolerance_m
        return success, 1.0 if success else self.reach_term(scene, goal)


class ReachExpert(WaypointExpert):
    def act(self) -> np.ndarray:
        return self.command(self.task.goal_pos(self.scene) - self.scene.ee_pos(), OPEN)
