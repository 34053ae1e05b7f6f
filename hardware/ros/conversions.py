"""Message <-> numpy conversions, no cv_bridge: images, joint states and joint commands."""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Duration, Time
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float32MultiArray, Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

COMMAND_INTERFACES = ("joint_trajectory", "position_array")
DEFAULT_COMMAND_TOPICS = {"joint_trajectory": "joint_trajectory_controller/joint_trajectory",
                          "position_array": "forward_position_controller/commands"}
_CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}


class MessageError(ValueError):
    """A message does not have the layout this node needs; the text says what differs."""


def stamp_to_s(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def image_to_rgb(msg: Image) -> np.ndarray:
    """(H, W, 3) uint8 RGB from an 8-bit rgb8/bgr8/rgba8/bgra8/mono8 image, row padding removed."""
    channels = _CHANNELS.get(msg.encoding)
    if channels is None:
        raise MessageError(f"image encoding {msg.encoding!r} is not supported; expected one of {', '.join(_CHANNELS)}.")
    if msg.step < msg.width * channels or len(msg.data) < msg.step * msg.height:
        raise MessageError(f"image of {msg.width}x{msg.height} {msg.encoding} has step {msg.step} and "
                           f"{len(msg.data)} bytes; too few for its size.")
    rows = np.frombuffer(msg.data, np.uint8, count=msg.step * msg.height).reshape(msg.height, msg.step)
    pixels = rows[:, : msg.width * channels].reshape(msg.height, msg.width, channels)
    if channels == 1:
        return np.repeat(pixels, 3, axis=2)
    if msg.encoding.startswith("bgr"):
        return pixels[..., 2::-1].copy()
    return pixels[..., :3].copy()


def rgb_to_image(rgb: np.ndarray, stamp: Time | None = None, frame_id: str = "") -> Image:
    """An rgb8 Image from an (H, W, 3) uint8 array."""
    if rgb.dtype != np.uint8 or rgb.ndim != 3 or rgb.shape[2] != 3:
        raise MessageError(f"expected an (H, W, 3) uint8 image, got {rgb.shape} {rgb.dtype}.")
    msg = Image(height=rgb.shape[0], width=rgb.shape[1], encoding="rgb8", is_bigendian=0, step=rgb.shape[1] * 3)
    msg.data = np.ascontiguousarray(rgb).tobytes()
    if stamp is not None:
        msg.header.stamp = stamp
    msg.header.frame_id = frame_id
    return msg


class JointStateReader:
    """Picks the arm and gripper joints out of JointState messages by name, in driver order.

    The name-to-index map is cached per name list, so the usual fixed layout costs one
    tuple comparison per message. Wrong, missing or duplicate names, array sizes that differ
    from the names (an empty velocity field included) and non-finite values raise
    ``MessageError``.
    """

    def __init__(self, joint_names: tuple[str, ...], gripper_names: tuple[str, ...] = ()) -> None:
        self.joint_names, self.gripper_names = tuple(joint_names), tuple(gripper_names)
        self._names: tuple[str, ...] | None = None
        self._arm = self._grip = np.zeros(0, int)

    def read(self, msg: JointState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(q, qd, q_gripper) as float64 arrays."""
        names = tuple(msg.name)
        if names != self._names:
            self._index(names)
        n = len(names)
        if len(msg.position) != n or len(msg.velocity) != n:
            raise MessageError(f"joint_states has {n} names but {len(msg.position)} positions and "
                               f"{len(msg.velocity)} velocities; expected one of each per name.")
        position = np.frombuffer(msg.position, np.float64) if n else np.zeros(0)
        velocity = np.frombuffer(msg.velocity, np.float64) if n else np.zeros(0)
        q, qd, qg = position[self._arm], velocity[self._arm], position[self._grip]
        if not (np.isfinite(q).all() and np.isfinite(qd).all() and np.isfinite(qg).all()):
            raise MessageError(f"joint_states has non-finite values: positions {q.tolist()}, velocities "
                               f"{qd.tolist()}.")
        return q, qd, qg

    def _index(self, names: tuple[str, ...]) -> None:
        wanted = self.joint_names + self.gripper_names
        if len(set(names)) != len(names):
            self._names = None
            twice = sorted({j for j in names if names.count(j) > 1})
            raise MessageError(f"joint_states names joints {twice} more than once; expected each name once.")
        missing = [j for j in wanted if j not in names]
        if missing:
            self._names = None
            raise MessageError(f"joint_states lacks joints {missing} that the robot config names; "
                               f"it has {list(names)}.")
        index = {name: i for i, name in enumerate(names)}
        self._arm = np.array([index[j] for j in self.joint_names], int)
        self._grip = np.array([index[j] for j in self.gripper_names], int)
        self._names = names


def joint_state(names: tuple[str, ...], position: np.ndarray, velocity: np.ndarray, stamp: Time) -> JointState:
    msg = JointState(name=list(names))
    msg.header.stamp = stamp
    msg.position = np.asarray(position, np.float64).tolist()
    msg.velocity = np.asarray(velocity, np.float64).tolist()
    return msg


def joint_command(interface: str, names: tuple[str, ...], positions: np.ndarray, period_s: float):
    """A position command the ros2_control controllers accept.

    ``joint_trajectory``: a one-point JointTrajectory reached one control period from now
    (header stamp zero: start on receipt), for joint_trajectory_controller.
    ``position_array``: a Float64MultiArray in driver joint order, for forward_command_controller.
    """
    if interface == "position_array":
        return Float64MultiArray(data=np.asarray(positions, np.float64).tolist())
    sec, nanosec = divmod(int(round(period_s * 1e9)), 1_000_000_000)
    point = JointTrajectoryPoint(positions=np.asarray(positions, np.float64).tolist(),
                                 time_from_start=Duration(sec=sec, nanosec=nanosec))
    return JointTrajectory(joint_names=list(names), points=[point])


def command_type(interface: str) -> type:
    if interface not in COMMAND_INTERFACES:
        raise ValueError(f"command_interface {interface!r} is unknown; expected one of "
                         f"{', '.join(COMMAND_INTERFACES)}.")
    return Float64MultiArray if interface == "position_array" else JointTrajectory


def read_joint_command(msg, names: tuple[str, ...]) -> np.ndarray:
    """Driver-ordered joint positions from a JointTrajectory (its last point) or a Float64MultiArray."""
    if isinstance(msg, Float64MultiArray):
        if len(msg.data) != len(names):
            raise MessageError(f"position command has {len(msg.data)} values; expected {len(names)} ({list(names)}).")
        return np.array(msg.data, np.float64)
    if not msg.points:
        raise MessageError("joint trajectory has no points.")
    positions = msg.points[-1].positions
    if len(positions) != len(msg.joint_names):
        raise MessageError(f"joint trajectory names {len(msg.joint_names)} joints but gives {len(positions)} "
                           "positions.")
    index = {name: i for i, name in enumerate(msg.joint_names)}
    missing = [j for j in names if j not in index]
    if missing:
        raise MessageError(f"joint trajectory lacks joints {missing}; it names {list(msg.joint_names)}.")
    return np.array([positions[index[j]] for j in names], np.float64)


def vector(values: np.ndarray) -> Float32MultiArray:
    return Float32MultiArray(data=np.asarray(values, np.float32).tolist())
