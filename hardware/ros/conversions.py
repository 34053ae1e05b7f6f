"""Message <-> numpy conversions, no cv_bridge: images, joint states and joint commands (the
message builders here; the readers, which need no ROS types, in ``hardware.ros.decoding``)."""

from __future__ import annotations

import numpy as np
from builtin_interfaces.msg import Duration, Time
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float32MultiArray, Float64MultiArray
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from hardware.ros.decoding import MessageError

COMMAND_INTERFACES = ("joint_trajectory", "position_array")
RESET_PREFIX = "episode reset: "  # the sim bridge's ~/reset answer, followed by the new episode's instruction

DEFAULT_COMMAND_TOPICS = {"joint_trajectory": "joint_trajectory_controller/joint_trajectory",
                          "position_array": "forward_position_controller/commands"}





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



def vector(values: np.ndarray) -> Float32MultiArray:
    return Float32MultiArray(data=np.asarray(values, np.float32).tolist())
