"""What ``robot-rl launch`` refuses before any node starts: an argument of the wrong kind or
not among a launch file's listed choices, a robot or task that does not exist, and a policy
artifact that is missing, damaged or trained for another robot."""

from __future__ import annotations

def check_arguments(path, arguments: dict[str, str]) -> None:
    """Refuse (one sentence) an argument whose value is not of its default's kind (a number, true/false,
    a list), and a ``policy:=`` that is not a readable policy artifact, before any node starts."""
    import yaml

    from robot_rl.config import ConfigError

    try:
        entries = yaml.safe_load(path.read_text()).get("launch", [])
    except (yaml.YAMLError, AttributeError, OSError):
        return  # load_launch_file refuses a damaged file with its own sentence
    defaults, declared, options = {}, {}, {}
    for entry in entries if isinstance(entries, list) else []:
        arg = entry.get("arg") if isinstance(entry, dict) else None
        if isinstance(arg, dict) and "name" in arg:
            declared[str(arg["name"])] = arg.get("default")
            options[str(arg["name"])] = _listed_choices(arg)
            if arg.get("default") not in (None, ""):
                defaults[str(arg["name"])] = str(arg["default"])
    for name, value in arguments.items():
        if not value.strip() and declared.get(name) != "":
            raise ConfigError(f"argument {name}:= has no value; expected {name}:=<value>"
                              f"{'' if declared.get(name) is None else f' (default {declared[name]})'}.")
        if name in defaults:
            expected = _kind_mismatch(defaults[name], value)
            if expected:
                raise ConfigError(f"argument {name}:={value} is not valid; expected {expected} "
                                  f"(default {defaults[name]}).")
        _check_choice(name, value)
        if options.get(name) and value not in options[name]:
            raise ConfigError(f"argument {name}:={value} is not valid; expected one of: {', '.join(options[name])}.")
    if arguments.get("policy"):
        _check_policy(arguments["policy"])
        _check_policy_robot(arguments["policy"], arguments.get("robot", defaults.get("robot")))


def _listed_choices(arg: dict) -> list[str]:
    """The choices a launch argument's description lists as ``a | b | c`` (its default among them), else []."""
    import re

    text = re.sub(r"\([^)]*\)", "", str(arg.get("description", ""))).strip()
    names = [t.strip() for t in text.split("|")]
    if len(names) < 2 or not all(re.fullmatch(r"[\w.:-]+", n) for n in names) or str(arg.get("default")) not in names:
        return []
    return names


def _check_choice(name: str, value: str) -> None:
    """An argument named after a config group (robot, task) must name one of its files."""
    from robot_rl.config import ConfigError, choices, group_dir

    if group_dir(name) and value not in choices(name):
        raise ConfigError(f"argument {name}:={value} is not valid; expected one of: {', '.join(choices(name))}.")


def _check_policy_robot(directory: str, robot: str | None) -> None:
    """The node refuses a policy trained for another robot; say so before any node starts."""
    from pathlib import Path

    from robot_rl.config import ConfigError
    from robot_rl.policy.spec import PolicySpec

    trained = PolicySpec.load(Path(directory)).robot
    if robot and trained != robot:
        raise ConfigError(f"policy:={directory} was trained for robot {trained!r}, but robot:={robot}; expected "
                          f"robot:={trained}, or a policy trained for {robot}.")


def _typed(text: str):
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _kind_mismatch(default: str, value: str) -> str:
    """What kind ``value`` should be (empty when it is of ``default``'s kind and range): a number
    whose default is positive must be positive, one whose default is >= 0 must be >= 0, and a
    list must have its default's length."""
    import math

    want, got = _typed(default), _typed(value)
    if isinstance(want, bool):
        return "" if isinstance(got, bool) else "true or false"
    if isinstance(want, (int, float)):
        if isinstance(got, bool) or not isinstance(got, (int, float)) or not math.isfinite(got):
            return "a number"
        if want > 0 and got <= 0:
            return "a number > 0"
        return "a number >= 0" if want >= 0 and got < 0 else ""
    if isinstance(want, list):
        numbers = all(isinstance(w, (int, float)) and not isinstance(w, bool) for w in want)
        # An empty default (cameras: []) takes a list of any length; a box (workspace) keeps its length.
        ok = isinstance(got, list) and (not want or len(got) == len(want)) and (not numbers or not want or all(
            isinstance(g, (int, float)) and not isinstance(g, bool) and math.isfinite(g) for g in got))
        return "" if ok else f"a list of {len(want)} {'numbers' if numbers else 'items'} such as {default}"
    return ""


def _check_policy(directory: str) -> None:
    """The node would load this artifact; refuse a missing or damaged one here, in one sentence."""
    from pathlib import Path

    from robot_rl.config import ConfigError
    from robot_rl.policy.runtime import check_artifact

    path = Path(directory)
    if not path.is_dir():
        what = "does not exist" if not path.exists() else "is a file"
        raise ConfigError(f"policy:={directory} {what}; expected a policy artifact directory (policy.yaml + "
                          "policy.onnx / policy.pt).")
    check_artifact(path)  # opens the graph: a damaged file or one that disagrees with policy.yaml is refused


def show_args(path) -> int:
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
