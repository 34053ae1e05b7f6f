"""The recorder node's episode bags (format=mcap|both): one rosbag2 with MCAP storage per kept
episode beside the Zarr store, read back with `rosbags` and with the `mcap` library's own ROS 2
decoder (what Foxglove reads), and imported with `robot-rl data import format=rosbag2`."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from conftest import PANDA, wait_for
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Float32MultiArray, String

from hardware.ros.conversions import joint_state, rgb_to_image, vector
from hardware.ros.mcap_writer import EpisodeBags
from hardware.ros.recorder_node import RecorderNode
from robot_rl.data.store import EpisodeStore

FINGERS = ("panda_finger_joint1", "panda_finger_joint2")


def _stamp(ns: int):
    from builtin_interfaces.msg import Time

    return Time(sec=ns // 1_000_000_000, nanosec=ns % 1_000_000_000)


def test_episode_bags_hold_real_messages_in_mcap(tmp_path):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory
    from rosbags.rosbag2 import Reader
    from rosbags.typesys import Stores, get_typestore

    from robot_rl.interop.rosbag_messages import deserialize

    bags = EpisodeBags(tmp_path / "bags")
    rgb = np.arange(8 * 6 * 3, dtype=np.uint8).reshape(8, 6, 3)
    t0 = 1_700_000_000_000_000_000
    for episode, keep in ((0, True), (1, False), (1, True)):
        bags.start(episode)
        for k in range(5):
            at = t0 + k * 50_000_000
            bags.add("/joint_states", joint_state(PANDA, np.full(7, k * 0.1), np.zeros(7), _stamp(at)), at)
            bags.add("/front/image_raw", rgb_to_image(rgb + k, _stamp(at), "front"), at + 1_000_000)
            bags.add("/teleop/action", vector([k, 0, 0, 0, -1]), at + 5_000_000)
        bags.add("/task/instruction", String(data=f"episode {episode}"), at)
        bags.finish(keep, episode)
    bags.close()
    assert bags.error == "" and bags.dropped == 0
    assert sorted(p.name for p in (tmp_path / "bags").iterdir()) == [".recording", "episode_000000", "episode_000001"]
    assert list((tmp_path / "bags" / ".recording").iterdir()) == []  # the discarded one is gone

    typestore = get_typestore(Stores.ROS2_JAZZY)
    with Reader(tmp_path / "bags" / "episode_000001") as reader:
        assert reader.message_count == 16 and reader.storage.__class__.__name__ != "Sqlite3Reader"
        assert {t: i.msgtype for t, i in reader.topics.items()} == {
            "/joint_states": "sensor_msgs/msg/JointState", "/front/image_raw": "sensor_msgs/msg/Image",
            "/teleop/action": "std_msgs/msg/Float32MultiArray", "/task/instruction": "std_msgs/msg/String"}
        messages = [(c.topic, deserialize(typestore, raw, c.msgtype)) for c, _, raw in reader.messages()]
        images = [m for topic, m in messages if topic == "/front/image_raw"]
        assert len(images) == 5 and images[3].encoding == "rgb8"
        np.testing.assert_array_equal(images[3].data.reshape(8, 6, 3), rgb + 3)
        states = [m for topic, m in messages if topic == "/joint_states"]
        assert list(states[2].name) == list(PANDA) and states[2].position.tolist() == [0.2] * 7
    mcap_file = next((tmp_path / "bags" / "episode_000001").glob("*.mcap"))
    with open(mcap_file, "rb") as stream:  # the MCAP library's own ROS 2 decoder, as Foxglove reads it
        reader = make_reader(stream, decoder_factories=[DecoderFactory()])
        assert reader.get_header().profile == "ros2"
        decoded = [(c.topic, m.log_time, d) for _, c, m, d in reader.iter_decoded_messages(topics=["/teleop/action"])]
        states = [d for _, _, _, d in reader.iter_decoded_messages(topics=["/joint_states"])]
    assert [d.data[0] for _, _, d in decoded] == [0, 1, 2, 3, 4]
    assert list(states[2].name) == list(PANDA) and list(states[2].position) == [0.2] * 7
    assert decoded[2][1] == t0 + 2 * 50_000_000 + 5_000_000


@pytest.mark.parametrize("fmt", ["both", "mcap"])
def test_recorder_writes_an_episode_bag_beside_the_store(fmt, ros, tmp_path):
    out = tmp_path / "real.zarr"
    recorder = ros.add(RecorderNode(context=ros.context, parameter_overrides=[
        Parameter("out", value=str(out)), Parameter("cameras", value=["front"]), Parameter("image_size", value=16),
        Parameter("format", value=fmt), Parameter("instruction", value="reach the cube"),
        Parameter("task", value="reach")]))
    robot = ros.add(Node("arm", context=ros.context))
    joints = robot.create_publisher(JointState, "joint_states", qos_profile_sensor_data)
    camera = robot.create_publisher(Image, "front/image_raw", qos_profile_sensor_data)
    actions = robot.create_publisher(Float32MultiArray, "teleop/action", 10)
    tick = {"k": 0}

    def publish() -> None:  # a 20 Hz arm: joint state and frame, then the command sent in response
        k = tick["k"]
        stamp = robot.get_clock().now().to_msg()
        q = np.r_[0.0, -0.3, 0.0, -2.2, 0.0, 1.9, 0.785] + 0.001 * k
        joints.publish(joint_state(PANDA + FINGERS, np.r_[q, 0.04, 0.04], np.zeros(9), stamp))
        camera.publish(rgb_to_image(np.full((32, 32, 3), k % 250, np.uint8), stamp, "front"))
        actions.publish(vector([0.1, 0, 0, 0, float(k)]))
        tick["k"] += 1

    robot.create_timer(0.05, publish)
    wait_for(lambda: recorder.streams["joints"].latest() and recorder.streams["image/front"].latest()
             and recorder.streams["action"].latest(), what="the arm's topics at the recorder")
    assert recorder.start()[0]
    wait_for(lambda: recorder._steps >= 15, what="15 recorded steps")
    ok, said = recorder.keep(True)
    assert ok and "kept episode 0" in said
    assert recorder.start()[0] and recorder.discard()[0]
    recorder.close()

    folder = tmp_path / "real_mcap"
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == ["episode_000000"]
    if fmt == "mcap":
        assert not out.exists()  # bags only
    else:
        with EpisodeStore.open(out) as store:
            assert store.num_episodes == 1
            stored = store.read_episode(0)

    # the same episode through the rosbag2 import: the recorder's layout, same steps
    tmap = tmp_path / "topics.yaml"
    tmap.write_text(yaml.safe_dump({
        "robot": "panda", "control_rate_hz": 20, "joint_states": "/joint_states",
        "cameras": {"front": "/front/image_raw"}, "image_size": 16, "action": "/teleop/action",
        "instruction": "/task/instruction", "sync": "nearest", "tolerance_s": 0.03, "stamps": "header",
        "episodes": {"by": "topic", "topic": "/recorder/episode"}}))
    from robot_rl.interop.rosbag import import_store

    said = import_store(str(folder), str(tmp_path / "imported.zarr"), SimpleNamespace(
        topics=str(tmap), robot=None, source=None, instruction=None, task="reach"))
    assert "imported 1 episodes" in said, said
    with EpisodeStore.open(tmp_path / "imported.zarr") as store:
        rows, info = store.read_episode(0), store.episode_info(0)
        assert info.instruction == "reach the cube" and info.success is True
        assert rows["obs/state"].shape[1:] == (22,) and rows["obs/images/front"].shape[1:] == (16, 16, 3)
        if fmt == "both":  # the store's layout and about the same steps (two clocks sample one stream)
            assert set(rows) == set(stored) and abs(len(rows["action"]) - len(stored["action"])) <= 5
        # each row: a published joint state, its frame (same header stamp), and the command sent right
        # after it (by receive time: a machine loaded enough to deliver it late pairs the next one)
        k = np.round((rows["obs/state"][:, 0]) / 0.001).astype(int)
        np.testing.assert_array_equal(rows["obs/images/front"][:, 0, 0, 0], k % 250)
        assert np.all(np.diff(k) >= 1) and np.all(np.abs(rows["action"][:, 4] - k) <= 1)
        assert np.mean(rows["action"][:, 4] == k) >= 0.8, (rows["action"][:, 4], k)
