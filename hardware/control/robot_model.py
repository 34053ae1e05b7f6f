"""The robot model a deployed policy needs: the state vector it was trained on and its action map.

``RobotModel`` is the interface the control tick, the nodes and the safety filter use. The one
implementation, ``sim.kinematics.RobotKinematics``, compiles the arm's MJCF and reuses the
simulator's own controller, so ``obs/state`` and the ee_delta IK are the code the policy was
trained through, not a second copy; it is imported here, lazily, and nowhere else in hardware/
outside the sim bridge. It needs mujoco and the robot files only: no gym env, renderer or tasks.
"""

from __future__ import annotations

from typing import Any, Mapping, Protocol

import numpy as np


class RobotModel(Protocol):
    joint_names: tuple[str, ...]
    gripper_joint_names: tuple[str, ...]
    joint_range: np.ndarray
    velocity_limits_rad_s: np.ndarray
    n_joints: int

    def ee_position(self, q: np.ndarray) -> np.ndarray: ...

    def state_vector(self, q: np.ndarray, qd: np.ndarray, q_gripper: np.ndarray,
                     out: np.ndarray | None = None) -> np.ndarray: ...

    def joint_targets(self, action: np.ndarray, q: np.ndarray,
                      q_gripper: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]: ...


def load_robot_model(robot: str, action_space: str = "ee_delta", scaling: Mapping[str, Any] | None = None
                     ) -> RobotModel:
    """The model of ``sim/conf/robot/<robot>.yaml`` with the controller the policy was trained with.

    ``scaling`` is the artifact's ``action.scaling`` (the sim controller's limits); fields this
    version does not know are refused with one sentence rather than silently ignored.
    """
    from dataclasses import fields

    from sim.controllers import ControllerConfig
    from sim.kinematics import RobotKinematics

    known = {f.name for f in fields(ControllerConfig)}
    scaling = dict(scaling or {})
    unknown = sorted(set(scaling) - known)
    if unknown:
        raise ValueError(f"the policy's action scaling has fields {unknown} this controller does not know; "
                         f"known: {sorted(known - {'action_space'})}.")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in scaling.items() if k != "action_space"}
    return RobotKinematics.from_name(robot, ControllerConfig(action_space=action_space, **values))
