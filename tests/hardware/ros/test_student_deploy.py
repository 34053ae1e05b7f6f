"""A student through the launch files: deploy_sim runs it on camera topics over DDS with each
episode's instruction, as a real arm's drivers would feed it; deploy_robot refuses a policy that
reads sim-only state, in one sentence and a non-zero exit."""

from __future__ import annotations

import numpy as np
from conftest import LaunchProcess, export_bc_policy, wait_for
from rclpy.parameter import Parameter

from hardware.ros.closed_loop import RosEvalConfig, evaluate_over_ros
from hardware.ros.policy_node import PolicyNode

NOT_DEPLOYABLE = "is not deployable: it reads obs/object, which only the simulator knows"


def _object_policy(out):
    rng = np.random.default_rng(0)
    obs = {"obs/state": rng.standard_normal((64, 22)).astype(np.float32),
           "obs/object": rng.standard_normal((64, 19)).astype(np.float32)}
    return export_bc_policy(out, obs, rng.uniform(-1, 1, (64, 5)).astype(np.float32), "ee_delta")


def test_deploy_robot_refuses_a_policy_that_is_not_deployable(ros, tmp_path):
    policy = _object_policy(tmp_path / "policy")
    launch = LaunchProcess(["launch/deploy_robot.launch.yaml", f"policy:={policy}", "robot:=panda"], ros.env())
    code = launch.wait(timeout_s=120)
    assert code != 0, launch.output
    said = [line for line in launch.lines if "[policy] error:" in line]  # the node also logs it
    assert len(said) == 1 and NOT_DEPLOYABLE in said[0], launch.output
    assert "Traceback" not in launch.output, launch.output


def test_require_deployable_accepts_a_student_and_refuses_state_policies(ros, student_policy, tmp_path):
    said = "pick up the red cube"  # deploy_robot's instruction:=, until one arrives on /instruction
    for path, refused in ((student_policy, False), (_object_policy(tmp_path / "object"), True)):
        node = PolicyNode(context=ros.context, parameter_overrides=[
            Parameter("policy_path", value=str(path)), Parameter("require_deployable", value=True),
            Parameter("instruction", value=said)])
        node.trigger_configure()
        assert (NOT_DEPLOYABLE in node.configure_error) == refused, node.configure_error
        if not refused:
            assert node.configure_error == ""
            wait_for(lambda: node.cache.instruction.text == said, what="the instruction parameter's embedding")
        node.close()
        node.destroy_node()


def test_a_student_runs_over_dds_on_the_bridge_cameras_and_the_episode_instruction(student_policy, tmp_path):
    import sim

    log_path = tmp_path / "ros.log"
    result = evaluate_over_ros(RosEvalConfig(str(student_policy), episodes=2, seed=500, episode_timeout_s=2.0),
                               log_path=log_path)
    output = log_path.read_text()
    assert result["cameras"] == ["front", "wrist"] and result["image_size"] == 48  # the policy's own, unasked
    # Inference ran on observations with images and the instruction, and its commands reached the bridge.
    assert result["ticks"] > 0 and result["infer_ms"] and result["latency_ms"], output
    assert result["e2e_ms"], output
    env = sim.load("reach", "panda", cameras=())
    env.reset(seed=501)  # the second episode's
    assert result["instruction"] == env.unwrapped.instruction, output
    env.close()
