"""Closed loop: `robot-rl launch deploy_sim` runs the sim bridge and the policy node as separate
processes, and a BC policy exported in the artifact format drives the sim to task success,
through either command interface the ros2_control controllers accept."""

from __future__ import annotations

import pytest
from conftest import LaunchProcess, Recorder, process_gone, wait_for
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.node import Node
from std_msgs.msg import Bool
from std_srvs.srv import Trigger

from hardware.ros.diagnostics import values_of


@pytest.mark.parametrize("interface", ["joint_trajectory", "position_array"])
def test_exported_policy_drives_the_sim_bridge_to_success(ros, reach_policy, interface):
    evaluator = ros.add(Node("evaluator", context=ros.context))
    success, diagnostics = Recorder(), Recorder()
    evaluator.create_subscription(Bool, "task/success", success, 10)
    evaluator.create_subscription(DiagnosticArray, "/diagnostics", diagnostics, 10)
    launch = LaunchProcess(["launch/deploy_sim.launch.yaml", f"policy:={reach_policy}", "seed:=500",
                            f"command_interface:={interface}"], ros.env())
    try:
        wait_for(lambda: any(m.data for m in success.messages) or launch.process.poll() is not None, timeout_s=180,
                 what="task success on /task/success")
        assert launch.process.poll() is None, launch.output
        ticking = lambda: [values_of(m) for m in diagnostics.messages if float(values_of(m).get("ticks", 0)) > 0]  # noqa: E731
        values = wait_for(ticking, what="diagnostics from the active policy node")[-1]
        assert values["state"] == "active" and values["backend"] in ("onnxruntime-cpu", "torch-cpu")
        assert float(values["latency_ms_p50"]) > 0 and float(values["infer_ms_p99"]) > 0

        client = evaluator.create_client(Trigger, "/sim_bridge/reset")  # a new episode: not solved yet
        assert client.wait_for_service(timeout_sec=60)
        future = client.call_async(Trigger.Request())
        wait_for(future.done, what="the sim bridge reset")
        assert future.result().success and "episode reset" in future.result().message
        pids = launch.pids()
    finally:
        code = launch.stop()
    assert code == 0, launch.output
    assert set(pids) == {"sim_bridge", "policy"}
    assert all(process_gone(pid) for pid in pids.values())
    assert "shutdown requested" in launch.output and "Traceback" not in launch.output, launch.output
    assert "policy (0)" in launch.output and "sim_bridge (0)" in launch.output, launch.output  # clean exits
