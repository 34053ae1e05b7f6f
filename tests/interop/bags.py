"""Bags as a robot would record them, from a real sim run: the scripted reach expert's joint
states, camera frames and commands at the control rate with jitter, written with `rosbags`
(used by tests/interop/test_rosbag.py and bench/interop_io.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

PERIOD_S = 0.05
T0_S = 1_700_000_000.0


def sim_episodes(episodes: int = 2, steps: int = 12, cameras=("front", "wrist"), image_size: int = 32,
                 seed: int = 7) -> list[dict]:
    """Run the scripted reach expert: per episode the sim's obs rows, actions, joints and outcome."""
    import sim
    from sim.experts import make_expert

    env = sim.load("reach", "panda", cameras=cameras, image_size=image_size)
    expert = make_expert(env)
    scene, robot = env.scene, env.scene.robot.config
    names = tuple(robot.driver_joint_names) + tuple(robot.extra.get("ros_gripper_joint_names", robot.gripper.joints))
    out = []
    for episode in range(episodes):
        obs, info = env.reset(seed=seed + episode)
        expert.reset()
        rows = {"state": [], "action": [], "q": [], "qd": [], "images": {c: [] for c in cameras}, "success": []}
        for _ in range(steps):
            action = expert.act().astype(np.float32)
            rows["state"].append(obs["obs/state"])
            rows["q"].append(np.concatenate([scene.joint_pos(), scene.data.qpos[scene.robot.gripper_qpos_adr]]))
            rows["qd"].append(np.concatenate([scene.joint_vel(), np.zeros(len(scene.robot.gripper_qpos_adr))]))
            for c in cameras:
                rows["images"][c].append(obs[f"obs/images/{c}"])
            rows["action"].append(action)
            obs, _, _, _, info = env.step(action)
            rows["success"].append(bool(info["success"]))
        out.append({**{k: np.stack(v) for k, v in rows.items() if k != "images"},
                    "images": {c: np.stack(v) for c, v in rows["images"].items()},
                    "instruction": env.instruction, "names": names, "outcome": bool(info["success"])})
    env.close()
    return out


class BagWriter:
    """Messages collected with their log times, written in time order to a rosbag2 by `rosbags`."""

    def __init__(self) -> None:
        from rosbags.typesys import Stores, get_typestore

        self.ts = get_typestore(Stores.ROS2_JAZZY)
        self.t = self.ts.types
        self.items: list[tuple[float, str, str, object]] = []

    def header(self, stamp_s: float):
        sec = int(stamp_s)
        stamp = self.t["builtin_interfaces/msg/Time"](sec=sec, nanosec=int(round((stamp_s - sec) * 1e9)))
        return self.t["std_msgs/msg/Header"](stamp=stamp, frame_id="")

    def add(self, at_s: float, topic: str, msgtype: str, msg) -> None:
        self.items.append((at_s, topic, msgtype, msg))

    def joints(self, at_s, names, q, qd):
        self.add(at_s, "/joint_states", "sensor_msgs/msg/JointState", self.t["sensor_msgs/msg/JointState"](
            header=self.header(at_s), name=list(names), position=np.asarray(q, np.float64),
            velocity=np.asarray(qd, np.float64), effort=np.zeros(0)))

    def image(self, at_s, topic, rgb, encoding="rgb8"):
        pixels = {"rgb8": rgb, "bgr8": rgb[..., ::-1], "mono8": rgb[..., :1]}.get(encoding, rgb)
        pixels = np.ascontiguousarray(pixels)
        self.add(at_s, topic, "sensor_msgs/msg/Image", self.t["sensor_msgs/msg/Image"](
            header=self.header(at_s), height=rgb.shape[0], width=rgb.shape[1], encoding=encoding, is_bigendian=0,
            step=rgb.shape[1] * pixels.shape[2], data=pixels.reshape(-1)))

    def compressed(self, at_s, topic, rgb, fmt="png"):
        import cv2

        ok, data = cv2.imencode(f".{fmt}", np.ascontiguousarray(rgb[..., ::-1]))
        self.add(at_s, topic, "sensor_msgs/msg/CompressedImage", self.t["sensor_msgs/msg/CompressedImage"](
            header=self.header(at_s), format=fmt, data=data.reshape(-1)))

    def vector(self, at_s, topic, values, msgtype="std_msgs/msg/Float32MultiArray"):
        layout = self.t["std_msgs/msg/MultiArrayLayout"](dim=[], data_offset=0)
        dtype = np.float32 if "32" in msgtype else np.float64
        self.add(at_s, topic, msgtype, self.t[msgtype](layout=layout, data=np.asarray(values, dtype)))

    def text(self, at_s, topic, data):
        self.add(at_s, topic, "std_msgs/msg/String", self.t["std_msgs/msg/String"](data=data))

    def flag(self, at_s, topic, data):
        self.add(at_s, topic, "std_msgs/msg/Bool", self.t["std_msgs/msg/Bool"](data=bool(data)))

    def write(self, path: Path, storage: str = "mcap") -> Path:
        from rosbags.rosbag2 import StoragePlugin, Writer

        plugin = StoragePlugin.MCAP if storage == "mcap" else StoragePlugin.SQLITE3
        with Writer(path, version=9, storage_plugin=plugin) as writer:
            connections = {}
            for at_s, topic, msgtype, msg in sorted(self.items, key=lambda item: item[0]):
                if topic not in connections:
                    connections[topic] = writer.add_connection(topic, msgtype, typestore=self.ts)
                writer.write(connections[topic], int(round(at_s * 1e9)), self.ts.serialize_cdr(msg, msgtype))
        return path


