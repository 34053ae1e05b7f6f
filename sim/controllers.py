"""Action spaces: end-effector delta through IK, joint-position delta, absolute joint position.

Every controller maps a normalised action in [-1, 1] to joint position targets for the arm's
position servos, which MuJoCo runs at physics rate between policy steps, plus a gripper target
(last action entry: -1 fully open, +1 fully closed).
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

from sim.scene import Scene, index_of

ACTION_SPACES = ("ee_delta", "joint_delta", "joint_abs")

try:  # the gufunc behind np.linalg.solve (numpy 1.x and 2.x); the public function if it moves
    from numpy.linalg._umath_linalg import solve as _lapack_solve
except ImportError:  # pragma: no cover
    def _lapack_solve(a: np.ndarray, b: np.ndarray, signature: str) -> np.ndarray:
        return np.linalg.solve(a, b)


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
    """Turns normalised actions into servo targets for one robot in one scene.

    It runs every control step, so the arrays it reads and writes are resolved once here (index
    slices, views into the scratch ``MjData``, preallocated buffers): each numpy call it saves is
    a microsecond of Python per step. The arithmetic is the same, operation for operation, so
    the servo targets are the same to the bit.
    """

    def __init__(self, scene: Scene, config: ControllerConfig) -> None:
        self.scene = scene
        self.config = config
        robot = scene.robot
        self.n_joints = len(robot.qpos_adr)
        self._scratch = mujoco.MjData(scene.model)
        self._home_q = np.array(robot.config.home_qpos)
        lo, hi = robot.joint_range.T
        margin = 0.02 * (hi - lo)
        self._q_lo, self._q_hi = lo + margin, hi - margin
        self._map = getattr(self, f"_{config.action_space}")
        self._workspace_low, self._workspace_high = np.array(config.workspace_low_m), np.array(config.workspace_high_m)
        grip = robot.config.gripper
        self._grip_open, self._grip_span = grip.open_ctrl, grip.closed_ctrl - grip.open_ctrl
        self._arm_ctrl, self._grip_ctrl = index_of(robot.arm_actuators), index_of(robot.gripper_actuators)
        self._qpos, self._dofs = index_of(robot.qpos_adr), index_of(robot.dof_adr)
        self._ik = _IkBuffers(self._scratch, robot.ee_site, self.n_joints, config.ik_damping)

    @property
    def action_dim(self) -> int:
        return 5 if self.config.action_space == "ee_delta" else self.n_joints + 1

    def apply(self, action: np.ndarray) -> None:
        """Write servo targets for ``action`` into ``data.ctrl``."""
        action = _clip(np.asarray(action, dtype=np.float64), -1.0, 1.0)
        q_target = self._map(action[:-1])
        ctrl = self.scene.data.ctrl
        ctrl[self._arm_ctrl] = _clip(q_target, self._q_lo, self._q_hi)
        ctrl[self._grip_ctrl] = self._grip_open + (float(action[-1]) + 1) / 2 * self._grip_span

    def _joint_delta(self, action: np.ndarray) -> np.ndarray:
        return self.scene.joint_pos() + action * self.config.max_joint_step_rad

    def _joint_abs(self, action: np.ndarray) -> np.ndarray:
        lo, hi = self.scene.robot.joint_range.T
        return lo + (action + 1) / 2 * (hi - lo)

    def _ee_delta(self, action: np.ndarray) -> np.ndarray:
        cfg, scene = self.config, self.scene
        pos = _clip(scene.ee_pos() + action[:3] * cfg.max_pos_step_m, self._workspace_low, self._workspace_high)
        yaw = scene.ee_yaw() + action[3] * cfg.max_yaw_step_rad
        c, s = np.cos(yaw), np.sin(yaw)
        yaw_rot = self._ik.yaw_rot
        yaw_rot[0, 0], yaw_rot[0, 1], yaw_rot[1, 0], yaw_rot[1, 1] = c, -s, s, c
        return self.solve_ik(pos, yaw_rot @ scene.home_rot)

    def solve_ik(self, pos: np.ndarray, rot: np.ndarray) -> np.ndarray:
        """Damped least-squares IK for the site pose, with a pull toward home in the nullspace."""
        scratch, model, ik = self._scratch, self.scene.model, self._ik
        scratch.qpos[:] = self.scene.data.qpos
        q = scratch.qpos[self._qpos].copy()
        ik.set_target(pos, rot)
        for _ in range(self.config.ik_iterations):
            scratch.qpos[self._qpos] = q
            mujoco.mj_kinematics(model, scratch)
            mujoco.mj_comPos(model, scratch)
            mujoco.mj_jacSite(model, scratch, ik.jacp, ik.jacr, self.scene.robot.ee_site)
            err, arm_jac = ik.pose_error(), ik.arm_jacobian(self._dofs)
            pinv = _solve(arm_jac @ arm_jac.T + ik.damping, arm_jac).T
            to_home = self._home_q - q
            null = to_home - pinv @ (arm_jac @ to_home)
            q = _clip(q + pinv @ err + self.config.nullspace_gain * null, self._q_lo, self._q_hi)
        return q


class _IkBuffers:
    """The IK's arrays, allocated once: views of the scratch data's end-effector site, the
    Jacobian and its arm columns, the pose error, and the rows the rotation error multiplies."""

    # The rotation error, half the sum of the column-wise cross products of the site's rotation
    # and the desired one, takes rows (1, 2, 0) times rows (2, 0, 1) minus rows (2, 0, 1) times
    # rows (1, 2, 0): stacked, both halves are one multiply.
    _CURRENT_ROWS, _DESIRED_ROWS = np.array([1, 2, 0, 2, 0, 1]), np.array([2, 0, 1, 1, 2, 0])

    def __init__(self, scratch: mujoco.MjData, site: int, n_joints: int, damping: float) -> None:
        self.site_pos = scratch.site_xpos[site]
        self.site_rot = scratch.site_xmat[site].reshape(3, 3)
        self.jac = np.zeros((6, scratch.qvel.shape[0]))
        self.jacp, self.jacr = self.jac[:3], self.jac[3:]
        # Fortran order, as fancy indexing ``jac[:, dofs]`` made it: BLAS then sums in the same order.
        self.arm_jac = np.zeros((6, n_joints), order="F")
        self.damping = damping**2 * np.eye(6)
        self.yaw_rot = np.eye(3)
        self.err = np.zeros(6)
        self._err_pos, self._err_rot = self.err[:3], self.err[3:]
        self._pos = np.zeros(3)
        self._current, self._half_desired = np.zeros((6, 3)), np.zeros((6, 3))
        self._products, self._crosses = np.zeros((6, 3)), np.zeros((3, 3))

    def set_target(self, pos: np.ndarray, rot: np.ndarray) -> None:
        self._pos[:] = pos
        # Halving is exact in floating point, so halving here rather than the sum is the same bits.
        np.multiply(rot[self._DESIRED_ROWS], 0.5, out=self._half_desired)

    def pose_error(self) -> np.ndarray:
        """(position error, small-angle rotation error) from the site to the target, in ``err``."""
        np.subtract(self._pos, self.site_pos, out=self._err_pos)
        np.take(self.site_rot, self._CURRENT_ROWS, axis=0, out=self._current)
        products = np.multiply(self._current, self._half_desired, out=self._products)
        np.add.reduce(np.subtract(products[:3], products[3:], out=self._crosses), axis=1, out=self._err_rot)
        return self.err

    def arm_jacobian(self, dofs: slice | np.ndarray) -> np.ndarray:
        self.arm_jac[:] = self.jac[:, dofs]
        return self.arm_jac


def _solve(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``np.linalg.solve(a, b)`` for 2-D float64 ``b``: its LAPACK kernel, without the argument
    checks and error-state context around it (3 of the IK's 40 us). The IK's damped matrix is
    never singular, so the LinAlgError those turn a singular matrix into cannot arise."""
    return _lapack_solve(a, b, signature="dd->d")


def _clip(x: np.ndarray, lo: np.ndarray | float, hi: np.ndarray | float) -> np.ndarray:
    """``np.clip`` without its Python dispatch layers; equal to it for bounds that are not zero."""
    return np.minimum(np.maximum(x, lo), hi)
