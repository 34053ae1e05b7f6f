"""Closed loop: `robot-rl launch deploy_sim` runs the sim bridge and the policy node as separate
processes, and a BC policy exported in the artifact format drives the sim to task success,
through either command interface the ros2_control controllers accept."""

from __future__ import annotations

import time

import pytest
from conftest import LaunchProcess, Recorder, process_gone, wait_for
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from std_msgs.msg import Bool
from std_srvs.srv import Trigger

from hardware.ros.diagnostics import values_of

EPISODE_S = 30.0  # a reach episode takes ~2.5 s of sim time; generous for a loaded 2-core machine


def _wait_quietly(predicate, timeout_s: float):
    """Poll ``predicate`` until truthy or ``timeout_s`` passes; its last value (no failure)."""
    deadline = time.monotonic() + timeout_s
    while not (value := predicate()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return value


def _reset(client) -> None:
    """A new episode of the sim bridge (``/sim_bridge/reset``), checked."""
    future = client.call_async(Trigger.Request())
    wait_for(future.done, what="the sim bridge reset")
    assert future.result().success and "episode reset" in future.result().message


# Slow-marked, both interfaces: 10 to 67 s each on 2 cores (a missed episode costs a new one).
# The default suite's closed loop is tests/hardware/ros/test_closed_loop_eval.py (the same
# deploy_sim launch, policy node and bridge over DDS, resets between episodes, clean exits); the
# message types themselves are checked in the policy node tests.
@pytest.mark.slow
@pytest.mark.parametrize("interface", ["joint_trajectory", "position_array"])
def test_exported_policy_drives_the_sim_bridge_to_success(ros, reach_policy, interface):
    evaluator = ros.add(Node("evaluator", context=ros.context))
    success, diagnostics = Recorder(), Recorder()
    evaluator.create_subscription(Bool, "task/success", success, 10)
    evaluator.create_subscription(DiagnosticArray, "/diagnostics", diagnostics, 10)
    launch = LaunchProcess(["launch/deploy_sim.launch.yaml", f"policy:={reach_policy}", "seed:=500",
                            f"command_interface:={interface}"], ros.env())
    client = evaluator.create_client(Trigger, "/sim_bridge/reset")
    try:
        ticking = lambda: [values_of(m) for m in diagnostics.messages if float(values_of(m).get("ticks", 0)) > 0]  # noqa: E731
        values = wait_for(lambda: ticking() or launch.process.poll() is not None, timeout_s=180,
                          what="diagnostics from the active policy node")
        assert launch.process.poll() is None, launch.output
        values = ticking()[-1]
        assert values["state"] == "active" and values["backend"] in ("onnxruntime-cpu", "torch-cpu")
        assert float(values["latency_ms_p50"]) > 0 and float(values["infer_ms_p99"]) > 0
        assert client.wait_for_service(timeout_sec=60)
        # The policy (BC, 30 demos) solves most episodes, not all, and a real-time loop on a loaded
        # machine is not bit-reproducible: a failed episode gets a new one, three in all.
        solved = False
        for _ in range(3):
            started = time.monotonic()
            solved = bool(_wait_quietly(lambda: any(m.data for m in success.since(started)), EPISODE_S))
            if solved:
                break
            _reset(client)
        assert solved, "the exported policy solved none of 3 episodes through the sim bridge"
        _reset(client)  # a new episode: not solved yet
        pids = launch.pids()
    finally:
        code = launch.stop()
    assert code == 0, launch.output
    assert set(pids) == {"sim_bridge", "policy"}
    assert all(process_gone(pid) for pid in pids.values())
    assert "shutdown requested" in launch.output and "Traceback" not in launch.output, launch.output
    assert "policy (0)" in launch.output and "sim_bridge (0)" in launch.output, launch.output  # clean exits
