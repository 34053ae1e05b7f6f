"""ROS 2 messages to numpy by their fields alone: images, joint states, joint commands, stamps.

No ROS types are imported here, so the same readers serve rclpy's messages on the robot and the
messages ``rosbags`` deserialises from a bag (``robot_rl.interop.rosbag``), which need no ROS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # the annotations only: rclpy's types, which rosbags' messages mirror field by field
    from builtin_interfaces.msg import Time
    from sensor_msgs.msg import Image, JointState

CHANNELS = {"rgb8": 3, "bgr8": 3, "rgba8": 4, "bgra8": 4, "mono8": 1}


class MessageError(ValueError):
    """A message does not have the layout this node needs; the text says what differs."""


def stamp_to_s(stamp: Time) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def image_to_rgb(msg: Image) -> np.ndarray:
    """(H, W, 3) uint8 RGB from an 8-bit rgb8/bgr8/rgba8/bgra8/mono8 image, row padding removed."""
    channels = CHANNELS.get(msg.encoding)
    if channels is None:
        raise MessageError(f"image encoding {msg.encoding!r} is not supported; expected one of {', '.join(CHANNELS)}.")
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


class JointStateReader:
    """Picks the arm and gripper joints out of JointState messages by name, in driver order.

    The name-to-index map is cached per name list, so the usual fixed layout costs one
    tuple comparison per message. Wrong, missing or duplicate names, array sizes that differ
    from the names (an empty velocity field included, unless ``velocity_required`` is False) and
    non-finite values raise ``MessageError``.
    """

    def __init__(self, joint_names: tuple[str, ...], gripper_names: tuple[str, ...] = (),
                 velocity_required: bool = True) -> None:
        self.joint_names, self.gripper_names = tuple(joint_names), tuple(gripper_names)
        # False: an empty velocity field reads as zeros (drivers that publish positions only; the
        # rosbag2 import). The nodes keep True: the policy reads velocities.
        self.velocity_required = velocity_required
        self._names: tuple[str, ...] | None = None
        self._arm = self._grip = np.zeros(0, int)

    def read(self, msg: JointState) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(q, qd, q_gripper) as float64 arrays."""
        names = tuple(msg.name)
        if names != self._names:
            self._index(names)
        n = len(names)
        velocities = len(msg.velocity)
        if len(msg.position) != n or velocities not in ((n,) if self.velocity_required else (0, n)):
            raise MessageError(f"joint_states has {n} names but {len(msg.position)} positions and "
                               f"{len(msg.velocity)} velocities; expected one of each per name.")
        position = np.frombuffer(msg.position, np.float64) if n else np.zeros(0)
        velocity = np.frombuffer(msg.velocity, np.float64) if velocities else np.zeros(n)
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


def read_joint_command(msg, names: tuple[str, ...]) -> np.ndarray:
    """Driver-ordered joint positions from a JointTrajectory (its last point) or a Float64MultiArray."""
    if not hasattr(msg, "points"):  # a Float64MultiArray
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
