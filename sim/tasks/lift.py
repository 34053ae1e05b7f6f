"""Lift: grasp the named cube and raise it off the table; its scripted expert."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.arena import CUBE_HALF_M
from sim.experts import CARRY_HEIGHT_M, CLOSED, FeedbackPickExpert
from sim.scene import Scene
from sim.tasks.base import Task, TaskConfig, closeness


@dataclass
class LiftConfig(TaskConfig):
    lift_height_m: float = 0.08


class Lift(Task):
    name = "lift"
    config_class = LiftConfig

    def __init__(self, config: LiftConfig) -> None:
        super().__init__(config)
        self.config: LiftConfig = config

    def evaluate(self, scene: Scene) -> tuple[bool, float]:
        cube = scene.object_pos(self.target_cube)
        height = cube[2] - CUBE_HALF_M
        grasped = scene.is_grasped(self.target_cube)
        if height >= self.config.lift_height_m and grasped:
            return True, 1.0
        lifted = 1.0 - closeness(max(height, 0.0), self.config.lift_height_m)
        progress = 0.35 * self.reach_term(scene, cube) + 0.15 * grasped + 0.5 * lifted * grasped
        return False, min(progress, 0.99)


class LiftExpert(FeedbackPickExpert):
    """Grasp the cube (the feedback pick of ``FeedbackPickExpert``), then lift it: slowly until
    it is off the table, while the fingers are still tightening. Lifting at the first touch let
    the cube slip, so a grasp is lifted once the fingers have settled."""

    def act(self) -> np.ndarray:
        cube_pos, tcp = self.scene.object_pos(self.task.target_cube), self.scene.ee_pos()
        if not self.holding(cube_pos, tcp):
            return self.pick(cube_pos, tcp)
        raised = cube_pos[2] > CUBE_HALF_M + 0.01
        error = np.array([0.0, 0.0, CUBE_HALF_M + CARRY_HEIGHT_M - tcp[2]])
        return self.command(error, CLOSED, max_speed=1.0 if raised else self.first_lift_speed)
