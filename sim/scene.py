"""A physics wrapper with named accessors, so task and reward code never indexes raw arrays."""

from __future__ import annotations

import math

import mujoco
import numpy as np

from sim.robots.base import RobotHandles

# MuJoCo resets the physics when one of these fires: the episode's trajectory is spoilt.
DIVERGENCE_WARNINGS = (mujoco.mjtWarning.mjWARN_BADQACC, mujoco.mjtWarning.mjWARN_BADQVEL,
                       mujoco.mjtWarning.mjWARN_BADQPOS)


def index_of(ids: np.ndarray) -> slice | np.ndarray:
    """``ids`` as a slice when they are consecutive (a robot's joints and actuators usually are),
    else unchanged: a slice reads a view and writes in place, at a third of fancy indexing's cost."""
    ids = np.asarray(ids)
    if len(ids) and np.array_equal(ids, np.arange(ids[0], ids[0] + len(ids))):
        return slice(int(ids[0]), int(ids[0]) + len(ids))
    return ids


def norm(vector: np.ndarray) -> float:
    """``np.linalg.norm`` of a 1-D float vector (the same dot product and square root), without
    its Python layers: reward code takes several distances every control step."""
    return math.sqrt(vector.dot(vector))


class Scene:
    """One compiled world: model, data, the robot's handles and the named objects in it."""

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData, robot: RobotHandles) -> None:
        self.model = model
        self.data = data
        self.robot = robot
        self.home_rot = np.eye(3)  # set by the env after placing the arm at home
        # Name lookups build accessor objects; the step loop asks for the same few many times.
        self._body_ids: dict[str, int] = {}
        self._object_geom_masks: dict[str, np.ndarray] = {}
        lo, hi = robot.gripper_range.T
        self._grip_lo, self._grip_span = lo, np.maximum(hi - lo, 1e-9)
        self._grip_open_high = robot.config.gripper.open_ctrl > robot.config.gripper.closed_ctrl
        self._finger_index = np.full(model.ngeom, -1)
        for geom, finger in robot.finger_of_geom.items():
            self._finger_index[geom] = finger
        self._grasp_pairs: dict[str, set[int]] = {}
        # Resolved once: the accessors run several times every control step.
        self._qpos, self._dofs = index_of(robot.qpos_adr), index_of(robot.dof_adr)
        self._grip_qpos = index_of(robot.gripper_qpos_adr)
        self._grip_dofs = index_of(robot.gripper_dof_adr)
        self._ee_pos = data.site_xpos[robot.ee_site]  # views: they follow the data in place
        self._ee_xmat = data.site_xmat[robot.ee_site]
        self._n_joints = len(robot.qpos_adr)
        self._quat = np.empty(4)

    # --- the robot -------------------------------------------------------------------------
    def joint_pos(self) -> np.ndarray:
        return self.data.qpos[self._qpos].copy()

    def joint_vel(self) -> np.ndarray:
        return self.data.qvel[self._dofs].copy()

    def ee_pos(self) -> np.ndarray:
        return self._ee_pos.copy()

    def ee_rot(self) -> np.ndarray:
        return self._ee_xmat.reshape(3, 3).copy()

    def ee_quat(self) -> np.ndarray:
        quat = np.empty(4)
        mujoco.mju_mat2Quat(quat, self._ee_xmat)
        return quat

    def ee_yaw(self) -> float:
        """Yaw of the end effector relative to its home orientation."""
        rel = self.ee_rot() @ self.home_rot.T
        return float(np.arctan2(rel[1, 0], rel[0, 0]))

    def gripper_opening(self) -> float:
        """0 when closed, 1 when fully open, from the finger joints."""
        fracs = (self.data.qpos[self._grip_qpos] - self._grip_lo) / self._grip_span
        frac = float(np.add.reduce(fracs) / len(fracs))  # np.mean's sum and division, without its Python layers
        return min(max(frac if self._grip_open_high else 1.0 - frac, 0.0), 1.0)

    def gripper_speed(self) -> float:
        """How fast the fingers move, in spans per second (mean over the finger joints): about 0
        once they have closed on an object or stopped."""
        return float(np.mean(np.abs(self.data.qvel[self._grip_dofs]) / self._grip_span))

    def robot_state(self) -> np.ndarray:
        """``obs/state``, float32: joint positions and velocities, TCP position and quaternion
        (w, x, y, z), gripper opening; written in place, each value cast once as ``astype`` would."""
        n = self._n_joints
        state = np.empty(2 * n + 8, np.float32)
        state[:n], state[n:2 * n] = self.data.qpos[self._qpos], self.data.qvel[self._dofs]
        state[2 * n:2 * n + 3] = self._ee_pos
        mujoco.mju_mat2Quat(self._quat, self._ee_xmat)
        state[2 * n + 3:2 * n + 7] = self._quat
        state[2 * n + 7] = self.gripper_opening()
        return state

    def closing_axis_yaw(self) -> float:
        """World yaw of the line the fingers close along: first finger to the others' centre."""
        fingers = self.data.xpos[self.robot.finger_bodies]
        axis = fingers[1:].mean(axis=0) - fingers[0]
        return float(np.arctan2(axis[1], axis[0]))

    # --- the physics ------------------------------------------------------------------------
    def warning_counts(self) -> dict[str, int]:
        """MuJoCo's warnings raised since the last reset, e.g. ``{"badqacc": 2}``; empty when none."""
        counts = {}
        for index in range(mujoco.mjtWarning.mjNWARNING.value):
            number = int(self.data.warning[index].number)
            if number:
                counts[mujoco.mjtWarning(index).name.removeprefix("mjWARN_").lower()] = number
        return counts

    def diverged(self) -> bool:
        """True when the state is not finite or MuJoCo flagged a NaN, Inf or huge value."""
        flagged = any(self.data.warning[w].number for w in DIVERGENCE_WARNINGS)
        finite = all(np.isfinite(a).all() for a in (self.data.qpos, self.data.qvel, self.data.qacc))
        return flagged or not finite

    # --- objects ---------------------------------------------------------------------------
    def _free_adr(self, name: str) -> int:
        return int(self.model.jnt_qposadr[self.model.joint(f"{name}_joint").id])

    def body_id(self, name: str) -> int:
        if name not in self._body_ids:
            self._body_ids[name] = self.model.body(name).id
        return self._body_ids[name]

    def object_pos(self, name: str) -> np.ndarray:
        return self.data.xpos[self.body_id(name)].copy()

    def object_quat(self, name: str) -> np.ndarray:
        return self.data.xquat[self.body_id(name)].copy()

    def set_object_pose(self, name: str, pos: np.ndarray, yaw_rad: float = 0.0) -> None:
        adr = self._free_adr(name)
        self.data.qpos[adr:adr + 3] = pos
        self.data.qpos[adr + 3:adr + 7] = [np.cos(yaw_rad / 2), 0, 0, np.sin(yaw_rad / 2)]
        dof = int(self.model.jnt_dofadr[self.model.joint(f"{name}_joint").id])
        self.data.qvel[dof:dof + 6] = 0

    def mocap_pos(self, name: str) -> np.ndarray:
        return self.data.mocap_pos[self.model.body_mocapid[self.body_id(name)]].copy()

    def set_mocap_pos(self, name: str, pos: np.ndarray) -> None:
        self.data.mocap_pos[self.model.body_mocapid[self.body_id(name)]] = pos

    # --- relations -------------------------------------------------------------------------
    def gripper_to_object_distance(self, name: str) -> float:
        return norm(self.ee_pos() - self.object_pos(name))

    def _geom_mask(self, name: str) -> np.ndarray:
        if name not in self._object_geom_masks:
            self._object_geom_masks[name] = self.model.geom_bodyid == self.body_id(name)
        return self._object_geom_masks[name]

    def _grasp_pairs_of(self, name: str) -> set[int]:
        """Codes ``geom1 * ngeom + geom2`` of the contacts between the object and any finger geom."""
        if name not in self._grasp_pairs:
            obj, finger = self._geom_mask(name), self._finger_index >= 0
            pairs = (obj[:, None] & finger[None, :]) | (finger[:, None] & obj[None, :])
            self._grasp_pairs[name] = set(np.flatnonzero(pairs).tolist())
        return self._grasp_pairs[name]

    def is_grasped(self, name: str) -> bool:
        """True when two different fingers touch the object from opposing sides.

        A finger is a finger body with its links (e.g. a fingertip), so one finger touching with
        two links is not a grasp; opposing contact normals rule out two fingers on the same side
        (as a three-finger hand has) pushing the object.
        """
        contact = self.data.contact
        # The usual case, no finger on the object, settled by one set lookup before any array work.
        n = self.model.ngeom
        if self._grasp_pairs_of(name).isdisjoint([a * n + b for a, b in contact.geom.tolist()]):
            return False
        g1, g2 = contact.geom1, contact.geom2
        obj, finger_of = self._geom_mask(name), self._finger_index
        first = obj[g1] & (finger_of[g2] >= 0)   # object is geom1: normal points object -> finger
        second = obj[g2] & (finger_of[g1] >= 0)
        fingers = np.concatenate([finger_of[g2[first]], finger_of[g1[second]]])
        if fingers.min() == fingers.max():  # one finger, however many of its links touch
            return False
        frames = contact.frame
        normals = np.concatenate([-frames[first, :3], frames[second, :3]])
        opposing = (normals @ normals.T) < 0.0
        return bool(np.any(opposing & (fingers[:, None] != fingers[None, :])))

    def touching(self, name_a: str, name_b: str) -> bool:
        contact = self.data.contact
        g1, g2 = contact.geom1, contact.geom2
        mask_a, mask_b = self._geom_mask(name_a), self._geom_mask(name_b)
        return bool(np.any((mask_a[g1] & mask_b[g2]) | (mask_b[g1] & mask_a[g2])))
