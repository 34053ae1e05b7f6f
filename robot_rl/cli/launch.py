"""``robot-rl launch``: run a ROS 2 YAML launch file, one process per node, on a pip install.

  robot-rl launch launch/deploy_sim.launch.yaml policy:=runs/.../policy
  robot-rl launch deploy_robot.launch.yaml policy:=runs/.../policy robot:=fr3
  robot-rl launch teleop_record.launch.yaml device:=spacemouse out:=data/real.zarr
  robot-rl launch deploy_sim.launch.yaml --show-args

FILE is a path, or the name of a launch file shipped with robot_rl. Arguments are
``name:=value``: the one verb outside robot-rl's key=value style (robot_rl.cli.args), since
these are a ROS 2 launch file's arguments, spelled as ``ros2 launch`` spells them. Ctrl-C stops
every node; if any node dies the launcher says which and stops the rest (exit 1). The same files run under ``ros2 launch robot_rl <file>`` on a full ROS 2
install.
"""

from __future__ import annotations

import sys


def run(argv: list[str]) -> int:
    if not argv:
        print("robot-rl launch: which launch file? expected FILE [name:=value ...], e.g. "
              "robot-rl launch deploy_sim.launch.yaml policy:=runs/.../policy (see robot-rl launch --help).",
              file=sys.stderr)
        return 2
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    from hardware.ros.launch_file import LaunchError, resolve_launch_file
    from hardware.ros.launcher import launch
    from robot_rl.cli.checks.launch import check_arguments, show_args

    path, rest = argv[0], argv[1:]
    show = "--show-args" in rest
    arguments = {}
    for token in (t for t in rest if t != "--show-args"):
        name, sep, value = token.partition(":=")
        if not sep or not name:
            print(f"robot-rl launch: argument {token!r} is not name:=value.", file=sys.stderr)
            return 2
        arguments[name] = value
    from robot_rl.config import ConfigError, one_line
    from robot_rl.policy.spec import ContractError

    try:
        if show:
            return show_args(resolve_launch_file(path))
        check_arguments(resolve_launch_file(path), arguments)
        return launch(path, arguments)
    except (LaunchError, ConfigError, ContractError) as error:
        print(f"robot-rl launch: {one_line(error)}", file=sys.stderr)
        return 2
