"""Load any arm from its MJCF and a robot config, so no code path is hard-wired to one robot.

A robot config names the MJCF file (ours, one shipped by dm_control, or the user's own),
the arm joints in driver order, the end-effector site, the gripper and the limits. Missing
pieces (position actuators, a TCP site, a wrist camera) are added here from the config.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import mujoco
import numpy as np
from dm_control import mjcf

_BUILTIN_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class GripperConfig:
    """Gripper joints and the actuator (ctrl value when fully open and fully closed)."""

    joints: tuple[str, ...]
    open_ctrl: float
    closed_ctrl: float
    actuator: str | None = None  # existing actuator; None adds one position actuator per joint
    kp: float = 10.0
    kv: float = 0.0  # damping of the added servos, on top of the joints' own
    # One body per finger (its child links count as that finger); the first opposes the rest.
    finger_bodies: tuple[str, ...] = ()


@dataclass(frozen=True)
class RobotConfig:
    """Everything the sim needs to know about an arm; one YAML file in ``sim/conf/robot``."""

    name: str
    mjcf: str
    joints: tuple[str, ...]
    home_qpos: tuple[float, ...]
    ee_site: str
    gripper: GripperConfig
    ros_joint_names: tuple[str, ...] = ()
    hand_mjcf: str | None = None
    hand_attach_site: str | None = None
    arm_actuators: tuple[str, ...] = ()  # existing actuators; empty adds position servos
    kp: tuple[float, ...] = ()
    damping_ratio: float = 1.0
    velocity_limits_rad_s: tuple[float, ...] = ()
    base_pos_m: tuple[float, float, float] = (0.0, 0.0, 0.0)
    wrist_camera_body: str = ""
    wrist_camera_pos_m: tuple[float, float, float] = (0.0, 0.0, 0.0)
    wrist_camera_xyaxes: tuple[float, ...] = (0.0, -1.0, 0.0, -1.0, 0.0, 0.0)
    wrist_camera_fovy_deg: float = 75.0
    tcp_offset_m: tuple[float, float, float] | None = None  # adds ee_site on this body's frame
    tcp_quat: tuple[float, float, float, float] = (1.0, 0.0, 0.0, 0.0)  # of that site, (w, x, y, z)
    tcp_body: str = ""
    gravity_compensation: bool = True
    # The scripted experts' proportional gain on this arm (sim/experts.py): the highest that
    # stays stable under the hard preset's two steps of action latency (see WaypointExpert).
    expert_gain: float = 0.5
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.home_qpos) != len(self.joints):
            raise ValueError(
                f"robot {self.name!r}: home_qpos has {len(self.home_qpos)} values for "
                f"{len(self.joints)} joints."
            )
        if self.ros_joint_names and len(self.ros_joint_names) != len(self.joints):
            raise ValueError(f"robot {self.name!r}: ros_joint_names must list one name per joint.")

    @property
    def driver_joint_names(self) -> tuple[str, ...]:
        """Joint names as the real robot's ROS 2 driver publishes them."""
        return self.ros_joint_names or self.joints


def robot_config_from_dict(values: dict) -> RobotConfig:
    """A RobotConfig from its YAML dict (``sim/conf/robot/<name>.yaml``), lists turned into tuples."""
    from robot_rl.schema import build

    return build(RobotConfig, values, "robot", ValueError)


def resolve_asset(path: str) -> Path:
    """``builtin:x.xml`` is ours, ``dm_control:x.xml`` ships with dm_control, else a file path."""
    if path.startswith("builtin:"):
        resolved = _BUILTIN_DIR / path.removeprefix("builtin:")
    elif path.startswith("dm_control:"):
        import dm_control

        resolved = Path(dm_control.__file__).parent / path.removeprefix("dm_control:")
    else:
        resolved = Path(os.path.expanduser(path))
    if not resolved.is_file():
        raise FileNotFoundError(f"robot MJCF {path!r} not found (looked at {resolved}).")
    return resolved


