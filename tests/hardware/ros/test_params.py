"""A node parameter of the wrong kind is one sentence naming it, for every node, in process and
as a launched process (rcl refusing the --ros-args rule itself included)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from rclpy.parameter import Parameter

from hardware.ros.policy_node import PolicyNode
from hardware.ros.recorder_node import RecorderNode
from hardware.ros.sim_bridge_node import SimBridgeNode
from hardware.ros.teleop_node import TeleopNode

BAD = [  # node, parameter, wrong value, expected kind in the sentence
    (PolicyNode, "max_joint_step_rad", "abc", "a number"),
    (PolicyNode, "autostart", 1, "true or false"),
    (PolicyNode, "workspace_low_m", ["0.2", "x", "0.0"], "a number"),
    (TeleopNode, "control_rate_hz", "fast", "a number"),
    (SimBridgeNode, "seed", "abc", "an integer"),
    (SimBridgeNode, "cameras", 5, "a list"),
    (RecorderNode, "image_size", 1.5, "an integer"),
]


@pytest.mark.parametrize("make, name, value, expected", BAD, ids=[f"{m.__name__}-{n}" for m, n, _, _ in BAD])
def test_a_parameter_of_the_wrong_kind_is_named(ros, tmp_path, make, name, value, expected):
    params = [Parameter(name, value=value), Parameter("policy_path", value=str(tmp_path)),
              Parameter("device", value="topic"), Parameter("out", value=str(tmp_path / "r.zarr"))]
    known = {f for f in ("policy_path", "device", "out")}
    with pytest.raises(ValueError) as caught:
        make(context=ros.context, parameter_overrides=[p for p in params if p.name == name or p.name in known],
             allow_undeclared_parameters=True)
    message = str(caught.value)
    assert f"parameter {name}:=" in message and expected in message and "\n" not in message


def test_integers_are_accepted_where_numbers_are_expected(ros):
    node = TeleopNode(context=ros.context, parameter_overrides=[Parameter("device", value="topic"),
                                                                 Parameter("control_rate_hz", value=25),
                                                                 Parameter("workspace_low_m", value=[0, -1, 0])])
    try:
        assert node.config.control_rate_hz == 25.0 and isinstance(node.config.control_rate_hz, float)
        assert node.config.workspace_low_m == (0.0, -1.0, 0.0)
    finally:
        node.close()
        node.destroy_node()


@pytest.mark.parametrize("args", [["-p", "seed:=abc"], ["-p", "cameras:=[front,3]"]], ids=["kind", "rcl-parse"])
def test_a_launched_node_says_one_line_and_exits_2(args, tmp_path):
    env = {**os.environ, "ROBOT_RL_STATE_DIR": str(tmp_path), "ROS_DOMAIN_ID": "91"}
    done = subprocess.run([sys.executable, "-m", "hardware.ros.sim_bridge_node", "--ros-args", *args], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "[sim_bridge] error:" in done.stderr and ("seed" in done.stderr or "cameras" in done.stderr)
