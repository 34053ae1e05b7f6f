"""The sim bridge: a MuJoCo task, stepped in real time, behind the topics of a real ROS 2 arm.

It publishes what the arm's driver would (``joint_states`` with arm and finger joints under
their driver names, ``<camera>/image_raw``) plus what only a simulator knows
(``observations/object`` ground truth, ``task/success``, ``task/progress``,
``task/instruction``), and accepts the same commands as the real controllers
(JointTrajectory or Float64MultiArray joint positions, Float64MultiArray gripper targets).
Without commands for ``command_timeout_s`` it holds the arm where it is, as a driver would.
``~/reset`` (std_srvs/Trigger) starts a new episode. This is the only hardware/ module that
imports ``sim``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, QoSProfile, qos_profile_sensor_data
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import Bool, Float32, Float32MultiArray, Float64MultiArray, String
from std_srvs.srv import Trigger

from hardware.ros.conversions import DEFAULT_COMMAND_TOPICS, RESET_PREFIX, command_type, joint_state, rgb_to_image, vector
from hardware.ros.decoding import MessageError, read_joint_command
from hardware.ros.params import declare_config
from hardware.ros.runner import loop_guard, run_node
from hardware.control.timing import RateLoop
from hardware.safety import CommandWatchdog


@dataclass(frozen=True)
class SimBridgeConfig:
    task: str = "reach"
    robot: str = "panda"
    randomize: str = "none"
    seed: int = 0
    physics_rate_hz: float = 100.0  # joint states are published at this rate
    camera_rate_hz: float = 10.0
    cameras: tuple[str, ...] = ()
    image_size: int = 84
    publish_object: bool = True
    task_rate_hz: float = 10.0
    command_interface: str = "joint_trajectory"
    command_topic: str = ""
    gripper_topic: str = "gripper_controller/commands"
    command_timeout_s: float = 0.5
    calibration: str = ""  # a calibration.yaml (robot-rl sysid's): the arm's physics; empty: the robot file's


class SimBridgeNode(Node):
    def __init__(self, **node_kwargs) -> None:
        super().__init__("sim_bridge", **node_kwargs)
        cfg = self.config = declare_config(self, SimBridgeConfig)
        import sim

        self.env = sim.load(cfg.task, cfg.robot, cfg.randomize, cameras=(), image_size=cfg.image_size,
                            control_rate_hz=cfg.physics_rate_hz, action_space="joint_abs",
                            calibration=cfg.calibration or None)
        # The preset's command latency and action noise act on the commands as they arrive (the
        # policy's ticks), not on the 100 Hz physics steps: a latency of N is the command N
        # commands old, and the noise is that fraction of the joint controller's full step.
        self.env.randomizer.hand_over_actuation()
        self._rng = np.random.default_rng(cfg.seed)
        self._joint_step_rad = float(self.env.config.controller.max_joint_step_rad)
        scene = self.env.scene
        self._lo, self._hi = scene.robot.joint_range.T
        grip = scene.robot.config.gripper
        self._open, self._closed = grip.open_ctrl, grip.closed_ctrl
        robot_cfg = scene.robot.config
        self.joint_names = tuple(robot_cfg.driver_joint_names)
        self.gripper_names = tuple(robot_cfg.extra.get("ros_gripper_joint_names", grip.joints))
        self._lock = threading.Lock()
        self._target_q: np.ndarray | None = None
        self._target_gripper = -1.0
        self._watchdog = CommandWatchdog(cfg.command_timeout_s)
        self._reset_request: threading.Event | None = None
        self._seed = cfg.seed
        self._make_interfaces()
        self._reset_episode()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=loop_guard, args=(self, self._loop), name="sim-bridge", daemon=True)
        self._thread.start()
        self.get_logger().info(f"sim bridge: {cfg.task} on {cfg.robot} at {cfg.physics_rate_hz:g} Hz, "
                               f"cameras {list(cfg.cameras) or 'none'}")

    def _make_interfaces(self) -> None:
        cfg = self.config
        latched = QoSProfile(depth=1, durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self._joint_pub = self.create_publisher(JointState, "joint_states", qos_profile_sensor_data)
        self._image_pubs = {c: self.create_publisher(Image, f"{c}/image_raw", qos_profile_sensor_data)
                            for c in cfg.cameras}
        self._object_pub = self.create_publisher(Float32MultiArray, "observations/object", 10)
        self._success_pub = self.create_publisher(Bool, "task/success", 10)
        self._progress_pub = self.create_publisher(Float32, "task/progress", 10)
        self._instruction_pub = self.create_publisher(String, "task/instruction", latched)
        topic = cfg.command_topic or DEFAULT_COMMAND_TOPICS[cfg.command_interface]
        self.create_subscription(command_type(cfg.command_interface), topic, self._on_command, 10)
        self.create_subscription(Float64MultiArray, cfg.gripper_topic, self._on_gripper, 10)
        self.create_service(Trigger, "~/reset", self._on_reset)

    # --- commands (executor thread) ---------------------------------------------------------
    def _on_command(self, msg) -> None:
        try:
            q = read_joint_command(msg, self.joint_names)
        except MessageError as error:
            self.get_logger().error(f"ignoring command: {error}", throttle_duration_sec=1.0)
            return
        if not np.all(np.isfinite(q)):
            self.get_logger().error("ignoring a non-finite joint command", throttle_duration_sec=1.0)
            return
        with self._lock:
            self._target_q = self.env.randomizer.actuate(q, self._rng, self._joint_step_rad)
            self._watchdog.feed(time.perf_counter())

    def _on_gripper(self, msg: Float64MultiArray) -> None:
        values = np.array(msg.data, np.float64)
        if values.size == 0 or not np.all(np.isfinite(values)):
            return
        fraction = (float(values.mean()) - self._open) / (self._closed - self._open)
        with self._lock:
            self._target_gripper = float(np.clip(2.0 * fraction - 1.0, -1.0, 1.0))

    def _on_reset(self, request, response):
        done = threading.Event()
        self._reset_request = done
        response.success = done.wait(timeout=10.0)
        response.message = f"{RESET_PREFIX}{self.env.instruction}" if response.success else "reset timed out"
        return response

    # --- the real-time loop -----------------------------------------------------------------
    def _reset_episode(self) -> None:
        with self._lock:  # a command arriving meanwhile waits: it joins the new episode's latency queue
            self.env.reset(seed=self._seed)
            self._target_q, self._target_gripper = None, -1.0
        self._seed += 1
        self._instruction_pub.publish(String(data=self.env.instruction))

    def _loop(self) -> None:
        cfg = self.config
        loop = RateLoop(cfg.physics_rate_hz, spin_s=0.0)
        camera_every = max(1, round(cfg.physics_rate_hz / cfg.camera_rate_hz))
        task_every = max(1, round(cfg.physics_rate_hz / cfg.task_rate_hz))
        tick = 0
        while not self._stop.is_set():
            loop.wait()
            if self._reset_request is not None:
                request, self._reset_request = self._reset_request, None
                self._reset_episode()
                request.set()
            info = self._step()
            stamp = self.get_clock().now().to_msg()
            scene = self.env.scene
            gripper_q = scene.data.qpos[scene.robot.gripper_qpos_adr]
            self._joint_pub.publish(joint_state(self.joint_names + self.gripper_names,
                                                np.concatenate([scene.joint_pos(), gripper_q]),
                                                np.concatenate([scene.joint_vel(), np.zeros_like(gripper_q)]), stamp))
            if cfg.publish_object:  # with every joint state: a policy reads both in the same tick
                self._object_pub.publish(vector(self.env.task.object_features(scene)))
            if tick % camera_every == 0:
                for camera, publisher in self._image_pubs.items():
                    publisher.publish(rgb_to_image(self.env.render_camera(camera), stamp, camera))
            if tick % task_every == 0:
                self._publish_task(info)
            tick += 1

    def _step(self) -> dict:
        with self._lock:
            if self._target_q is None or self._watchdog.expired(time.perf_counter()):
                self._target_q = self.env.scene.joint_pos()  # no (recent) command: hold where the arm is
                self._watchdog.feed(time.perf_counter())
            target, gripper = self._target_q.copy(), self._target_gripper
        action = np.append(2.0 * (target - self._lo) / (self._hi - self._lo) - 1.0, gripper)
        _, _, _, _, info = self.env.step(np.clip(action, -1.0, 1.0))
        return info

    def _publish_task(self, info: dict) -> None:
        self._success_pub.publish(Bool(data=bool(info["success"])))
        self._progress_pub.publish(Float32(data=float(info["progress"])))

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        self.env.close()


def main(argv: list[str] | None = None) -> int:
    return run_node(SimBridgeNode, "sim_bridge", argv)


if __name__ == "__main__":
    raise SystemExit(main())
