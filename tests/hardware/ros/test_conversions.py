"""Message conversions with numpy, and time alignment, without a running graph."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import PANDA
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float64MultiArray

from hardware.ros.conversions import joint_command, rgb_to_image
from hardware.ros.decoding import JointStateReader, MessageError, image_to_rgb, read_joint_command
from hardware.ros.timeline import Timeline


def test_rgb_round_trip_and_other_encodings():
    rgb = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(image_to_rgb(rgb_to_image(rgb)), rgb)
    bgr = Image(height=5, width=7, encoding="bgr8", step=7 * 3 + 3)  # padded rows
    padded = np.zeros((5, 24), np.uint8)
    padded[:, :21] = rgb[..., ::-1].reshape(5, 21)
    bgr.data = padded.tobytes()
    np.testing.assert_array_equal(image_to_rgb(bgr), rgb)
    mono = Image(height=2, width=2, encoding="mono8", step=2, data=bytes([0, 50, 100, 150]))
    assert image_to_rgb(mono).shape == (2, 2, 3) and image_to_rgb(mono)[1, 1].tolist() == [150] * 3
    with pytest.raises(MessageError, match="16UC1"):
        image_to_rgb(Image(height=1, width=1, encoding="16UC1", step=2, data=bytes(2)))


def test_joint_state_reader_orders_by_name_and_refuses_bad_layouts():
    reader = JointStateReader(PANDA, ("panda_finger_joint1",))
    names = ["panda_finger_joint1", *reversed(PANDA)]
    msg = JointState(name=names, position=[0.04, *range(7)], velocity=[0.0, *range(10, 17)])
    q, qd, grip = reader.read(msg)
    np.testing.assert_array_equal(q, np.arange(7)[::-1])
    np.testing.assert_array_equal(qd, np.arange(10, 17)[::-1])
    np.testing.assert_array_equal(grip, [0.04])
    with pytest.raises(MessageError, match=r"lacks joints \['panda_joint1'\]"):
        reader.read(JointState(name=names[:-1], position=[0.0] * 7, velocity=[0.0] * 7))
    with pytest.raises(MessageError, match="8 names but 8 positions and 0 velocities"):
        reader.read(JointState(name=names, position=[0.0] * 8))
    with pytest.raises(MessageError, match=r"names joints \['panda_joint1'\] more than once"):
        reader.read(JointState(name=[*names, "panda_joint1"], position=[0.0] * 9, velocity=[0.0] * 9))
    with pytest.raises(MessageError, match="non-finite"):
        reader.read(JointState(name=names, position=[0.04, float("nan"), *range(6)], velocity=[0.0] * 8))
    with pytest.raises(MessageError, match="non-finite"):
        reader.read(JointState(name=names, position=[0.04, *range(7)], velocity=[0.0, float("inf"), *[0.0] * 6]))


def test_commands_for_both_controller_interfaces_round_trip():
    q = np.linspace(-1, 1, 7)
    trajectory = joint_command("joint_trajectory", PANDA, q, 0.05)
    assert trajectory.joint_names == list(PANDA) and trajectory.points[0].time_from_start.nanosec == 50_000_000
    np.testing.assert_allclose(read_joint_command(trajectory, PANDA), q)
    array = joint_command("position_array", PANDA, q, 0.05)
    assert isinstance(array, Float64MultiArray)
    np.testing.assert_allclose(read_joint_command(array, PANDA), q)
    with pytest.raises(MessageError, match="6 values; expected 7"):
        read_joint_command(Float64MultiArray(data=[0.0] * 6), PANDA)


def test_timeline_alignment():
    timeline = Timeline(horizon_s=1.0)
    for t in (1.0, 1.1, 1.2, 1.3):
        timeline.add(t, t * 10)
    assert timeline.latest(1.15) == (1.1, 11.0)
    assert timeline.nearest(1.26, 0.05) == (1.3, 13.0)
    assert timeline.nearest(2.0, 0.05) is None
    assert timeline.between(1.1, 1.25) == (1.2, 12.0) and timeline.between(1.3, 1.4) is None
    timeline.add(3.0, 30.0)  # older samples fall out of the horizon
    assert timeline.latest(1.5) is None


def test_an_empty_velocity_field_reads_as_zeros_only_when_allowed():
    msg = JointState(name=["a", "b"], position=[0.5, -0.5], velocity=[])
    with pytest.raises(MessageError, match="0 velocities"):
        JointStateReader(("a",), ("b",)).read(msg)  # the nodes: the policy reads velocities
    q, qd, qg = JointStateReader(("a",), ("b",), velocity_required=False).read(msg)  # a bag from such a driver
    assert q.tolist() == [0.5] and qd.tolist() == [0.0] and qg.tolist() == [-0.5]
    with pytest.raises(MessageError, match="1 velocities"):
        JointStateReader(("a",), ("b",), velocity_required=False).read(
            JointState(name=["a", "b"], position=[0.5, -0.5], velocity=[1.0]))
