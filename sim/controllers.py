"""Action spaces: end-effector delta through IK, joint-position delta, absolute joint position.

Every controller maps a normalised action in [-1, 1] to joint position targets for the arm's
position servos, which MuJoCo runs at physics rate between policy steps, plus a gripper target
(last action entry: -1 fully open, +1 fully closed).
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from sim.scene import Scene

ACTION_SPACES = ("ee_delta", "joint_delta", "joint_abs")


@dataclass(frozen=True)
class ControllerConfig:
    """Scales and limits of the action space; one block of the env config."""

    action_space: str = "ee_delta"
    max_pos_step_m: float = 0.04
    max_yaw_step_rad: float = 0.25
    max_joint_step_rad: float = 0.1
    workspace_low_m: tuple[float, float, float] = (0.25, -0.4, 0.005)
    workspace_high_m: tuple[float, float, float] = (0.8, 0.4, 0.5)
    ik_damping: float = 0.05
    ik_iterations: int = 2
    nullspace_gain: float = 0.2

    def __post_init__(self) -> None:
        if self.action_space not in ACTION_SPACES:
            raise ValueError(f"action_space {self.action_space!r} is unknown; expected one of {ACTION_SPACES}.")


class Controller:
    """Turns normalised actions into servo targets for one robot in one scene."""

    def __init__(self, scene: Scene, config: ControllerConfig) -> None:
        self.scene = scene
        self.config = config
        self.n_joints = len(scene.robot.qpos_adr)
        self._scratch = mujoco.MjData(scene.model)
        self._home_q = np.array(scene.robot.config.home_qpos)
        lo, hi = scene.robot.joint_range.T
        margin = 0.02 * (hi - lo)
        self._q_lo, self._q_hi = lo + margin, hi - margin

    @property
    def action_dim(self) -> int:
        return 5 if self.config.action_space == "ee_delta" else self.n_joints + 1

    def apply(self, action: np.ndarray) -> None:
        """Write servo targets for ``action`` into ``data.ctrl``."""
        action = np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        q_target = getattr(self, f"_{self.config.action_space}")(action[:-1])
        robot, data = self.scene.robot, self.scene.data
        data.ctrl[robot.arm_actuators] = np.clip(q_target, self._q_lo, self._q_hi)
        grip = robot.config.gripper
        data.ctrl[robot.gripper_actuators] = grip.open_ctrl + (action[-1] + 1) / 2 * (grip.closed_ctrl - grip.open_ctrl)

    def _joint_delta(self, action: np.ndarray) -> np.ndarray:
        return self.scene.joint_pos() + action * self.config.max_joint_step_rad

    def _joint_abs(self, action: np.ndarray) -> np.ndarray:
        lo, hi = self.scene.robot.joint_range.T
        return lo + (action + 1) / 2 * (hi - lo)

    def _ee_delta(self, action: np.ndarray) -> np.ndarray:
        cfg, scene = self.config, self.scene
        pos = np.clip(scene.ee_pos() + action[:3] * cfg.max_pos_step_m, cfg.workspace_low_m, cfg.workspace_high_m)
        yaw = scene.ee_yaw() + action[3] * cfg.max_yaw_step_rad
        c, s = np.cos(yaw), np.sin(yaw)
        rot = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]]) @ scene.home_rot
        return self.solve_ik(pos, rot)

    def solve_ik(self, pos: np.ndarray, rot: np.ndarray) -> np.ndarray:
        """Damped least-squares IK for the site pose, with a pull toward home in the nullspace."""
        robot, scratch, model = self.scene.robot, self._scratch, self.scene.model
        scratch.qpos[:] = self.scene.data.qpos
        q = scratch.qpos[robot.qpos_adr].copy()
        jac = np.zeros((6, model.nv))
        damping = self.config.ik_damping**2 * np.eye(6)
        for _ in range(self.config.ik_iterations):
            scratch.qpos[robot.qpos_adr] = q
            mujoco.mj_kinematics(model, scratch)
            mujoco.mj_comPos(model, scratch)
            mujoco.mj_jacSite(model, scratch, jac[:3], jac[3:], robot.ee_site)
            cur_rot = scratch.site_xmat[robot.ee_site].reshape(3, 3)
            err = np.concatenate([pos - scratch.site_xpos[robot.ee_site], _rotation_error(cur_rot, rot)])
            arm_jac = jac[:, robot.dof_adr]
            pinv = np.linalg.solve(arm_jac @ arm_jac.T + damping, arm_jac).T
            null = (self._home_q - q) - pinv @ (arm_jac @ (self._home_q - q))
            q = np.clip(q + pinv @ err + self.config.nullspace_gain * null, self._q_lo, self._q_hi)
        return q


def _rotation_error(current: np.ndarray, desired: np.ndarray) -> np.ndarray:
    """Half the sum of column-wise cross products: the small-angle axis taking current to desired."""
    a, b = current.T, desired.T
    return 0.5 * (a[:, [1, 2, 0]] * b[:, [2, 0, 1]] - a[:, [2, 0, 1]] * b[:, [1, 2, 0]]).sum(axis=0)
