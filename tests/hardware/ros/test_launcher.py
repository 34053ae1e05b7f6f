"""The YAML launcher: argument handling, one process per node, and shutdown when a node dies."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

from robot_rl.config import compose
from conftest import LaunchProcess, process_gone, wait_for

from hardware.ros.launch_file import LaunchError, load_launch_file
from hardware.ros.launcher import command_line
from robot_rl.cli.main import main


def make_video(path: Path, frames: int = 10, size: int = 48) -> Path:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (size, size))
    for i in range(frames):
        frame = np.zeros((size, size, 3), np.uint8)
        frame[..., 2] = 200  # red in BGR
        frame[: i + 1] = 255
        writer.write(frame)
    writer.release()
    return path


def test_arguments_substitutions_and_conditions(tmp_path):
    path = tmp_path / "demo.launch.yaml"
    path.write_text("""
launch:
  - arg: {name: rate, default: "15"}
  - arg: {name: cams, default: "[front, wrist]"}
  - arg: {name: extra, default: "false"}
  - let: {name: topic, value: "/$(var rate)/x"}
  - node:
      pkg: robot_rl
      exec: camera_node
      name: cam
      namespace: robot
      param:
        - {name: rate_hz, value: $(var rate)}
        - {name: cameras, value: $(var cams)}
        - {name: home, value: $(env HOME)}
        - {name: literal, value: 3}
      remap:
        - {from: front/image_raw, to: $(var topic)}
  - group:
      if: $(var extra)
      children:
        - executable: {cmd: "sleep 60", name: sleeper}
""")
    description = load_launch_file(path, {"rate": "30"})
    (node,) = description.processes
    assert node.parameters == {"rate_hz": 30, "cameras": ["front", "wrist"], "home": os.environ["HOME"], "literal": 3}
    assert node.remaps == [("front/image_raw", "/30/x")]
    argv = command_line(node, tmp_path)
    assert argv[1:3] == ["-m", "hardware.ros.camera_node"]
    assert "__node:=cam" in argv and "__ns:=/robot" in argv and "front/image_raw:=/30/x" in argv
    assert "rate_hz: 30" in (tmp_path / "cam.yaml").read_text()
    assert [p.name for p in load_launch_file(path, {"extra": "true"}).processes] == ["cam", "sleeper"]
    with pytest.raises(LaunchError, match="has no argument 'speed'"):
        load_launch_file(path, {"speed": "1"})
    with pytest.raises(LaunchError, match="not true or false"):
        load_launch_file(path, {"extra": "maybe"})


def test_shipped_launch_files_parse(tmp_path):
    launch_dir = Path(__file__).resolve().parents[3] / "launch"
    sim = load_launch_file(launch_dir / "deploy_sim.launch.yaml", {"policy": "p"})
    assert [p.executable for p in sim.processes] == ["sim_bridge", "policy_node"]
    robot = load_launch_file(launch_dir / "deploy_robot.launch.yaml", {"policy": "p", "camera": "true"})
    assert robot.processes[0].parameters["robot"] == "fr3" and robot.processes[0].parameters["autostart"] is False
    assert robot.processes[1].executable == "camera_node"
    record = load_launch_file(launch_dir / "teleop_record.launch.yaml", {"sim": "true", "out": "x.zarr"})
    assert [p.name for p in record.processes] == ["sim_bridge", "teleop", "recorder"]
    assert not (launch_dir / "__init__.py").exists()  # a data folder, never a package
    bridge = load_launch_file(launch_dir / "sim_robot.launch.yaml", {"task": "lift"})
    assert [p.executable for p in bridge.processes] == ["sim_bridge"] and bridge.processes[0].parameters["task"] == "lift"
    learn = load_launch_file(launch_dir / "learn_robot.launch.yaml",
                             {"reward_model": "runs/rm", "instruction": "touch the red cube, please"})
    camera, learner = learn.processes
    assert camera.executable == "camera_node" and learner.cmd[:2] == ["robot-rl", "train"]
    cfg = compose(learner.cmd[2:], "train")  # the learner's command line is a valid train config
    assert cfg.env.backend == "ros" and cfg.ros.instruction == "touch the red cube, please"
    assert cfg.ros.reset_mode == "operator" and cfg.ros.safety.max_joint_step_rad == 0.05


def test_cli_refuses_missing_and_unknown_arguments_in_one_sentence(capsys, joint_policy):
    assert main(["launch", "deploy_sim.launch.yaml"]) == 2
    assert "needs argument policy:=<value>" in capsys.readouterr().err
    assert main(["launch", "deploy_sim.launch.yaml", f"policy:={joint_policy}", "polcy:=q"]) == 2
    assert "has no argument 'polcy'" in capsys.readouterr().err
    assert main(["launch", "deploy_sim.launch.yaml", "policy=p"]) == 2
    assert "not name:=value" in capsys.readouterr().err
    assert main(["launch", "nope.launch.yaml"]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["launch", "deploy_sim.launch.yaml", "--show-args"]) == 0
    assert "policy  (required)" in capsys.readouterr().out


def test_a_dying_node_is_reported_and_the_rest_shut_down(ros, tmp_path):
    video = make_video(tmp_path / "clip.avi")
    path = tmp_path / "two_cameras.launch.yaml"
    path.write_text(f"""
launch:
  - node: {{pkg: robot_rl, exec: camera_node, name: cam_a, param: [{{name: device, value: "{video}"}}]}}
  - node: {{pkg: robot_rl, exec: camera_node, name: cam_b, param: [{{name: device, value: "{video}"}}]}}
""")
    launch = LaunchProcess([str(path)], ros.env())
    try:
        wait_for(lambda: sum("camera 'front' from" in line for line in launch.lines) == 2, what="both cameras up")
        pids = launch.pids()
        os.kill(pids["cam_a"], signal.SIGKILL)
        code = launch.wait()
    finally:
        launch.stop()
    assert code == 1, launch.output
    assert "node 'cam_a'" in launch.output and "died with exit code -9 (SIGKILL)" in launch.output
    assert "shutting down the other nodes" in launch.output
    assert process_gone(pids["cam_b"])


def test_a_policy_for_another_robot_is_refused_before_any_node_starts(capsys, joint_policy):
    from robot_rl.cli.main import main

    code = main(["launch", "launch/deploy_robot.launch.yaml", f"policy:={joint_policy}", "robot:=jaco"])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert "trained for robot 'panda'" in err and "robot:=jaco" in err


def test_a_policy_for_another_robot_stops_the_launch_with_the_reason(ros, joint_policy, tmp_path):
    """The node refuses too, for a launch file that names the policy itself (which the CLI's own
    argument check cannot see): the launcher reports the node's reason and stops."""
    path = tmp_path / "fixed.launch.yaml"
    path.write_text(f"""
launch:
  - node: {{pkg: robot_rl, exec: policy_node, name: policy,
           param: [{{name: policy_path, value: "{joint_policy}"}}, {{name: robot, value: jaco}}]}}
""")
    launch = LaunchProcess([str(path)], ros.env())
    code = launch.wait(timeout_s=180)
    assert code == 1, launch.output
    assert "the policy was trained for robot 'panda', not 'jaco'" in launch.output
    assert "node 'policy'" in launch.output and "exit code 2" in launch.output
