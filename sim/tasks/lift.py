"""Lift: grasp the named cube and raise it off the table; its scripted expert."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.arena import CUBE_HALF_M
from sim.experts import CARRY_HEIGHT_M, CLOSED, GRASP_DEPTH_M, OPEN, WaypointExpert
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
    """A feedback policy: every action is a function of the scene as it is now, with no phase
    remembered. A student distilled from it (DAgger) gets the same label wherever its own
    rollouts put the arm, which a phase-following expert cannot give: at the same pose it says
    "descend" or "hold" depending on which phase it reached on the way.

    - Holding the cube (grasped, or raised off the table between the fingers): lift it, closed.
    - At the grasp pose: close.
    - Otherwise: open, over the cube, at a height that grows with the lateral error (a funnel),
      so the hand comes down only once it is over the cube and goes back up if it drifts off.
    The gripper is not turned to the cube's yaw: over the task's yaws (±0.6 rad) a grasp
    succeeds without it (40/40 seeds either way), and a yaw read from small images was most of a
    32 px student's error.
    """

    at_grasp_m = 0.008  # lateral and vertical tolerance of the grasp pose
    funnel = 4.0  # metres of height per metre of lateral error, above the first half tolerance
    max_hover_m = 0.1

    def plan(self) -> list:
        return []

    def act(self) -> np.ndarray:
        scene, cube = self.scene, self.task.target_cube
        cube_pos, tcp = scene.object_pos(cube), scene.ee_pos()
        grasp = cube_pos + [0.0, 0.0, GRASP_DEPTH_M]
        lateral, vertical = float(np.hypot(*(tcp - grasp)[:2])), float(tcp[2] - grasp[2])
        raised = cube_pos[2] > CUBE_HALF_M + 0.01 and float(np.linalg.norm(tcp - cube_pos)) < 0.03
        if raised or scene.is_grasped(cube):
            target, gripper = np.array([tcp[0], tcp[1], CUBE_HALF_M + CARRY_HEIGHT_M]), CLOSED
        elif lateral < self.at_grasp_m and abs(vertical) < self.at_grasp_m:
            target, gripper = grasp, CLOSED
        else:
            hover = float(np.clip(self.funnel * (lateral - self.at_grasp_m / 2), 0.0, self.max_hover_m))
            target, gripper = grasp + [0.0, 0.0, hover], OPEN
        return self.command(target - tcp, gripper)
