"""The sim bridge runs a preset's command latency and action noise on the commands it receives,
at the policy's rate, as the sim env runs them on its actions: not on its 100 Hz physics steps
on absolute joint targets, where ``hard``'s noise of 0.05 of an action was 0.13 rad of joint
target every 10 ms and shook the arm."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from conftest import wait_for
from rclpy.parameter import Parameter

from hardware.ros.conversions import joint_command
from hardware.ros.sim_bridge_node import SimBridgeNode


def _new_episode(bridge: SimBridgeNode) -> None:
    """What ~/reset does: the bridge's own loop resets between two physics steps."""
    done = threading.Event()
    bridge._reset_request = done
    assert done.wait(10.0)


def test_hard_dynamics_delays_and_perturbs_the_commands_not_the_physics_steps(ros):
    bridge = SimBridgeNode(context=ros.context, parameter_overrides=[
        Parameter("task", value="lift"), Parameter("randomize", value="hard_dynamics"), Parameter("seed", value=11),
        Parameter("command_interface", value="position_array")])
    try:
        names = bridge.joint_names
        for _ in range(30):  # an episode whose drawn latency is at least one command
            if bridge.env.randomizer.actuation()[0] >= 1:
                break
            _new_episode(bridge)
        latency, noise = bridge.env.randomizer.actuation()
        noise *= bridge.env.config.controller.max_joint_step_rad
        assert latency >= 1 and noise == pytest.approx(0.05 * 0.1)  # hard_dynamics: action_noise 0.05 of a 0.1 rad step
        wait_for(lambda: np.abs(bridge.env.scene.joint_vel()).max() < 0.5, what="the arm to settle")
        q0 = bridge.env.scene.joint_pos().copy()
        commands = [q0 + 0.002 * i for i in range(latency + 4)]
        for i, command in enumerate(commands):
            bridge._on_command(joint_command("position_array", names, command, 0.05))
            # executed: the command ``latency`` commands ago, with its noise
            np.testing.assert_allclose(bridge._target_q, commands[max(0, i - latency)], atol=5 * noise)

        speeds = []  # told to stay where it is, at the policy's 20 Hz, the arm stays
        for _ in range(40):
            bridge._on_command(joint_command("position_array", names, q0, 0.05))
            time.sleep(0.05)
            speeds.append(float(np.abs(bridge.env.scene.joint_vel()).mean()))
        assert np.mean(speeds[10:]) < 0.1, speeds
    finally:
        bridge.close()
        bridge.destroy_node()