def record_bag(episodes: list[dict], jitter_s: float = 0.004, gap_s: float = 2.0, seed: int = 0,
               encodings=("rgb8", "bgr8"), skip: tuple[int, int] | None = None, writer: BagWriter | None = None,
               t0_s: float = T0_S) -> BagWriter:
    """Publish each sim step at the control rate with jitter: joint states and frames at the tick,
    the expert's action ~5 ms later, task topics, and start/keep events around each episode."""
    rng = np.random.default_rng(seed)
    bag = writer or BagWriter()
    t = t0_s
    for e, ep in enumerate(episodes):
        bag.text(t - 0.2, "/task/instruction", ep["instruction"])
        bag.text(t - 0.1, "/teleop/events", "start")
        for k in range(len(ep["action"])):
            tick = t + k * PERIOD_S
            bag.joints(tick + rng.uniform(-jitter_s, jitter_s), ep["names"], ep["q"][k], ep["qd"][k])
            for c, (camera, frames) in enumerate(ep["images"].items()):
                if skip != (e, k):
                    bag.image(tick + rng.uniform(-jitter_s, jitter_s), f"/{camera}/image_raw", frames[k],
                              encodings[c % len(encodings)])
            bag.vector(tick + 0.005 + rng.uniform(0, jitter_s), "/teleop/action", ep["action"][k])
            bag.flag(tick + 0.02, "/task/success", ep["success"][k])
        end = t + len(ep["action"]) * PERIOD_S
        bag.text(end, "/teleop/events", "success" if ep["outcome"] else "failure")
        bag.text(end + 0.01, "/teleop/events", "keep")
        t = end + gap_s
    return bag


def topic_map(path: Path, **changes) -> Path:
    spec = {"robot": "panda", "control_rate_hz": 20, "joint_states": "/joint_states",
            "cameras": {"front": "/front/image_raw", "wrist": "/wrist/image_raw"},
            "action": {"topic": "/teleop/action", "space": "ee_delta"}, "instruction": "/task/instruction",
            "success": "/task/success", "sync": "nearest", "tolerance_s": 0.02,
            "episodes": {"by": "topic", "topic": "/teleop/events"}}
    spec.update(changes)
    spec = {k: v for k, v in spec.items() if v is not None}
    path.write_text(yaml.safe_dump(spec))
    return path
