"""Scripted experts: policies over privileged sim state, in the ee_delta action space.

They make demonstrations for every task and teach the students. Each moves the tool-centre point
toward a target it reads from the scene at every step (``WaypointExpert``); the grasping tasks'
experts (lift, pick_place, stack) build on ``FeedbackPickExpert``, whose every action is a
function of the scene as it is now. This module holds the machinery; each task's expert lives in
its task module and its task file names it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from sim.arena import CUBE_HALF_M

if TYPE_CHECKING:
    from sim.env import RobotEnv

OPEN, CLOSED = -1.0, 1.0
CARRY_HEIGHT_M = 0.14
GRASP_DEPTH_M = -0.004  # the TCP's height over the cube's centre when grasping it


class WaypointExpert:
    """Moves the tool-centre point toward a target (a waypoint) that each subclass's ``act``
    reads from the scene at every step, at the expert's gain."""

    task_gain: float | None = None  # a task whose expert needs its own gain on every arm

    # The gain (the robot's ``expert_gain``) keeps the loop stable under every preset's action
    # latency. With d steps of latency the error follows e[k+1] = e[k] - g*e[k-d], stable for
    # g < 2 sin(pi / (2(2d + 1))): 1.0 for d = 1 (the train preset), 0.618 for d = 2 (hard). On
    # the Panda 1.2 made the train preset oscillate (61-85% success); 0.8 held under train but
    # made hard oscillate (lift 73%, pick_place 67%, stack 70%, reach held at the end 80%, 30
    # seeds); 0.5 gives 100/100/100/100% there.
    def __init__(self, env: RobotEnv, gain: float | None = None) -> None:
        if env.config.controller.action_space != "ee_delta":
            raise ValueError("scripted experts act in the ee_delta action space; set action_space=ee_delta.")
        self.env, self.scene, self.task = env, env.scene, env.task
        self.gain = gain if gain is not None else self.task_gain or env.robot_config.expert_gain

    def reset(self) -> None:
        """Read what this episode needs from the freshly reset scene; nothing by default."""

    def act(self) -> np.ndarray:
        raise NotImplementedError

    def command(self, error: np.ndarray, gripper: float, max_speed: float = 1.0) -> np.ndarray:
        """The ee_delta action that closes ``error`` (target minus TCP) at the expert's gain. The
        gripper keeps its yaw: no task needs it turned (see ``FeedbackPickExpert``)."""
        cfg = self.env.config.controller
        move = np.clip(self.gain * error / cfg.max_pos_step_m, -max_speed, max_speed)
        return np.array([*move, 0.0, gripper], dtype=np.float32)


class FeedbackPickExpert(WaypointExpert):
    """The grasp of a feedback expert: every action is a function of the scene as it is now,
    with no phase remembered. A student distilled from it (DAgger) gets the same label wherever
    its own rollouts put the arm, which a phase-following expert cannot give: at the same pose it
    says "descend" or "hold" depending on which phase it reached on the way.

    - Holding the cube (grasped with the fingers settled, or raised off the table between closed
      fingers) is the subclass's to act on (lift it, carry it).
    - At the grasp pose: close; once closing, keep closing over a wider box (hysteresis read from
      the fingers' opening), so a student near the box's edge does not dither.
    - Otherwise: open, over the cube, at a height that grows with the lateral error (a funnel),
      so the hand comes down only once it is over the cube and goes back up if it drifts off.
    The gripper is not turned to the cube's yaw: over the tasks' yaws (±0.6 rad) a grasp succeeds
    without it (lift: 40/40 seeds either way), and a yaw read from small images was most of a
    32 px student's error.
    """

    # Wide on purpose: a student reads the cube's position from small images, and the teacher's
    # decisions (descend, close) should not hinge on millimetres it cannot see. With the cube
    # seen 1.2 cm off where it is, the lift teacher still lifts it on 39-40 of 40 seeds (nominal
    # and hard); with an 8 mm grasp box and a funnel of 4 it did on 36 of 40 at 1 cm and 22 at 1.5 cm.
    at_grasp_m = 0.016  # lateral and vertical tolerance of the grasp pose
    funnel = 2.0  # metres of height per metre of lateral error, above half the tolerance
    max_hover_m = 0.1
    settled_span_s = 0.5  # a grasp is held once the fingers have stopped (spans per second)
    first_lift_speed = 0.25  # of the controller's largest step, until the cube is off the table
    keep_closing = 2.0  # once the fingers are closing, the grasp box widens this much: no dithering

    def reset(self) -> None:
        self.open_level = self.scene.gripper_opening()  # the hand starts open; a robot's own measure

    def holding(self, cube_pos: np.ndarray, tcp: np.ndarray) -> bool:
        """Whether the hand holds the target cube: grasped with the fingers settled, or raised off
        the table between closed fingers (a grasp that loosened in the air is still a hold)."""
        raised = cube_pos[2] > CUBE_HALF_M + 0.01 and float(np.linalg.norm(tcp - cube_pos)) < 0.03
        if raised and self.closing():
            return True
        return self.scene.is_grasped(self.task.target_cube) and self.scene.gripper_speed() < self.settled_span_s

    def pick(self, cube_pos: np.ndarray, tcp: np.ndarray) -> np.ndarray:
        """Open over the cube down a funnel, then close at the grasp pose."""
        grasp = cube_pos + [0.0, 0.0, GRASP_DEPTH_M]
        lateral, vertical = float(np.hypot(*(tcp - grasp)[:2])), float(tcp[2] - grasp[2])
        if max(lateral, abs(vertical)) < self.at_grasp_m * (self.keep_closing if self.closing() else 1.0):
            return self.command(grasp - tcp, CLOSED)
        hover = float(np.clip(self.funnel * (lateral - self.at_grasp_m / 2), 0.0, self.max_hover_m))
        return self.command(grasp + [0.0, 0.0, hover] - tcp, OPEN)

    def closing(self) -> bool:
        """Whether the fingers are off open (closing, or closed): read from the joint state, which
        a student sees too, so its label can follow it without a memory."""
        return self.scene.gripper_opening() < 0.7 * self.open_level  # the Jaco settles open 0.1 below its start


def make_expert(env: RobotEnv) -> WaypointExpert:
    """The scripted expert for ``env``'s task: the class its task file names under ``expert``."""
    from robot_rl.config import locate
    from sim.registry import task_spec

    return locate(task_spec(env.task.name).expert, f"task {env.task.name}'s expert")(env)
