"""System identification on an arm over ROS 2: the teleop node's ``device:=excite`` plays the
chosen excitation motions through its safety filter on the sim bridge, standing in for an arm
with physics the method is not told; the recorder node keeps one whole episode per motion with
the joint targets the node sent (``info/command``); ``robot-rl sysid`` on that store recovers the
arm's gain and latency (and, in three runs of this setup, its mass and damping within 1% in two).
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import yaml
from conftest import wait_for
from rclpy.parameter import Parameter

from hardware.ros.recorder_node import RecorderNode
from hardware.ros.sim_bridge_node import SimBridgeNode
from hardware.ros.teleop_node import TeleopNode
from robot_rl.cli.main import main
from robot_rl.data.store import EpisodeStore

HIDDEN = {"link_mass_scale": 1.0, "damping_scale": 1.0, "gain_scale": 0.7, "action_latency_steps": 1}


# Slow: the fit over ROS 2 is sensitive to CPU load. Beside another test worker on the 2-core CI
# machine it recovered gain 0.87 and 0.50 (mass 0.75, damping 1.5) for the hidden 0.7 in two of four
# runs, while it recovers 0.69-0.70 on a quiet machine; an open problem, not a test to tune.
@pytest.mark.slow
def test_excite_plays_whole_motions_on_the_arm_and_sysid_recovers_its_physics(ros, tmp_path):
    hidden, out = tmp_path / "hidden.yaml", tmp_path / "excite.zarr"
    hidden.write_text(yaml.safe_dump({"calibration": HIDDEN}))
    bridge = ros.add(SimBridgeNode(context=ros.context, parameter_overrides=[Parameter("calibration", value=str(hidden))]))
    assert bridge.env.randomizer.calibration.gain_scale == HIDDEN["gain_scale"]  # the arm's own physics
    teleop = ros.add(TeleopNode(context=ros.context, parameter_overrides=[
        Parameter("device", value="excite"), Parameter("excite_motions", value=2), Parameter("excite_steps", value=20),
        Parameter("excite_settle_s", value=0.5), Parameter("excite_scale", value=0.5)]))
    recorder = ros.add(RecorderNode(context=ros.context, parameter_overrides=[
        Parameter("out", value=str(out)), Parameter("object_dim", value=19), Parameter("source", value="real"),
        Parameter("task", value="reach"), Parameter("command_interface", value="joint_trajectory")]))
    player = teleop.device
    wait_for(lambda: player.done, timeout_s=120, what="the excitation motions to play")
    recorder.close()

    with EpisodeStore.open(out) as store:
        assert store.num_episodes == 2 and store.validate() == []
        for index, (name, actions) in enumerate(player.motions):
            recorded = store.read_episode(index)["action"]
            # the recorder samples the commands on its own clock, so the motion may sit a step or two
            # in, and a step may be seen twice or missed; nearly every step of it, in order, is there
            matched = max(np.all(np.isclose(recorded[o:o + len(actions)], actions[:len(recorded) - o], atol=1e-6),
                                 axis=1).sum() for o in range(3))
            assert matched >= len(actions) - 3, (name, matched, len(recorded))
    assert player.played == [name for name, _ in player.motions]

    # the default search: cut to 40 Nelder-Mead evaluations over 3 starts it once settled in another
    # valley (gain 0.87, mass 1.07, damping 0.89 for the hidden 0.7, 1, 1)
    assert main(["sysid", f"data={out}", f"out={tmp_path / 'fit'}", "fit.max_latency_steps=2"]) == 0
    report = json.loads((tmp_path / "fit" / "report.json").read_text())
    assert report["episodes"] == 2 and report["robot"] == "panda" and report["replayed"].startswith("joint targets")
    found = report["calibration"]
    assert found["action_latency_steps"] == HIDDEN["action_latency_steps"], found
    assert abs(np.log(found["gain_scale"] / HIDDEN["gain_scale"])) < 0.15, found
    assert report["joint_rmse_rad"]["calibrated"] < report["joint_rmse_rad"]["nominal"] / 5


@pytest.mark.parametrize("name, value, expected", [
    ("excite_scale", 2.0, "0 < excite_scale <= 1"),
    ("excite_attempts", 0, "excite_attempts >= 1"),
    ("excite_prior", "/no/such/calibration.yaml", "is not a file"),
    ("excite_task", "nope", "unknown task 'nope'"),
])
def test_bad_excite_parameters_are_one_sentence(ros, name, value, expected):
    with pytest.raises(ValueError, match=re.escape(expected)) as error:
        TeleopNode(context=ros.context, parameter_overrides=[Parameter("device", value="excite"), Parameter(name, value=value)])
    assert len(str(error.value).splitlines()) == 1 and str(error.value).endswith(".")