def attach_robot(arena: mjcf.RootElement, config: RobotConfig) -> mjcf.RootElement:
    """Attach the robot described by ``config`` to ``arena`` and return the robot's MJCF."""
    robot = mjcf.from_path(str(resolve_asset(config.mjcf)))
    robot.model = config.name
    if config.hand_mjcf:
        hand = mjcf.from_path(str(resolve_asset(config.hand_mjcf)))
        robot.find("site", config.hand_attach_site).attach(hand)
    if not config.arm_actuators:
        _add_position_servos(robot, config)
    if config.gripper.actuator is None:
        _add_gripper_servos(robot, config.gripper)
    if config.tcp_offset_m is not None:
        _find(robot, "body", config.tcp_body).add(
            "site", name=config.ee_site, pos=list(config.tcp_offset_m), quat=list(config.tcp_quat),
            size=[0.005], group=4,
        )
    _add_wrist_camera(robot, config)
    if config.gravity_compensation:
        for body in robot.find_all("body"):
            if "gravcomp" in body.spec.attributes:  # not on the frames that hold attached hands
                body.gravcomp = 1
    site = arena.worldbody.add("site", name=f"{config.name}_mount", pos=list(config.base_pos_m))
    site.attach(robot)
    return robot


def _find(robot: mjcf.RootElement, kind: str, name: str):
    """The element ``name`` of the arm, or of an attached hand when only one has that name."""
    element = robot.find(kind, name)
    if element is not None:
        return element
    matches = [e for e in robot.find_all(kind) if getattr(e, "name", None) == name]
    if len(matches) == 1:
        return matches[0]
    where = "" if not matches else f" (ambiguous: {', '.join(e.full_identifier for e in matches)})"
    raise ValueError(f"robot MJCF {robot.model!r} has no single {kind} named {name!r}{where}.")


def _add_position_servos(robot: mjcf.RootElement, config: RobotConfig) -> None:
    """Joint position servos; kv from a damping ratio against each joint's inertia at home."""
    joints = [_find(robot, "joint", name) for name in config.joints]
    inertia = _joint_inertia_at_home(robot, joints, config.home_qpos)
    for joint, kp, inertia_kg_m2 in zip(joints, config.kp, inertia, strict=True):
        kv = 2.0 * config.damping_ratio * np.sqrt(kp * inertia_kg_m2)
        robot.actuator.add("position", name=f"{joint.name}_servo", joint=joint, kp=kp, kv=kv)


def _joint_inertia_at_home(robot: mjcf.RootElement, joints: list, home_qpos: tuple[float, ...]) -> np.ndarray:
    """Diagonal of the joint-space inertia (armature included) with the arm at its home pose."""
    model = mujoco.MjModel.from_xml_string(robot.to_xml_string(), robot.get_assets())
    data = mujoco.MjData(model)
    ids = [model.joint(joint.full_identifier).id for joint in joints]
    data.qpos[model.jnt_qposadr[ids]] = home_qpos
    mujoco.mj_forward(model, data)
    unit, column, diagonal = np.zeros(model.nv), np.zeros(model.nv), []
    for dof in model.jnt_dofadr[ids]:
        unit[:] = 0.0
        unit[dof] = 1.0
        mujoco.mj_mulM(model, data, column, unit)
        diagonal.append(column[dof])
    return np.array(diagonal)


def _add_gripper_servos(robot: mjcf.RootElement, gripper: GripperConfig) -> None:
    for name in gripper.joints:
        joint = _find(robot, "joint", name)
        lo, hi = sorted((gripper.open_ctrl, gripper.closed_ctrl))
        robot.actuator.add(
            "position", name=f"{name}_servo", joint=joint, kp=gripper.kp, kv=gripper.kv, ctrlrange=[lo, hi]
        )


def _add_wrist_camera(robot: mjcf.RootElement, config: RobotConfig) -> None:
    if not config.wrist_camera_body:
        return
    body = _find(robot, "body", config.wrist_camera_body)
    if body.root is not robot:
        # A camera inside an attached hand would be named <robot>/<hand>/wrist, not <robot>/wrist.
        raise ValueError(
            f"robot {config.name!r}: wrist_camera_body {config.wrist_camera_body!r} is in the attached "
            "hand; name the arm body the hand is attached to and give the camera pose in its frame."
        )
    body.add(
        "camera",
        name="wrist",
        pos=list(config.wrist_camera_pos_m),
        xyaxes=list(config.wrist_camera_xyaxes),
        fovy=config.wrist_camera_fovy_deg,
    )


