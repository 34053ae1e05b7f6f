"""rosbag2 messages (as ``rosbags`` deserialises them) to numpy: which types each role reads,
joint states by name, images (raw and compressed), commands and small scalars.

ROS-free on purpose: ``rosbags`` decodes CDR itself, so an import needs no ROS installation; the
field-by-field readers are the nodes' own (:mod:`hardware.ros.decoding`, which imports no ROS types).
"""

from __future__ import annotations

import numpy as np

from robot_rl.data.format import StoreError

IMAGE = "sensor_msgs/msg/Image"
COMPRESSED = "sensor_msgs/msg/CompressedImage"
JOINT_STATE = "sensor_msgs/msg/JointState"
TRAJECTORY = "trajectory_msgs/msg/JointTrajectory"
F32_ARRAY, F64_ARRAY = "std_msgs/msg/Float32MultiArray", "std_msgs/msg/Float64MultiArray"
STRING, BOOL = "std_msgs/msg/String", "std_msgs/msg/Bool"
F32, F64 = "std_msgs/msg/Float32", "std_msgs/msg/Float64"

# role -> the message types it reads
ROLE_TYPES = {
    "joint_states": (JOINT_STATE,),
    "camera": (IMAGE, COMPRESSED),
    "action": (F32_ARRAY, F64_ARRAY, TRAJECTORY),
    "gripper_topic": (F64_ARRAY, F32_ARRAY),
    "instruction": (STRING,),
    "success": (BOOL,),
    "progress": (F32, F64),
    "object": (F32_ARRAY, F64_ARRAY),
    "episodes topic": (STRING, BOOL),
}


def deserialize(typestore, raw, typename: str):
    """A CDR message as ``rosbags`` decodes it, tolerating trailing bytes after the message.

    ``rosbags``' own ``deserialize_cdr`` refuses more than 3 bytes after the last field, but
    rmw_fastrtps' serialisation (what ``ros2 bag record`` and ``rclpy.serialization`` write)
    can end with 4 more, so the size check is left out here.
    """
    if len(raw) < 4 or bytes(raw[:2]) not in (b"\x00\x00", b"\x00\x01"):
        raise ValueError(f"a {typename} message is not CDR-encoded")
    msgdef = typestore.get_msgdef(typename)
    decode = msgdef.deserialize_cdr_le if raw[1] else msgdef.deserialize_cdr_be
    return decode(raw[4:], 0, msgdef.cls, typestore)[0]


def role_of(role: str) -> str:
    return "camera" if role.startswith("camera ") else role


def check_type(role: str, topic: str, msgtype: str | None) -> None:
    allowed = ROLE_TYPES[role_of(role)]
    if msgtype not in allowed:
        raise StoreError(f"topic {topic} ({role}) holds {msgtype or 'several message types'}, which is not "
                         f"supported there; expected {' or '.join(allowed)}.")


def header_s(msg) -> float | None:
    """The header stamp in seconds, or None when the message has no header (or a zero stamp)."""
    header = getattr(msg, "header", None)
    if header is None or (header.stamp.sec == 0 and header.stamp.nanosec == 0):
        return None
    return header.stamp.sec + header.stamp.nanosec * 1e-9


class JointPicker:
    """Arm and gripper joints out of JointState messages by name: the nodes' own reader
    (:class:`hardware.ros.decoding.JointStateReader`), with an empty velocity field read as zeros
    and its problems as one StoreError sentence naming the topic."""

    def __init__(self, topic: str, joints: tuple[str, ...], gripper: tuple[str, ...]) -> None:
        from hardware.ros.decoding import JointStateReader

        self.topic = topic
        self._reader = JointStateReader(joints, gripper, velocity_required=False)

    def read(self, msg) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        from hardware.ros.decoding import MessageError

        try:
            return self._reader.read(msg)
        except MessageError as error:
            raise StoreError(f"a joint state on {self.topic}: {error}") from None


def decode_image(msg, msgtype: str, label: str) -> np.ndarray:
    """(H, W, 3) uint8 RGB from a sensor_msgs/Image (8-bit encodings) or CompressedImage (jpeg/png)."""
    if msgtype == COMPRESSED:
        import cv2

        data = np.asarray(msg.data, np.uint8)
        bgr = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
        if bgr is None:
            raise StoreError(f"{label}: a compressed image (format {msg.format!r}) could not be decoded; "
                             "jpeg and png are supported.")
        return bgr[..., ::-1]
    from hardware.ros.decoding import CHANNELS, MessageError, image_to_rgb

    if msg.encoding not in CHANNELS:
        raise StoreError(f"{label} has image encoding {msg.encoding!r}, which is not supported; expected one of "
                         f"{', '.join(CHANNELS)} (or a sensor_msgs/CompressedImage topic).")
    try:
        return image_to_rgb(msg)
    except MessageError as error:
        raise StoreError(f"{label}: {error}") from None


def fit_image(rgb: np.ndarray, size: tuple[int, int] | None, label: str, first: tuple[int, int] | None
              ) -> np.ndarray:
    """``rgb`` resized to ``size`` (height, width) when given; else it must match the camera's first frame."""
    if size is not None and rgb.shape[:2] != size:
        import cv2

        return cv2.resize(np.ascontiguousarray(rgb), (size[1], size[0]), interpolation=cv2.INTER_AREA)
    if size is None and first is not None and rgb.shape[:2] != first:
        raise StoreError(f"{label} changes size from {first[1]}x{first[0]} to {rgb.shape[1]}x{rgb.shape[0]}; "
                         "set image_size in the topic map to resize every frame.")
    return rgb


def vector(msg) -> np.ndarray:
    return np.asarray(msg.data, np.float64)


def trajectory_positions(msg, joints: tuple[str, ...], topic: str) -> np.ndarray:
    """Positions of ``joints`` (in that order) at the trajectory's last point."""
    from hardware.ros.decoding import MessageError, read_joint_command

    try:
        return read_joint_command(msg, joints)
    except MessageError as error:
        raise StoreError(f"a command on {topic}: {error}") from None
