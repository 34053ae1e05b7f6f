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
    from robot_rl.config import ConfigError, one_line
    from robot_rl.policy.spec import ContractError

    try:
        if show:
            return _show_args(resolve_launch_file(path))
        check_arguments(resolve_launch_file(path), arguments)
        return launch(path, arguments)
    except (LaunchError, ConfigError, ContractError) as error:
        print(f"robot-rl launch: {one_line(error)}", file=sys.stderr)
        return 2


def check_arguments(path, arguments: dict[str, str]) -> None:
    """Refuse (one sentence) an argument whose value is not of its default's kind (a number, true/false,
    a list), and a ``policy:=`` that is not a readable policy artifact, before any node starts."""
    import yaml

    from robot_rl.config import ConfigError

    try:
        entries = yaml.safe_load(path.read_text()).get("launch", [])
    except (yaml.YAMLError, AttributeError, OSError):
        return  # load_launch_file refuses a damaged file with its own sentence
    defaults = {}
    for entry in entries if isinstance(entries, list) else []:
        arg = entry.get("arg") if isinstance(entry, dict) else None
        if isinstance(arg, dict) and "name" in arg and arg.get("default") not in (None, ""):
            defaults[str(arg["name"])] = str(arg["default"])
    for name, value in arguments.items():
        if name in defaults:
            expected = _kind_mismatch(defaults[name], value)
            if expected:
                raise ConfigError(f"argument {name}:={value} is not valid; expected {expected} "
                                  f"(default {defaults[name]}).")
    if arguments.get("policy"):
        _check_policy(arguments["policy"])


def _typed(text: str):
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _kind_mismatch(default: str, value: str) -> str:
    """What kind ``value`` should be (empty when it is of ``default``'s kind)."""
    want, got = _typed(default), _typed(value)
    if isinstance(want, bool):
        return "" if isinstance(got, bool) else "true or false"
    if isinstance(want, (int, float)):
        return "" if isinstance(got, (int, float)) and not isinstance(got, bool) else "a number"
    if isinstance(want, list):
        return "" if isinstance(got, list) else "a list such as [a, b]"
    return ""


def _check_policy(directory: str) -> None:
    """The node would load this artifact; refuse a missing or damaged one here, in one sentence."""
    from pathlib import Path

    from robot_rl.config import ConfigError
    from robot_rl.policy.runtime import check_graph_file
    from robot_rl.policy.spec import PolicySpec

    path = Path(directory)
    if not path.is_dir():
        what = "does not exist" if not path.exists() else "is a file"
        raise ConfigError(f"policy:={directory} {what}; expected a policy artifact directory (policy.yaml + "
                          "policy.onnx / policy.pt).")
    spec = PolicySpec.load(path)
    for kind, name in spec.files.items():
        check_graph_file(path / name, "ONNX" if kind == "onnx" else "TorchScript")
    from robot_rl.policy import load_policy

    load_policy(path)  # opens the graph: a damaged file or one that disagrees with policy.yaml is refused


def _show_args(path) -> int:
    import yaml

    from robot_rl.config import ConfigError

    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise ConfigError(f"{path} is not valid YAML: {str(error).splitlines()[0]}") from None
    entries = data.get("launch", []) if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ConfigError(f"{path} is not a ROS 2 YAML launch file: it needs a top-level 'launch:' list.")
    print(f"Arguments (pass as name:=value) for {path}:")
    for entry in entries:
        arg = entry.get("arg") if isinstance(entry, dict) else None
        if arg:
            default = "required" if arg.get("default") is None else f"default: {arg['default']!r}"
            print(f"  {arg['name']}  ({default})  {arg.get('description', '')}")
    return 0
