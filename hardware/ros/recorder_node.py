"""The recorder node: the robot's topics, aligned in time, into the crash-safe Zarr episode store.

Every control period it takes the latest joint state, the camera frame of each camera nearest to
it (within ``image_tolerance_s``) and the latest privileged vector, and stores them with the
action that was sent in response (the last ``action_topic`` message of the following period),
so each row is (observation, action taken from it, outcome), as sim recordings are. ``obs/state``
is built by the same robot model as the policy node's, so real and sim stores share one layout:
``obs/state``, ``obs/images/<camera>``, ``action``, ``reward``, ``info/success``,
``info/progress`` (from ``task/success`` / ``task/progress`` when a sim publishes them).

Episodes: services ``~/start`` (Trigger), ``~/keep`` (SetBool: data = success) and
``~/discard`` (Trigger), or the teleop device's buttons on ``teleop/events``.

``format``: ``zarr`` (the store only, the default), ``mcap`` (a rosbag2 with MCAP storage per
episode, every message the node received during it, e.g. to open in Foxglove) or ``both``. The
bags go to ``mcap_dir`` (default: beside the store, ``<out without .zarr>_mcap/``) as
``episode_<index>/``, the index the store gives the episode; see ``hardware.ros.mcap_writer``.
The Zarr path is unchanged by it; bags are written by their own thread.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, Float32, Float32MultiArray, String
from std_srvs.srv import SetBool, Trigger

from hardware.ros.camera_node import square
from hardware.ros.conversions import DEFAULT_COMMAND_TOPICS, command_type
from hardware.ros.decoding import JointStateReader, MessageError, image_to_rgb, read_joint_command, stamp_to_s
from hardware.ros.mcap_writer import EpisodeBags, kept_episodes
from hardware.ros.params import declare_config
from hardware.ros.runner import loop_guard, run_node
from hardware.ros.timeline import Timeline
from hardware.control.robot_model import load_robot_model
from hardware.control.timing import RateLoop
from robot_rl import contracts
from robot_rl.data.writer import EpisodeWriter


FORMATS = ("zarr", "mcap", "both")


@dataclass(frozen=True)
class RecorderConfig:
    out: str = "data/real.zarr"
    robot: str = "panda"
    task: str = ""
    instruction: str = ""  # empty: the latest task/instruction message, if any
    source: str = "real"
    control_rate_hz: float = 20.0
    action_space: str = "ee_delta"
    action_topic: str = "teleop/action"
    events_topic: str = "teleop/events"
    joint_states_topic: str = "joint_states"
    cameras: tuple[str, ...] = ()
    image_size: int = 84
    object_dim: int = 0  # > 0: also record obs/object from observations/object (sim ground truth)
    image_tolerance_s: float = 0.1
    stale_s: float = 0.25  # skip a row whose joint state is older than this
    format: str = "zarr"  # zarr | mcap | both: also (or only) one rosbag2 MCAP bag per episode
    mcap_dir: str = ""  # where the episode bags go; "" = beside the store, <out without .zarr>_mcap
    # joint_trajectory | position_array: also record the joint targets sent on that interface's
    # topic (or command_topic) as info/command, what robot-rl sysid fits the arm's response to; "": not
    command_interface: str = ""
    command_topic: str = ""

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"format {self.format!r} is unknown; expected one of {', '.join(FORMATS)}.")
        if self.source not in contracts.EPISODE_SOURCES:
            raise ValueError(f"source {self.source!r} is unknown; expected one of {contracts.EPISODE_SOURCES}.")
        if self.command_interface and self.command_interface not in DEFAULT_COMMAND_TOPICS:
            raise ValueError(f"command_interface {self.command_interface!r} is unknown; expected empty (not recorded) "
                             f"or one of {', '.join(DEFAULT_COMMAND_TOPICS)}.")


class RecorderNode(Node):
    def __init__(self, **node_kwargs) -> None:
        super().__init__("recorder", **node_kwargs)
        cfg = self.config = declare_config(self, RecorderConfig)
        self.robot = load_robot_model(cfg.robot, cfg.action_space)
        self.action_dim = 5 if cfg.action_space == "ee_delta" else self.robot.n_joints + 1
        self.writer = EpisodeWriter(Path(cfg.out), self._schema(), self._attrs()) if cfg.format != "mcap" else None
        self.bags = EpisodeBags(self.bag_folder(cfg)) if cfg.format != "zarr" else None
        self._bag_index = kept_episodes(self.bags.folder) if self.bags is not None else 0
        self._reader = JointStateReader(self.robot.joint_names, self.robot.gripper_joint_names)
        self.streams = {name: Timeline() for name in ("joints", "action", "command", "object", "success", "progress",
                                                      *(f"image/{c}" for c in cfg.cameras))}
        self._instruction = cfg.instruction
        self._lock = threading.Lock()
        self._recording = False
        self._marked: bool | None = None
        self._pending: dict | None = None
        self._steps = 0
        self._episode_topic = f"{self.get_fully_qualified_name()}/episode"  # start / success|failure / keep|discard
        self._subscribe()
        self.create_service(Trigger, "~/start", lambda req, res: self._reply(res, *self.start()))
        self.create_service(SetBool, "~/keep", lambda req, res: self._reply(res, *self.keep(bool(req.data))))
        self.create_service(Trigger, "~/discard", lambda req, res: self._reply(res, *self.discard()))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=loop_guard, args=(self, self._loop), name="recorder", daemon=True)
        self._thread.start()
        where = [f"{self.writer.path} ({self.writer.num_episodes} episodes there)"] if self.writer else []
        where += [f"episode bags in {self.bags.folder}"] if self.bags else []
        self.get_logger().info(f"recording to {' and '.join(where)}; waiting for start")

    @staticmethod
    def bag_folder(cfg: RecorderConfig) -> Path:
        if cfg.mcap_dir:
            return Path(cfg.mcap_dir)
        out = Path(cfg.out)
        return out.with_name(f"{out.stem if out.suffix == '.zarr' else out.name}_mcap")

    @property
    def next_index(self) -> int:
        return self.writer.num_episodes if self.writer is not None else self._bag_index

    def _schema(self) -> dict:
        cfg, n = self.config, self.robot.n_joints
        schema = {contracts.OBS_STATE: ((2 * n + 8,), "float32"), contracts.ACTION: ((self.action_dim,), "float32"),
                  contracts.REWARD: ((), "float32"), contracts.INFO_SUCCESS: ((), "bool"),
                  contracts.INFO_PROGRESS: ((), "float32")}
        schema.update({contracts.image_key(c): ((cfg.image_size, cfg.image_size, 3), "uint8") for c in cfg.cameras})
        if cfg.object_dim > 0:
            schema[contracts.OBS_OBJECT] = ((cfg.object_dim,), "float32")
        if cfg.command_interface:
            schema[contracts.INFO_COMMAND] = ((n,), "float32")
        return schema

    def _attrs(self) -> dict:
        cfg = self.config
        return {"control_rate_hz": cfg.control_rate_hz, "robot": cfg.robot, "action_space": cfg.action_space,
                "task": cfg.task, "joint_names": list(self.robot.joint_names), "cameras": list(cfg.cameras)}

    def _subscribe(self) -> None:
        cfg = self.config
        self._listen(JointState, cfg.joint_states_topic, self._on_joints, qos_profile_sensor_data)
        for camera in cfg.cameras:
            self._listen(Image, f"{camera}/image_raw", lambda m, c=camera: self._on_image(c, m),
                         qos_profile_sensor_data)
        self._listen(Float32MultiArray, cfg.action_topic, lambda m: self._add("action", np.array(m.data, np.float32)),
                     10)
        if cfg.command_interface:
            self._listen(command_type(cfg.command_interface),
                         cfg.command_topic or DEFAULT_COMMAND_TOPICS[cfg.command_interface], self._on_command, 10)
        self._listen(Float32MultiArray, "observations/object",
                     lambda m: self._add("object", np.array(m.data, np.float32)), 10)
        self._listen(Bool, "task/success", lambda m: self._add("success", bool(m.data)), 10)
        self._listen(Float32, "task/progress", lambda m: self._add("progress", float(m.data)), 10)
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self._instruction_topic = self._listen(String, "task/instruction", self._on_instruction, latched)
        self._listen(String, cfg.events_topic, self._on_event, 10)

    def _listen(self, msg_type, topic: str, callback, qos) -> str:
        """Subscribe; with episode bags, each message also goes to the open episode's bag. Returns the
        resolved topic name."""
        if self.bags is None:
            return self.create_subscription(msg_type, topic, callback, qos).topic_name
        bags = self.bags

        def both(msg) -> None:
            bags.add(name, msg, self.get_clock().now().nanoseconds)  # a queue put: the bag thread writes
            callback(msg)

        name = self.create_subscription(msg_type, topic, both, qos).topic_name
        return name

    # --- incoming (executor thread) ---------------------------------------------------------
    def _now_s(self) -> float:
        return self.get_clock().now().nanoseconds * 1e-9

    def _add(self, stream: str, value) -> None:
        self.streams[stream].add(self._now_s(), value)

    def _on_joints(self, msg: JointState) -> None:
        try:
            self.streams["joints"].add(stamp_to_s(msg.header.stamp), self._reader.read(msg))
        except MessageError as error:
            self.get_logger().error(f"ignoring joint state: {error}", throttle_duration_sec=2.0)

    def _on_command(self, msg) -> None:
        try:
            self._add("command", read_joint_command(msg, self.robot.joint_names).astype(np.float32))
        except MessageError as error:
            self.get_logger().error(f"ignoring joint command: {error}", throttle_duration_sec=2.0)

    def _on_image(self, camera: str, msg: Image) -> None:
        try:
            rgb = image_to_rgb(msg)
        except MessageError as error:
            self.get_logger().error(f"ignoring {camera} image: {error}", throttle_duration_sec=2.0)
            return
        # Center-cropped then resized, as the policy node fits a camera's image: what is recorded is what a policy sees.
        rgb = square(rgb, self.config.image_size)
        self.streams[f"image/{camera}"].add(stamp_to_s(msg.header.stamp), rgb)

    def _on_instruction(self, msg: String) -> None:
        if not self.config.instruction:
            self._instruction = msg.data

    def _on_event(self, msg: String) -> None:
        event = msg.data
        if event == "start" and not self._recording:
            self.start()
        elif event == "keep":
            self.keep(self._marked if self._marked is not None else self._task_success())
        elif event == "discard":
            self.discard()
        elif event in ("success", "failure"):
            self._marked = event == "success"

    # --- episodes ---------------------------------------------------------------------------
    def start(self) -> tuple[bool, str]:
        with self._lock:
            if self._recording:
                return False, "already recording; keep or discard the episode first."
            if self.writer is not None:
                self.writer.start_episode(source=self.config.source, instruction=self._instruction,
                                          task=self.config.task)
            if self.bags is not None:
                self._start_bag()
            self._recording, self._marked, self._pending, self._steps = True, None, None, 0
        self.get_logger().info(f"recording episode {self.next_index}: {self._instruction!r}")
        return True, f"recording episode {self.next_index}"

    def _start_bag(self) -> None:
        """Open the episode's bag with the instruction in force and a start marker (recorder/episode)."""
        now = self.get_clock().now().nanoseconds
        self.bags.start(self.next_index)
        self.bags.add(self._instruction_topic, String(data=self._instruction), now)
        self.bags.add(self._episode_topic, String(data="start"), now)

    def _end_bag(self, keep: bool, success: bool, index: int | None) -> None:
        if self.bags is None:
            return
        now = self.get_clock().now().nanoseconds
        if keep:
            self.bags.add(self._episode_topic, String(data="success" if success else "failure"), now)
        self.bags.add(self._episode_topic, String(data="keep" if keep else "discard"), now)
        self.bags.finish(keep, index)
        if keep and index is not None:
            self._bag_index = max(self._bag_index, index + 1)
        if self.bags.dropped or self.bags.error:
            self.get_logger().warning(f"episode bags: {self.bags.dropped} messages dropped (queue full)"
                                      f"{'; ' + self.bags.error if self.bags.error else ''}")

    def keep(self, success: bool) -> tuple[bool, str]:
        with self._lock:
            if not self._recording:
                return False, "not recording; call start first."
            self._recording = False
            steps = self._steps
            if self.writer is not None:
                index = self.writer.end_episode(success=success, keep=True, wait=True)
            else:
                index = self._bag_index if steps else None
            self._end_bag(index is not None, success, index)
        if index is None:
            return False, "the episode had no steps and was discarded."
        self.get_logger().info(f"kept episode {index}: {steps} steps, success={success}")
        return True, f"kept episode {index} ({steps} steps, success={success})"

    def discard(self) -> tuple[bool, str]:
        with self._lock:
            if not self._recording:
                return False, "not recording."
            self._recording = False
            if self.writer is not None:
                self.writer.end_episode(success=False, keep=False)
            self._end_bag(False, False, None)
        return True, "episode discarded"

    @staticmethod
    def _reply(response, ok: bool, message: str):
        response.success, response.message = ok, message
        return response

    def _task_success(self) -> bool:
        latest = self.streams["success"].latest()
        return bool(latest[1]) if latest else False

    # --- the recording loop -----------------------------------------------------------------
    def _loop(self) -> None:
        loop = RateLoop(self.config.control_rate_hz, spin_s=0.0)
        previous_s = self._now_s()
        while not self._stop.is_set():
            loop.wait()
            now_s = self._now_s()
            with self._lock:
                if self._recording:
                    self._record(previous_s, now_s)
            previous_s = now_s

    def _record(self, previous_s: float, now_s: float) -> None:
        """Write the row observed last period with the action sent since, and observe this one."""
        if self.config.command_interface:
            self._record_commanded(previous_s, now_s)
            return
        if self._pending is not None:
            action = self.streams["action"].between(previous_s, now_s) or self.streams["action"].latest(now_s)
            if action is not None and action[1].shape == (self.action_dim,):
                self._pending[contracts.ACTION] = action[1]
                if self.writer is not None:
                    self.writer.add_step(self._pending)
                self._steps += 1
        self._pending = self._observe(now_s)

    def _record_commanded(self, previous_s: float, now_s: float) -> None:
        """With the joint targets recorded, each command sent since the last tick is a row: the
        state as it was when the command went out, the action it came from, and the command.
        Clocked by this node's own ticks instead, the time from a command to the next row's state
        would vary with the two nodes' phase (nothing to a whole period), which system
        identification reads as a command latency one step longer or shorter from run to run."""
        for sent_s, q in self.streams["command"].all_between(previous_s, now_s):
            row, action = self._observe(sent_s), self.streams["action"].latest(sent_s)
            if row is None or action is None or action[1].shape != (self.action_dim,):
                continue
            row[contracts.ACTION], row[contracts.INFO_COMMAND] = action[1], q
            if self.writer is not None:
                self.writer.add_step(row)
            self._steps += 1

    def _observe(self, now_s: float) -> dict | None:
        cfg = self.config
        joints = self.streams["joints"].latest(now_s)
        if joints is None or now_s - joints[0] > cfg.stale_s:
            self.get_logger().warning("no recent joint state; not recording this period", throttle_duration_sec=2.0)
            return None
        stamp_s, (q, qd, qg) = joints
        row = {contracts.OBS_STATE: self.robot.state_vector(q, qd, qg).copy()}
        for camera in cfg.cameras:
            frame = self.streams[f"image/{camera}"].nearest(stamp_s, cfg.image_tolerance_s)
            if frame is None:
                self.get_logger().warning(f"no {camera} frame within {cfg.image_tolerance_s} s of the joint state",
                                          throttle_duration_sec=2.0)
                return None
            row[contracts.image_key(camera)] = frame[1]
        if cfg.object_dim > 0:
            latest = self.streams["object"].latest(now_s)
            if latest is None or latest[1].shape != (cfg.object_dim,):
                return None
            row[contracts.OBS_OBJECT] = latest[1]
        progress = self.streams["progress"].latest(now_s)
        row[contracts.INFO_PROGRESS] = np.float32(progress[1] if progress else 0.0)
        success = np.bool_(self._task_success())
        # the sim's dense ground-truth reward; 0 on a real robot, which publishes no progress
        row[contracts.REWARD] = contracts.ground_truth_reward(row[contracts.INFO_PROGRESS], success, "dense")
        row[contracts.INFO_SUCCESS] = success
        return row

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        if self.writer is not None:
            self.writer.close()
        if self.bags is not None:
            self.bags.close()  # an open episode's bag is discarded, as the store discards the episode


def main(argv: list[str] | None = None) -> int:
    return run_node(RecorderNode, "recorder", argv)


if __name__ == "__main__":
    raise SystemExit(main())
