"""Teleop against the sim bridge, recorded by the recorder node into the Zarr episode store.

A test node stands in for a ROS joystick driver (geometry_msgs/Twist); the teleop node turns
it into joint commands for the sim bridge, and the recorder keeps the episode in the same
layout as `robot-rl record` writes.
"""

from __future__ import annotations

import numpy as np
from conftest import wait_for
from geometry_msgs.msg import Twist
from rclpy.node import Node
from rclpy.parameter import Parameter
from std_srvs.srv import SetBool, Trigger

from hardware.ros.recorder_node import RecorderNode
from hardware.ros.sim_bridge_node import SimBridgeNode
from hardware.ros.teleop_node import TeleopNode
from robot_rl.data.store import EpisodeStore


def _call(node, service_type, name: str, request):
    client = node.create_client(service_type, name)
    assert client.wait_for_service(timeout_sec=60), name
    future = client.call_async(request)
    wait_for(future.done, what=f"{name} to answer")
    node.destroy_client(client)
    return future.result()


def test_teleop_episode_lands_in_the_zarr_store(ros, tmp_path):
    out = tmp_path / "teleop.zarr"
    bridge = ros.add(SimBridgeNode(context=ros.context, parameter_overrides=[
        Parameter("cameras", value=["front"]), Parameter("image_size", value=32), Parameter("seed", value=3)]))
    teleop = ros.add(TeleopNode(context=ros.context, parameter_overrides=[Parameter("device", value="topic")]))
    recorder = ros.add(RecorderNode(context=ros.context, parameter_overrides=[
        Parameter("out", value=str(out)), Parameter("cameras", value=["front"]), Parameter("image_size", value=32),
        Parameter("object_dim", value=19), Parameter("source", value="teleop"), Parameter("task", value="reach")]))
    driver = ros.add(Node("joystick", context=ros.context))
    twist_pub = driver.create_publisher(Twist, "spacenav/twist", 10)
    twist = Twist()
    twist.linear.x = 0.2  # m/s: a quarter of the 0.04 m x 20 Hz full scale
    driver.create_timer(0.05, lambda: twist_pub.publish(twist))
    wait_for(lambda: teleop.safety.active, what="the teleop node to see joint states")
    wait_for(lambda: recorder._instruction, what="the sim's latched instruction at the recorder")
    start_x = bridge.env.scene.ee_pos()[0]

    assert _call(driver, Trigger, "/recorder/start", Trigger.Request()).success
    wait_for(lambda: recorder._steps >= 30, what="30 recorded steps")
    kept = _call(driver, SetBool, "/recorder/keep", SetBool.Request(data=True))
    assert kept.success and "kept episode 0" in kept.message
    assert bridge.env.scene.ee_pos()[0] > start_x + 0.05  # the arm followed the joystick

    assert _call(driver, Trigger, "/recorder/start", Trigger.Request()).success
    assert _call(driver, Trigger, "/recorder/discard", Trigger.Request()).success
    recorder.close()

    with EpisodeStore.open(out) as store:
        assert store.num_episodes == 1 and store.validate() == []
        info = store.episode_info(0)
        assert info.source == "teleop" and info.success is True and info.task == "reach"
        assert info.instruction == bridge.env.instruction
        episode = store.read_episode(0)
        assert set(episode) == {"obs/state", "obs/object", "obs/images/front", "action", "reward", "info/success",
                                "info/progress"}
        assert episode["obs/state"].shape[1:] == (22,) and episode["obs/images/front"].shape[1:] == (32, 32, 3)
        np.testing.assert_allclose(episode["action"][-5:], [[0.25, 0, 0, 0, -1]] * 5, atol=1e-6)
        ee_x = episode["obs/state"][:, 14]
        assert ee_x[-1] > ee_x[0] + 0.03 and np.all(np.diff(ee_x[5:]) > -1e-3)  # observed moving +x
        assert episode["obs/images/front"].std() > 5
