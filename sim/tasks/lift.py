"""Lift: grasp the named cube and raise it off the table; its scripted expert."""

from __future__ import annotations

from dataclasses import dataclass

from sim.arena import CUBE_HALF_M
from sim.experts import CARRY_HEIGHT_M, CLOSED, Phase, WaypointExpert
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


class LiftExpert(WaypointExpert):
    def plan(self) -> list[Phase]:
        start = self.scene.object_pos(self.task.target_cube)
        lift = Phase(lambda: start + [0, 0, CARRY_HEIGHT_M], CLOSED, align_yaw=False)
        return [*self.pick_phases(), lift]
