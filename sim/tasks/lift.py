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

    - Holding the cube (grasped with the fingers settled, or raised off the table between the
      fingers): lift it, closed. Lifting at the first touch let the cube slip.
    - At the grasp pose: close; once closing, keep closing over a wider box (hysteresis read
      from the fingers' opening), so a student near the box's edge does not dither.
    - Otherwise: open, over the cube, at a height that grows with the lateral error (a funnel),
      so the hand comes down only once it is over the cube and goes back up if it drifts off.
    The gripper is not turned to the cube's yaw: over the task's yaws (±0.6 rad) a grasp
    succeeds without it (40/40 seeds either way), and a yaw read from small images was most of a
    32 px student's error.
    """

    # Wide on purpose: a student reads the cube's position from small images, and the teacher's
    # decisions (descend, close) should not hinge on millimetres it cannot see. With the cube
    # seen 1.2 cm off where it is, this teacher still lifts it on 39-40 of 40 seeds (nominal and
    # hard); with an 8 mm grasp box and a funnel of 4 it did on 36 of 40 at 1 cm and 22 at 1.5 cm.
    at_grasp_m = 0.016  # lateral and vertical tolerance of the grasp pose
    funnel = 2.0  # metres of height per metre of lateral error, above half the tolerance
    max_hover_m = 0.1
    settled_span_s = 0.5  # a grasp is lifted once the fingers have stopped (spans per second)
    first_lift_speed = 0.25  # of the controller's largest step, until the cube is off the table
    keep_closing = 2.0  # once the fingers are closing, the grasp box widens this much: no dithering

    def plan(self) -> list:
        self.open_level = self.scene.gripper_opening()  # the hand starts open; a robot's own measure
        return []

    def act(self) -> np.ndarray:
        scene, cube = self.scene, self.task.target_cube
        cube_pos, tcp = scene.object_pos(cube), scene.ee_pos()
        grasp = cube_pos + [0.0, 0.0, GRASP_DEPTH_M]
        lateral, vertical = float(np.hypot(*(tcp - grasp)[:2])), float(tcp[2] - grasp[2])
        raised = cube_pos[2] > CUBE_HALF_M + 0.01 and float(np.linalg.norm(tcp - cube_pos)) < 0.03
        if raised or (scene.is_grasped(cube) and scene.gripper_speed() < self.settled_span_s):
            # Up, slowly until the cube is off the table: the fingers are still tightening.
            error = np.array([0.0, 0.0, CUBE_HALF_M + CARRY_HEIGHT_M - tcp[2]])
            return self.command(error, CLOSED, max_speed=1.0 if raised else self.first_lift_speed)
        if max(lateral, abs(vertical)) < self.at_grasp_m * (self.keep_closing if self._closing() else 1.0):
            return self.command(grasp - tcp, CLOSED)
        hover = float(np.clip(self.funnel * (lateral - self.at_grasp_m / 2), 0.0, self.max_hover_m))
        return self.command(grasp + [0.0, 0.0, hover] - tcp, OPEN)

    def _closing(self) -> bool:
        """Whether the fingers are already off open (closing, or closed): read from the joint
        state, which a student sees too, so its label can follow it without a memory."""
        return self.scene.gripper_opening() < 0.7 * self.open_level  # the Jaco settles open 0.1 below its start
