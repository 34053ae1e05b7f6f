"""The rosbag2 import's topic map: which topics hold the robot's state, cameras and commands,
how they are put on one control-rate clock, and where episodes begin and end.

A YAML file (docs/interop/topics.example.yaml, docs/interop/rosbag2.md)::

    robot: panda                  # robot model for obs/state (sim/conf/robot/<robot>.yaml); optional
    control_rate_hz: 20
    joint_states: {topic: /joint_states, joints: [...], gripper_joints: [...]}   # or just the topic
    state: robot                  # robot (the recorder's layout) | joints ([q, qd, q_gripper])
    cameras: {front: /front/image_raw, wrist: {topic: /wrist/image_raw/compressed}}
    image_size: 84                # or [height, width]; optional resize of every camera
    action: {topic: /teleop/action, space: ee_delta, gripper_topic: ...}   # or just the topic
    instruction: /task/instruction   # optional, std_msgs/String
    success: /task/success           # optional, std_msgs/Bool
    progress: /task/progress         # optional, std_msgs/Float32 (info/progress and the dense reward)
    object: /observations/object     # optional, std_msgs/Float32MultiArray (obs/object)
    sync: nearest                 # nearest | hold
    tolerance_s: 0.05
    stamps: bag                   # bag (recording time) | header (header stamps where a message has one)
    episodes: {by: bag}           # bag | gap (gap_s) | topic (topic: std_msgs/String events or std_msgs/Bool)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from robot_rl.data.format import StoreError

SYNC_MODES = ("nearest", "hold")
STAMPS = ("bag", "header")
EPISODES_BY = ("bag", "gap", "topic")
STATE_LAYOUTS = ("robot", "joints")
_KEYS = ("robot", "control_rate_hz", "joint_states", "state", "cameras", "image_size", "action", "instruction",
         "success", "progress", "object", "sync", "tolerance_s", "stamps", "episodes", "task")


@dataclass(frozen=True)
class TopicMap:
    joint_states: str
    action: str
    control_rate_hz: float
    robot: str = ""
    joints: tuple[str, ...] = ()
    gripper_joints: tuple[str, ...] | None = None  # None: the robot model's
    state: str = ""  # "" until resolved: robot when a robot model is named, else joints
    cameras: dict[str, str] = field(default_factory=dict)
    image_size: tuple[int, int] | None = None
    action_space: str = ""
    gripper_topic: str = ""
    instruction: str = ""
    success: str = ""
    progress: str = ""
    object: str = ""
    sync: str = "nearest"
    tolerance_s: float = 0.05
    stamps: str = "bag"
    episodes_by: str = "bag"
    episodes_topic: str = ""
    gap_s: float = 1.0
    task: str = ""

    @property
    def period_s(self) -> float:
        return 1.0 / self.control_rate_hz

    def topics(self) -> dict[str, str]:
        """{role: topic} of every topic this map reads."""
        roles = {"joint_states": self.joint_states, "action": self.action,
                 **{f"camera {name}": topic for name, topic in self.cameras.items()},
                 "gripper_topic": self.gripper_topic, "instruction": self.instruction, "success": self.success,
                 "progress": self.progress, "object": self.object,
                 "episodes topic": self.episodes_topic if self.episodes_by == "topic" else ""}
        return {role: topic for role, topic in roles.items() if topic}


def load_topic_map(spec: Any) -> TopicMap:
    """A TopicMap from a YAML file path (or an already parsed mapping); StoreError in one sentence."""
    if spec is None or spec == "":
        raise StoreError("the rosbag2 import needs topics=<topic map YAML> (see docs/interop/rosbag2.md).")
    where = "the topic map"
    if isinstance(spec, (str, Path)):
        import yaml

        path = Path(spec)
        if not path.is_file():
            raise StoreError(f"the topic map {path} does not exist.")
        try:
            spec = yaml.safe_load(path.read_text())
        except yaml.YAMLError as exc:
            raise StoreError(f"the topic map {path} is not valid YAML ({str(exc).splitlines()[0]}).") from None
        where = f"the topic map {path}"
    if not isinstance(spec, dict):
        raise StoreError(f"{where} must be a mapping of keys such as joint_states, cameras and action.")
    unknown = sorted(set(spec) - set(_KEYS))
    if unknown:
        raise StoreError(f"{where} has unknown keys {unknown}; known: {', '.join(_KEYS)}.")
    return _parse(spec, where)


def _parse(spec: dict, where: str) -> TopicMap:
    for key in ("joint_states", "action", "control_rate_hz"):
        if spec.get(key) in (None, ""):
            raise StoreError(f"{where} lacks {key}, which is required.")
    joints = _sub(spec["joint_states"], "joint_states", where, ("topic", "joints", "gripper_joints"))
    action = _sub(spec["action"], "action", where, ("topic", "space", "gripper_topic"))
    cameras = {}
    for name, value in (_mapping(spec.get("cameras") or {}, "cameras", where)).items():
        cameras[str(name)] = _sub(value, f"cameras.{name}", where, ("topic",))["topic"]
    episodes = _mapping(spec.get("episodes") or {"by": "bag"}, "episodes", where)
    bad = sorted(set(episodes) - {"by", "topic", "gap_s"})
    if bad:
        raise StoreError(f"{where}: episodes has unknown keys {bad}; known: by, topic, gap_s.")
    by = _choice(episodes.get("by", "bag"), EPISODES_BY, "episodes.by", where)
    if by == "topic" and not episodes.get("topic"):
        raise StoreError(f"{where}: episodes by topic needs episodes.topic (std_msgs/String events or std_msgs/Bool).")
    state = spec.get("state", "")
    if state:
        state = _choice(state, STATE_LAYOUTS, "state", where)
    return TopicMap(
        joint_states=_topic(joints["topic"], "joint_states.topic", where), action=_topic(action["topic"], "action.topic",
                                                                                       where),
        control_rate_hz=_positive(spec["control_rate_hz"], "control_rate_hz", where),
        robot=_text(spec.get("robot", ""), "robot", where), joints=_names(joints.get("joints"), "joints", where),
        gripper_joints=(None if joints.get("gripper_joints") is None
                        else _names(joints["gripper_joints"], "gripper_joints", where)),
        state=state, cameras={name: _topic(t, f"cameras.{name}", where) for name, t in cameras.items()},
        image_size=_size(spec.get("image_size"), where), action_space=_text(action.get("space", ""), "action.space",
                                                                             where),
        gripper_topic=_topic(action.get("gripper_topic", ""), "action.gripper_topic", where, optional=True),
        instruction=_topic(spec.get("instruction", ""), "instruction", where, optional=True),
        success=_topic(spec.get("success", ""), "success", where, optional=True),
        progress=_topic(spec.get("progress", ""), "progress", where, optional=True),
        object=_topic(spec.get("object", ""), "object", where, optional=True),
        sync=_choice(spec.get("sync", "nearest"), SYNC_MODES, "sync", where),
        tolerance_s=_positive(spec.get("tolerance_s", 0.05), "tolerance_s", where),
        stamps=_choice(spec.get("stamps", "bag"), STAMPS, "stamps", where),
        episodes_by=by, episodes_topic=_topic(episodes.get("topic", ""), "episodes.topic", where, optional=True),
        gap_s=_positive(episodes.get("gap_s", 1.0), "episodes.gap_s", where), task=_text(spec.get("task", ""), "task",
                                                                                          where))


def _mapping(value: Any, name: str, where: str) -> dict:
    if not isinstance(value, dict):
        raise StoreError(f"{where}: {name} must be a mapping, got {value!r}.")
    return value


def _sub(value: Any, name: str, where: str, keys: tuple[str, ...]) -> dict:
    """A topic given as text, or a mapping with ``topic`` and the other ``keys``."""
    if isinstance(value, str):
        return {"topic": value}
    value = _mapping(value, name, where)
    bad = sorted(set(value) - set(keys))
    if bad:
        raise StoreError(f"{where}: {name} has unknown keys {bad}; known: {', '.join(keys)}.")
    if not value.get("topic"):
        raise StoreError(f"{where}: {name} lacks its topic.")
    return value


def _topic(value: Any, name: str, where: str, optional: bool = False) -> str:
    if optional and value in (None, ""):
        return ""
    if not isinstance(value, str) or not value.strip():
        raise StoreError(f"{where}: {name} must be a topic name, got {value!r}.")
    value = value.strip()
    return value if value.startswith("/") else f"/{value}"


def _text(value: Any, name: str, where: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise StoreError(f"{where}: {name} must be text, got {value!r}.")
    return value


def _names(value: Any, name: str, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise StoreError(f"{where}: {name} must be a list of joint names, got {value!r}.")
    if len(set(value)) != len(value):
        raise StoreError(f"{where}: {name} names a joint more than once ({value}).")
    return tuple(value)


def _choice(value: Any, choices: tuple[str, ...], name: str, where: str) -> str:
    if value not in choices:
        raise StoreError(f"{where}: {name} is {value!r}; expected one of {', '.join(choices)}.")
    return value


def _positive(value: Any, name: str, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise StoreError(f"{where}: {name} must be a positive number, got {value!r}.")
    return float(value)


def _size(value: Any, where: str) -> tuple[int, int] | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value, value
    if (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)):
        return value[0], value[1]
    raise StoreError(f"{where}: image_size must be a positive integer or [height, width], got {value!r}.")
