"""evaluate_over_ros: the sim bridge and the policy node as launched processes, judged over real DDS."""

from __future__ import annotations

import math
import os
import time

import pytest

from hardware.ros.closed_loop import RosEvalConfig, RosEvalError, evaluate_over_ros


def test_a_competent_policy_succeeds_over_ros_and_its_latency_is_measured(reach_policy, tmp_path):
    log_path = tmp_path / "ros.log"
    seen, domain_before = [], os.environ.get("ROS_DOMAIN_ID")
    # Three episodes: the distilled policy reaches most targets, but on a busy machine not every one.
    result = evaluate_over_ros(RosEvalConfig(str(reach_policy), episodes=3, seed=500, episode_timeout_s=8.0),
                               log_path=log_path, on_episode=lambda i, success: seen.append((i, success)))

    output = log_path.read_text()
    assert result["success_rate"] > 0, output
    assert result["episodes"] == 3 and [i for i, _ in seen] == [0, 1, 2]
    assert [s for _, s in seen] == result["successes"]
    for success, time_s in zip(result["successes"], result["time_to_success_s"]):
        assert (time_s is not None) == success and (time_s is None or 0 < time_s <= 8.0)
    for name in ("latency_ms", "e2e_ms", "compute_ms", "infer_ms"):
        assert result[name] and all(math.isfinite(v) and v > 0 for v in result[name]), name
    assert 0 < result["latency_ms_p50"] <= result["latency_ms_p99"] and 0 < result["e2e_ms_p50"]
    assert result["backend"] in ("onnxruntime-cpu", "torch-cpu") and result["ticks"] > 0
    assert result["control_rate_hz"] == 20.0 and 1 <= result["domain_id"] <= 100
    assert os.environ.get("ROS_DOMAIN_ID") == domain_before  # the private domain was only for the children
    # The launched processes were stopped, cleanly, before it returned.
    last = output.strip().splitlines()[-1]
    assert "all nodes stopped" in last and "policy (0)" in last and "sim_bridge (0)" in last, output


def test_a_policy_the_node_cannot_load_fails_fast_with_the_reason(tmp_path):
    missing, log_path = tmp_path / "no_such_policy", tmp_path / "ros.log"
    started = time.monotonic()
    with pytest.raises(RosEvalError) as caught:
        evaluate_over_ros(RosEvalConfig(str(missing), episodes=1, start_timeout_s=60.0), log_path=log_path)
    message = str(caught.value)
    # The policy node's own sentence, from the quoted launch output, and where the rest is.
    assert "node 'policy' exited with code 2" in message and "has no policy.yaml" in message, message
    assert str(log_path) in message
    assert time.monotonic() - started < 45.0
    assert "all nodes stopped" in log_path.read_text().strip().splitlines()[-1]


def test_the_bridge_runs_the_randomisation_asked_for():
    """eval ros=true randomize=NAME: the launched bridge runs that preset (it used to run none,
    whatever was asked)."""
    from pathlib import Path

    from hardware.ros.closed_loop import _launch_arguments
    from hardware.ros.launch_file import load_launch_file, resolve_launch_file

    config = RosEvalConfig("policy", randomize="hard_dynamics", cameras=("front",), image_size=32)
    description = load_launch_file(resolve_launch_file("deploy_sim.launch.yaml"), _launch_arguments(config, Path("l")))
    bridge = next(p for p in description.processes if p.name == "sim_bridge")
    assert bridge.parameters["randomize"] == "hard_dynamics"
    plain = load_launch_file(resolve_launch_file("deploy_sim.launch.yaml"), {"policy": "policy"})
    assert next(p for p in plain.processes if p.name == "sim_bridge").parameters["randomize"] == "none"
