"""usage: robot-rl eval run=PATH [key=value ...]

Run a policy for N episodes in the sim and write success rate, return and a video grid.

  robot-rl eval run=runs/2026-11-21/lift_sac_s0                      # its exported policy/
  robot-rl eval run=runs/2026-11-21/lift_sac_s0/policy randomize=hard episodes=50
  robot-rl eval run=runs/2026-11-21/lift_sac_s0 checkpoint=true       # latest training checkpoint
  robot-rl eval run=runs/2026-11-21/lift_sac_s0 ros=true episodes=10  # through ROS 2, as deployed

Options (key=value, composed by Hydra against robot_rl/conf/eval.yaml; any other key is refused):
  run=PATH          a run directory (uses PATH/policy), or a policy artifact directory
  checkpoint=true   evaluate the run's checkpoints/latest.safetensors instead of the exported artifact
  episodes=20       number of episodes (seeds seed, seed+1, ...)
  seed=100000       first episode seed
  randomize=NAME    randomisation preset (none | train | train_wide | hard | hard_dynamics | hard_lights |
                    hard_colours | hard_cameras); default: the training one (with ros=true: none; the bridge runs
                    the preset, out= default <run>/eval/ros-NAME)
  backend=auto      artifacts only, the same with or without ros=true: auto (the fastest that runs
                    here) | onnxruntime-tensorrt | onnxruntime-cuda | torch-cuda | onnxruntime-cpu |
                    torch-cpu; onnx and torch are aliases of onnxruntime-cpu and torch-cpu
  video=8           episodes tiled into the video grid (0: none)
  out=DIR           where results go (default <run>/eval/<randomize>, or <run>/eval/ros)
  ros=true          run the artifact in the ROS 2 policy node against the sim bridge node, each
                    its own process on a private DDS domain over loopback, and count successes
                    on /task/success; also records per-tick latency (results.json, nodes.log)
  task=NAME         the task to run: default the policy's own; for a multi-task student, one of
                    the tasks it was trained on
  instruction=TEXT  a language-conditioned student (its policy.yaml reads obs/instruction): this
                    text instead of each episode's own, e.g. instruction='go to the green block'
  calibration=FILE  robot-rl sysid's calibration.yaml: evaluate in that arm's measured physics
  episode_s=auto    ros=true: wall time per episode before it counts as failed
                    (auto: 1.5x the task's sim episode at the control rate, plus the policy
                    node's 1 s ramp-in; each episode resets the bridge, then activates the node)

The task, robot and env settings come from the artifact's config.yaml; the policy's contract
(robot, joint names, observation keys/shapes) is checked against the env before anything runs.
Writes results.json (success_rate, mean_return, per-episode returns/successes) and video.mp4.
"""

from __future__ import annotations

import json
import sys

from robot_rl.cli.args import parse, refuse_unknown
from robot_rl.cli.checks.eval import OPTIONS, check_options
from robot_rl.config import ConfigError, compose, one_line
from robot_rl.schema import as_bool


def run(argv: list[str]) -> int:
    try:
        args = parse(argv, "eval")
        if args.help:
            print(__doc__)
            return 0
        refuse_unknown(args.overrides, OPTIONS, "robot-rl eval")
        options = check_options(compose(args.overrides, config_name="eval"))
        from robot_rl.cli.compose.evaluation import evaluate_ros, evaluate_run

        result = evaluate_ros(options) if as_bool("ros", options["ros"]) else evaluate_run(options)
    except (ConfigError, ValueError, FileNotFoundError) as error:
        print(f"robot-rl eval: {one_line(error)}", file=sys.stderr)
        return 2
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, list)}, indent=2))
    return 0
