"""The policy node acts on each joint state as it arrives (``tick_on_joint_state``, the default):
at its tick time it waits, up to half a period, for the next joint state and acts on it, so a
command follows its observation by the inference time rather than by what is left of the period
(the node latency, issue 12). Real rclpy nodes over loopback DDS, a stand-in arm."""

from __future__ import annotations

import time

import numpy as np
from conftest import configured_policy_node, wait_for
from rclpy.node import Node
from test_policy_node_faults import StandInArm, _activate


def test_the_cache_wakes_on_a_new_joint_state_and_gives_up_after_its_timeout(ros, joint_policy):
    arm = ros.add(StandInArm(ros.context))  # 100 Hz joint states
    policy = configured_policy_node(ros, joint_policy, control_rate_hz=20.0, obs_timeout_s=0.3)
    cache = policy.cache
    wait_for(lambda: cache.problem() == "", what="joint states")
    before = cache.joint_arrival_s()
    start = time.monotonic()
    arrival = cache.wait_for_joint_state(before, 2.0)
    assert arrival > before and time.monotonic() - start < 1.0  # the next one, about 10 ms later

    arm.mode = "silent"
    time.sleep(0.1)
    last = cache.joint_arrival_s()
    start = time.monotonic()
    assert cache.wait_for_joint_state(last, 0.2) == last  # none came: the old arrival, after the timeout
    assert 0.18 < time.monotonic() - start < 1.0


def test_each_command_follows_its_joint_state_by_the_compute_time(ros, joint_policy):
    """A 100 Hz arm and a 20 Hz node: every tick acts on a joint state that arrived after it woke,
    within a few milliseconds; the fixed-rate tick without the wait acts on one up to 10 ms old."""
    arm = ros.add(StandInArm(ros.context))
    policy = configured_policy_node(ros, joint_policy, control_rate_hz=20.0, obs_timeout_s=0.3)
    client = ros.add(Node("client", context=ros.context))
    wait_for(lambda: policy.cache.problem() == "", what="joint states")
    assert _activate(client)
    wait_for(lambda: len(arm.commands) > 40, what="two seconds of commands")
    latency_ms = 1e3 * policy.account.stats["latency"].values()
    assert policy.config.tick_on_joint_state and len(latency_ms) > 30
    assert np.median(latency_ms) < 4.0, np.percentile(latency_ms, [50, 90, 99])


def test_the_node_process_runs_on_the_events_executor(ros, joint_policy, tmp_path):
    """``executor:=events`` (rclpy's C++ EventsExecutor): the deployed node process starts,
    activates and commands the arm on it as on the default executor; an unknown executor is
    one sentence."""
    import subprocess
    import sys

    arm = ros.add(StandInArm(ros.context))
    argv = [sys.executable, "-m", "hardware.ros.policy_node", "--ros-args", "-p", f"policy_path:={joint_policy}",
            "-p", "autostart:=true", "-p", "ramp_in_s:=0.0", "-p", "obs_timeout_s:=0.3",
            "-p", f"estop_latch_file:={tmp_path / 'estop.latch'}"]
    node = subprocess.Popen([*argv, "-p", "executor:=events"], env=ros.env(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: len(arm.commands) > 20, timeout_s=60.0, what="commands from the node on the events executor")
    finally:
        node.terminate()
        node.wait(timeout=30)
    bad = subprocess.run([*argv, "-p", "executor:=threads"], env=ros.env(), capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "executor 'threads' is unknown" in bad.stdout + bad.stderr
    assert "Traceback" not in bad.stdout + bad.stderr
