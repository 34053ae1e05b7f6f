"""``robot-rl launch``: run a ROS 2 YAML launch file, one process per node, on a pip install.

  robot-rl launch launch/deploy_sim.launch.yaml policy:=runs/.../policy
  robot-rl launch deploy_robot.launch.yaml policy:=runs/.../policy robot:=fr3
  robot-rl launch teleop_record.launch.yaml device:=spacemouse out:=data/real.zarr
  robot-rl launch deploy_sim.launch.yaml --show-args

FILE is a path, or the name of a launch file shipped with robot_rl. Arguments are
``name:=value``. Ctrl-C stops every node; if any node dies the launcher says which and stops
the rest (exit 1). The same files run under ``ros2 launch robot_rl <file>`` on a full ROS 2
install.
"""

from __future__ import annotations

import sys


def run(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    from hardware.ros.launch_file import LaunchError, resolve_launch_file
    from hardware.ros.launcher import launch

    path, rest = argv[0], argv[1:]
    show = "--show-args" in rest
    arguments = {}
    for token in (t for t in rest if t != "--show-args"):
        name, sep, value = token.partition(":=")
        if not sep or not name:
            print(f"robot-rl launch: argument {token!r} is not name:=value.", file=sys.stderr)
            return 2
        arguments[name] = value
    try:
        if show:
            return _show_args(resolve_launch_file(path))
        return launch(path, arguments)
    except LaunchError as error:
        print(f"robot-rl launch: {error}", file=sys.stderr)
        return 2


def _show_args(path) -> int:
    import yaml

    entries = yaml.safe_load(path.read_text()).get("launch", [])
    print(f"Arguments (pass as name:=value) for {path}:")
    for entry in entries:
        arg = entry.get("arg") if isinstance(entry, dict) else None
        if arg:
            default = "required" if arg.get("default") is None else f"default: {arg['default']!r}"
            print(f"  {arg['name']}  ({default})  {arg.get('description', '')}")
    return 0
