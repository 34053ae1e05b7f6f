"""The latest robot observation, kept by subscription callbacks and read by a control thread.

One ``ObservationCache`` subscribes to the joint states and to every other input a policy
reads: camera images (``<camera>/image_raw``, sensor_msgs/Image, rgb8 or bgr8, center-cropped
and resized to the policy's image size when the camera gives another), vectors
(``observations/<name>``, std_msgs/Float32MultiArray, e.g. the sim's ``obs/object``) and the
instruction (``instruction``, std_msgs/String, embedded off this thread: hardware.ros.instruction).
Each callback converts with numpy and stores the value and its arrival time under a lock; a bad
message is kept as an error string rather than raised, so the control thread can treat it as a
fault and report it. Conversion and resizing run in the callbacks, on the executor's thread,
never on the control thread.

This is where messages are validated, once: joint names (missing, unknown order, duplicates),
array sizes (an empty velocity field included), non-finite values, vector sizes, and header
stamps (more than ``max_stamp_age_s`` from this node's clock, or going backwards). Every bad
message is also remembered until the control thread takes it (``take_fault``), so a single bad
message between two ticks is still a fault even if a good one follows it.

Every input but the instruction counts toward the observation's age (``Observation.time_s``, the
oldest arrival), so a stale camera holds the arm exactly as stale joint states do. The
instruction is latched: it is said once and stays valid until replaced.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float32MultiArray

from hardware.ros.camera_node import fit
from hardware.ros.decoding import JointStateReader, MessageError, image_to_rgb, stamp_to_s
from hardware.ros.instruction import InstructionInput
from hardware.control.tick import Observation
from robot_rl.contracts import OBS_IMAGES_PREFIX, OBS_INSTRUCTION, OBS_STATE

IMAGE_ENCODINGS = ("rgb8", "bgr8")  # what camera drivers publish; anything else is refused, not guessed at


def topic_for(key: str) -> str:
    """The default topic of a policy input key: ``obs/images/front`` -> ``front/image_raw``."""
    if key.startswith(OBS_IMAGES_PREFIX):
        return f"{key[len(OBS_IMAGES_PREFIX):]}/image_raw"
    return f"observations/{key.split('/', 1)[1]}"


@dataclass
class _Latest:
    value: object = None
    time_s: float = float("-inf")
    stamp_s: float = float("nan")
    error: str = ""
    count: int = 0


class ObservationCache:
    """Subscriptions and latest values for the joint states plus ``extra`` keys of given shapes."""

    def __init__(self, node, joint_names: tuple[str, ...], gripper_names: tuple[str, ...],
                 extra: dict[str, tuple[tuple[int, ...], str]] | None = None, joint_states_topic: str = "joint_states",
                 clock=time.perf_counter, max_stamp_age_s: float = 1.0, instruction: str = "",
                 artifact: str | None = None) -> None:
        self.clock = clock
        self.max_stamp_age_s = max_stamp_age_s
        self._ros_clock = node.get_clock()
        self._logger = node.get_logger()
        self._fault = ""
        self.reader = JointStateReader(joint_names, gripper_names)
        self.extra = {k: v for k, v in dict(extra or {}).items() if k != OBS_INSTRUCTION}
        # ``instruction``: the text to start with, until one arrives on the topic.
        self.instruction = (InstructionInput(node, initial=instruction, artifact=artifact) if OBS_INSTRUCTION in dict(extra or {})
                            else None)
        self._refused_encodings: set[tuple[str, str]] = set()
        self._lock = threading.Condition()  # notified when a joint state arrives (wait_for_joint_state)
        self._latest = {OBS_STATE: _Latest(), **{k: _Latest() for k in self.extra}}
        self.topics = {OBS_STATE: joint_states_topic, **{k: topic_for(k) for k in self.extra}}
        self.subscriptions = [node.create_subscription(JointState, joint_states_topic, self._on_joints,
                                                       qos_profile_sensor_data)]
        for key, (shape, _dtype) in self.extra.items():
            if key.startswith(OBS_IMAGES_PREFIX):
                callback = lambda msg, k=key, s=shape: self._on_image(k, s, msg)  # noqa: E731
                self.subscriptions.append(node.create_subscription(Image, self.topics[key], callback,
                                                                   qos_profile_sensor_data))
            else:
                callback = lambda msg, k=key, s=shape: self._on_vector(k, s, msg)  # noqa: E731
                self.subscriptions.append(node.create_subscription(Float32MultiArray, self.topics[key], callback, 10))
        if self.instruction is not None:
            self.topics[OBS_INSTRUCTION] = self.instruction.topic
            self.subscriptions.append(self.instruction.subscription)

    # --- callbacks (executor thread) --------------------------------------------------------
    def _store(self, key: str, value=None, error: str = "", stamp_s: float = float("nan")) -> None:
        now = self.clock()
        with self._lock:
            latest = self._latest[key]
            latest.value, latest.error, latest.time_s, latest.stamp_s = value, error, now, stamp_s
            latest.count += 1
            if error:
                self._fault = error
            if key == OBS_STATE:
                self._lock.notify_all()

    def _check_stamp(self, key: str, stamp_s: float) -> None:
        """Raise MessageError for a stamp far from this node's clock or older than the previous one."""
        now_s = self._ros_clock.now().nanoseconds * 1e-9
        if not abs(now_s - stamp_s) <= self.max_stamp_age_s:
            when = "in the past" if stamp_s < now_s else "in the future"
            raise MessageError(f"{self.topics[key]} is stamped {abs(now_s - stamp_s):.3f} s {when} "
                               f"(max_stamp_age_s {self.max_stamp_age_s:g}); is the sender's clock in sync?")
        previous = self._latest[key].stamp_s
        if stamp_s < previous:
            raise MessageError(f"{self.topics[key]} stamps went back {previous - stamp_s:.3f} s (out of order).")

    def _on_joints(self, msg: JointState) -> None:
        stamp_s = stamp_to_s(msg.header.stamp)
        try:
            self._check_stamp(OBS_STATE, stamp_s)
            self._store(OBS_STATE, self.reader.read(msg), stamp_s=stamp_s)
        except MessageError as error:
            self._store(OBS_STATE, error=str(error), stamp_s=stamp_s)

    def _on_image(self, key: str, shape: tuple[int, ...], msg: Image) -> None:
        stamp_s = stamp_to_s(msg.header.stamp)
        try:
            self._check_stamp(key, stamp_s)
            if msg.encoding not in IMAGE_ENCODINGS:
                self._refuse_encoding(key, msg.encoding)
                return
            self._store(key, fit(image_to_rgb(msg), shape[0], shape[1]), stamp_s=stamp_s)
        except MessageError as error:
            self._store(key, error=f"{self.topics[key]}: {error}", stamp_s=stamp_s)

    def _refuse_encoding(self, key: str, encoding: str) -> None:
        """The image is treated as missing (the value is dropped), said once per topic and encoding."""
        error = (f"{self.topics[key]} is {encoding!r}; the policy node reads {' or '.join(IMAGE_ENCODINGS)} "
                 "(set the camera driver's output encoding).")
        if (key, encoding) not in self._refused_encodings:
            self._refused_encodings.add((key, encoding))
            self._logger.error(error)
        with self._lock:
            latest = self._latest[key]
            latest.value, latest.error = None, error

    def _on_vector(self, key: str, shape: tuple[int, ...], msg: Float32MultiArray) -> None:
        values = np.array(msg.data, np.float32)
        if values.size != int(np.prod(shape)):
            self._store(key, error=f"{self.topics[key]} has {values.size} values; the policy's {key} has shape "
                                   f"{tuple(shape)}.")
        elif not np.isfinite(values).all():
            self._store(key, error=f"{self.topics[key]} has non-finite values.")
        else:
            self._store(key, values.reshape(shape))

    # --- readers (control thread) -----------------------------------------------------------
    def take_fault(self) -> str:
        """The last bad message since the previous call ('' if none), then forget it."""
        with self._lock:
            fault, self._fault = self._fault, ""
        return fault

    def problem(self) -> str:
        """Why no observation can be built now (nothing received, or a bad message), else ''."""
        with self._lock:
            for key, latest in self._latest.items():
                if latest.error:
                    return latest.error
                if latest.value is None:
                    return f"nothing received on {self.topics[key]} yet"
        return self.instruction.problem() if self.instruction is not None else ""

    def waiting(self) -> bool:
        """True while an input has not arrived yet or the first instruction is still being embedded."""
        with self._lock:
            if any(latest.value is None and not latest.error for latest in self._latest.values()):
                return True
        return self.instruction is not None and self.instruction.waiting

    def snapshot(self) -> Observation | None:
        """The latest complete observation (copies), or None while ``problem()`` is not ''."""
        instruction = None if self.instruction is None else self.instruction.vector()
        if self.instruction is not None and instruction is None:
            return None
        with self._lock:
            if any(latest.value is None or latest.error for latest in self._latest.values()):
                return None
            q, qd, qg = self._latest[OBS_STATE].value
            extra = {k: np.array(self._latest[k].value) for k in self.extra}
            oldest = min(latest.time_s for latest in self._latest.values())
        if instruction is not None:
            extra[OBS_INSTRUCTION] = instruction  # never written to: the runtime copies it into its input
        return Observation(q.copy(), qd.copy(), qg.copy(), oldest, extra)

    def ages_s(self) -> dict[str, float]:
        """Seconds since each input last arrived."""
        now = self.clock()
        with self._lock:
            return {key: now - latest.time_s for key, latest in self._latest.items()}

    def wait_for_joint_state(self, newer_than_s: float, timeout_s: float) -> float:
        """Block until a joint state arrives later than ``newer_than_s`` (this cache's clock), at
        most ``timeout_s`` (wall time); returns the latest arrival time. The control thread ticks
        on it, so the command follows the observation by the inference time, not by whatever is
        left of the period."""
        deadline = time.monotonic() + timeout_s
        with self._lock:
            while not self._latest[OBS_STATE].time_s > newer_than_s:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._lock.wait(remaining)
            return self._latest[OBS_STATE].time_s

    def joint_arrival_s(self) -> float:
        """When the latest joint state arrived (this cache's clock)."""
        with self._lock:
            return self._latest[OBS_STATE].time_s

    def close(self) -> None:
        """Stop the instruction's embedding thread (the subscriptions are the node's to destroy)."""
        if self.instruction is not None:
            self.instruction.close()