def resolve_name(model: mujoco.MjModel, kind: mujoco.mjtObj, prefix: str, name: str) -> int:
    """Id of ``name`` in the robot under ``prefix``, also inside an attached hand's namespace."""
    exact = mujoco.mj_name2id(model, kind, prefix + name)
    if exact >= 0:
        return exact
    count = {mujoco.mjtObj.mjOBJ_JOINT: model.njnt, mujoco.mjtObj.mjOBJ_SITE: model.nsite,
             mujoco.mjtObj.mjOBJ_BODY: model.nbody, mujoco.mjtObj.mjOBJ_ACTUATOR: model.nu}[kind]
    for i in range(count):
        full = mujoco.mj_id2name(model, kind, i) or ""
        if full.startswith(prefix) and full.endswith("/" + name):
            return i
    raise ValueError(f"{kind.name.removeprefix('mjOBJ_').lower()} {name!r} not found in robot {prefix[:-1]!r}.")


class RobotHandles:
    """Integer ids and qpos/dof addresses of one attached robot in a compiled model."""

    def __init__(self, model: mujoco.MjModel, config: RobotConfig) -> None:
        obj, prefix = mujoco.mjtObj, f"{config.name}/"
        self.config = config
        self.joint_ids = np.array([resolve_name(model, obj.mjOBJ_JOINT, prefix, j) for j in config.joints])
        self.qpos_adr = model.jnt_qposadr[self.joint_ids]
        self.dof_adr = model.jnt_dofadr[self.joint_ids]
        self.joint_range = model.jnt_range[self.joint_ids].copy()
        unlimited = ~model.jnt_limited[self.joint_ids].astype(bool)
        self.joint_range[unlimited] = (-2 * np.pi, 2 * np.pi)
        arm_actuators = config.arm_actuators or tuple(f"{j}_servo" for j in config.joints)
        self.arm_actuators = np.array([resolve_name(model, obj.mjOBJ_ACTUATOR, prefix, a) for a in arm_actuators])
        self.ee_site = resolve_name(model, obj.mjOBJ_SITE, prefix, config.ee_site)
        grip = config.gripper
        grip_joints = [resolve_name(model, obj.mjOBJ_JOINT, prefix, j) for j in grip.joints]
        self.gripper_qpos_adr = model.jnt_qposadr[grip_joints]
        self.gripper_dof_adr = model.jnt_dofadr[grip_joints]
        self.gripper_range = model.jnt_range[grip_joints].copy()
        grip_actuators = (grip.actuator,) if grip.actuator else tuple(f"{j}_servo" for j in grip.joints)
        self.gripper_actuators = np.array([resolve_name(model, obj.mjOBJ_ACTUATOR, prefix, a) for a in grip_actuators])
        finger_roots = [resolve_name(model, obj.mjOBJ_BODY, prefix, b) for b in grip.finger_bodies]
        self.finger_bodies = np.array(finger_roots, dtype=int)
        finger_of_body = {b: i for i, root in enumerate(finger_roots) for b in _subtree(model, root)}
        self.finger_geoms = np.array([g for g in range(model.ngeom) if model.geom_bodyid[g] in finger_of_body], dtype=int)
        # Which finger each finger geom belongs to: a finger body and all its links (e.g. a fingertip).
        self.finger_of_geom = {int(g): finger_of_body[model.geom_bodyid[g]] for g in self.finger_geoms}
        self.bodies = np.array([b for b in range(model.nbody) if model.body(b).name.startswith(prefix)])


def _subtree(model: mujoco.MjModel, root: int) -> list[int]:
    """``root`` and every body below it."""
    bodies = [root]
    for b in range(root + 1, model.nbody):  # children always come after their parent
        if model.body_parentid[b] in bodies:
            bodies.append(b)
    return bodies
