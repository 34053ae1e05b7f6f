"""The arm alone, compiled from its MJCF: forward kinematics and the sim's action-to-joint map.

A deployed policy sees the robot through joint states, not a MuJoCo scene. To feed it the same
``obs/state`` it was trained on (joint positions and velocities, TCP position and quaternion,
gripper opening) and to turn its action into joint position targets exactly as the simulator
did, this module compiles the robot by itself (no table, no objects) and runs the *same*
``Scene`` accessors and ``Controller`` on it. There is one copy of the end-effector IK: the
one in ``sim.controllers``. It needs only mujoco and the robot model files: no gym env, no
renderer, no tasks, so the on-robot policy node can import it.
"""

from __future__ import annotations

import mujoco
import numpy as np
from dm_control import mjcf

from sim.controllers import Controller, ControllerConfig
from sim.registry import read
from sim.robots.base import RobotConfig, RobotHandles, attach_robot, robot_config_from_dict
from sim.scene import Scene


class RobotKinematics:
    """Kinematics of one robot config; not thread-safe (it owns one scratch ``MjData``)."""

    def __init__(self, robot: RobotConfig, controller: ControllerConfig | None = None) -> None:
        root = mjcf.RootElement(model="kinematics")
        attach_robot(root, robot)
        self.model = mujoco.MjModel.from_xml_string(root.to_xml_string(), root.get_assets())
        self.data = mujoco.MjData(self.model)
        self.robot = robot
        self.scene = Scene(self.model, self.data, RobotHandles(self.model, robot))
        self.controller = Controller(self.scene, controller or ControllerConfig())
        self._handles = self.scene.robot
        self.set_joints(np.array(robot.home_qpos))
        self.scene.home_rot = self.scene.ee_rot()  # ee_delta yaw is relative to the home pose, as in the env

    @classmethod
    def from_name(cls, robot: str, controller: ControllerConfig | None = None) -> RobotKinematics:
        """Kinematics of ``sim/conf/robot/<robot>.yaml``."""
        return cls(robot_config_from_dict(read("robot", robot)), controller)

    # --- facts ------------------------------------------------------------------------------
    @property
    def n_joints(self) -> int:
        return len(self.robot.joints)

    @property
    def joint_names(self) -> tuple[str, ...]:
        """Arm joints as the robot's ROS 2 driver names them, in driver order."""
        return self.robot.driver_joint_names

    @property
    def gripper_joint_names(self) -> tuple[str, ...]:
        """Gripper joints as the driver names them (``extra.ros_gripper_joint_names`` or the MJCF names)."""
        return tuple(self.robot.extra.get("ros_gripper_joint_names", self.robot.gripper.joints))

    @property
    def joint_range(self) -> np.ndarray:
        """(n, 2) joint position limits, radians: the MJCF's, narrowed by ``extra.joint_limits_rad``
        where the real robot's limits are tighter than the model's (e.g. FR3 on the Panda model)."""
        limits = self._handles.joint_range.copy()
        real = self.robot.extra.get("joint_limits_rad")
        if real is not None:
            real = np.asarray(real, dtype=np.float64)
            limits = np.stack([np.maximum(limits[:, 0], real[:, 0]), np.minimum(limits[:, 1], real[:, 1])], axis=1)
        return limits

    @property
    def velocity_limits_rad_s(self) -> np.ndarray:
        limits = self.robot.velocity_limits_rad_s or (np.inf,) * self.n_joints
        return np.asarray(limits, dtype=np.float64)

    @property
    def home_qpos(self) -> np.ndarray:
        return np.asarray(self.robot.home_qpos, dtype=np.float64)

    # --- kinematics -------------------------------------------------------------------------
    def set_joints(self, q: np.ndarray, q_gripper: np.ndarray | None = None) -> None:
        """Put the arm (and optionally the fingers) at a configuration and update kinematics."""
        self.data.qpos[self._handles.qpos_adr] = q
        if q_gripper is not None:
            self.data.qpos[self._handles.gripper_qpos_adr] = q_gripper
        mujoco.mj_kinematics(self.model, self.data)

    def ee_position(self, q: np.ndarray) -> np.ndarray:
        """TCP position (m, robot base frame) at arm configuration ``q``."""
        self.set_joints(q)
        return self.scene.ee_pos()

    def state_vector(self, q: np.ndarray, qd: np.ndarray, q_gripper: np.ndarray, out: np.ndarray | None = None
                     ) -> np.ndarray:
        """``obs/state`` as the env builds it: q, qd, TCP position, TCP quaternion, gripper opening."""
        n = self.n_joints
        out = np.empty(2 * n + 8, np.float32) if out is None else out
        self.set_joints(q, q_gripper)
        out[:n], out[n:2 * n] = q, qd
        out[2 * n:2 * n + 3] = self.scene.ee_pos()
        out[2 * n + 3:2 * n + 7] = self.scene.ee_quat()
        out[2 * n + 7] = self.scene.gripper_opening()
        return out

    def joint_targets(self, action: np.ndarray, q: np.ndarray, q_gripper: np.ndarray | None = None
                      ) -> tuple[np.ndarray, np.ndarray]:
        """Arm position targets and gripper actuator targets for a normalised ``action`` at ``q``.

        Runs ``sim.controllers.Controller.apply``, the map the policy was trained through.
        """
        self.set_joints(q, q_gripper)
        self.controller.apply(action)
        ctrl = self.data.ctrl
        return ctrl[self._handles.arm_actuators].copy(), ctrl[self._handles.gripper_actuators].copy()
