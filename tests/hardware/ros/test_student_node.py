"""The policy node running a student (cameras + joint state + instruction) against a stand-in arm
with stand-in cameras over loopback DDS: the images as camera drivers send them (bgr8, another
size), the instruction on its latched topic, a stale camera, an encoding it cannot read."""

from __future__ import annotations

import time

import numpy as np
import pytest
from conftest import STUDENT_IMAGE, configured_policy_node, wait_for
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image
from std_msgs.msg import String
from test_policy_node_faults import StandInArm, _activate

from hardware.ros.instruction import LATCHED
from hardware.ros.policy_node import PolicyNode
from robot_rl.contracts import OBS_INSTRUCTION
from robot_rl.policy.instruction import InstructionEmbedder

INSTRUCTION = "move the gripper to the red block"


class StandInCameras(Node):
    """Two camera drivers (front, wrist) at 20 Hz; ``encoding``, ``size`` and ``silent`` script them."""

    def __init__(self, context, encoding: str = "bgr8", size: tuple[int, int] = (48, 64)) -> None:
        super().__init__("stand_in_cameras", context=context)
        self.encoding, self.size, self.silent = encoding, size, False
        self._pubs = [self.create_publisher(Image, f"{c}/image_raw", qos_profile_sensor_data) for c in ("front", "wrist")]
        self.create_timer(0.05, self._publish)

    def _publish(self) -> None:
        if self.silent:
            return
        height, width = self.size
        channels = 1 if self.encoding == "mono8" else 3
        msg = Image(height=height, width=width, encoding=self.encoding, step=width * channels)
        msg.data = np.random.default_rng(0).integers(0, 256, height * width * channels, dtype=np.uint8).tobytes()
        msg.header.stamp = self.get_clock().now().to_msg()
        for publisher in self._pubs:
            publisher.publish(msg)


def _student_node(ros, student_policy) -> PolicyNode:
    return configured_policy_node(ros, student_policy, control_rate_hz=20.0, obs_timeout_s=0.3)


def test_student_needs_an_instruction_acts_on_driver_images_and_holds_on_a_stale_camera(ros, student_policy):
    arm, cameras = ros.add(StandInArm(ros.context)), ros.add(StandInCameras(ros.context, "bgr8", (48, 64)))
    policy = _student_node(ros, student_policy)
    client = ros.add(Node("client", context=ros.context))
    wait_for(lambda: "nothing received on /instruction" in policy.cache.problem(), what="joints and images, no instruction")
    assert not _activate(client)
    assert policy.refusal.startswith("refusing to activate: nothing received on /instruction yet")
    assert "\n" not in policy.refusal and "." not in policy.refusal  # one sentence

    # Said before the node listens would also do: the topic is transient-local.
    speaker = ros.add(Node("operator", context=ros.context)).create_publisher(String, "instruction", LATCHED)
    speaker.publish(String(data=INSTRUCTION))
    wait_for(lambda: policy.cache.problem() == "", what="the instruction's embedding")
    obs = policy.cache.snapshot()
    # The artifact's own ONNX encoder (no torch on the robot), the vector training used to 1e-5.
    np.testing.assert_array_equal(obs.extra[OBS_INSTRUCTION], InstructionEmbedder(artifact=student_policy)(INSTRUCTION))
    np.testing.assert_allclose(obs.extra[OBS_INSTRUCTION], InstructionEmbedder()(INSTRUCTION), atol=1e-5)
    for camera in ("front", "wrist"):  # bgr8 at 64x48, fitted to the policy's square images
        assert obs.extra[f"obs/images/{camera}"].shape == (STUDENT_IMAGE, STUDENT_IMAGE, 3)
    assert _activate(client)
    wait_for(lambda: len(arm.commands) >= 5, what="commands from the student")

    cameras.silent = True  # the camera stops; joint states keep coming
    wait_for(lambda: policy.safety.fault_reason == "stale_observation", what="the stale camera to hold the arm")
    held_at = len(arm.commands)
    time.sleep(0.5)  # 10 ticks
    assert len(arm.commands) == held_at, "commands were sent from a stale camera image"
    cameras.silent = False
    wait_for(lambda: len(arm.commands) > held_at + 3, what="commands after the camera came back")
    assert policy.safety.fault_reason == "" and policy.safety.faults == 1

    # A new instruction takes effect once embedded, with no hold in between.
    speaker.publish(String(data="move the gripper to the blue block"))
    new = InstructionEmbedder(artifact=student_policy)("move the gripper to the blue block")
    wait_for(lambda: np.array_equal(policy.cache.snapshot().extra[OBS_INSTRUCTION], new), what="the new instruction")
    assert policy.safety.faults == 1


def test_an_image_encoding_the_node_cannot_read_is_one_sentence_and_no_observation(ros, student_policy):
    ros.add(StandInArm(ros.context))
    ros.add(StandInCameras(ros.context, "mono8", (48, 48)))
    policy = _student_node(ros, student_policy)
    ros.add(Node("operator", context=ros.context)).create_publisher(String, "instruction", LATCHED).publish(
        String(data=INSTRUCTION))
    problem = wait_for(lambda: "'mono8'" in policy.cache.problem() and policy.cache.problem(), what="the refusal")
    assert problem == ("front/image_raw is 'mono8'; the policy node reads rgb8 or bgr8 (set the camera driver's "
                       "output encoding).")
    assert policy.cache.snapshot() is None
    assert not _activate(ros.add(Node("client", context=ros.context)))


@pytest.mark.parametrize("size", [(48, 48), (480, 640)])
def test_rgb8_of_any_size_reaches_the_policy_fitted(ros, student_policy, size):
    ros.add(StandInArm(ros.context))
    ros.add(StandInCameras(ros.context, "rgb8", size))
    policy = _student_node(ros, student_policy)
    ros.add(Node("operator", context=ros.context)).create_publisher(String, "instruction", LATCHED).publish(
        String(data=INSTRUCTION))
    wait_for(lambda: policy.cache.problem() == "", what="every input")
    image = policy.cache.snapshot().extra["obs/images/front"]
    assert image.shape == (STUDENT_IMAGE, STUDENT_IMAGE, 3) and image.dtype == np.uint8
