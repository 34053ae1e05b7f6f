"""The teleop node: a teleop device -> end-effector twist -> safe joint commands, at a fixed rate.

Works against the sim bridge or a real arm: it reads ``joint_states``, turns the device's
``[dx, dy, dz, dyaw, gripper]`` command into joint position targets with the same ee_delta
controller the sim uses (``sim.controllers`` through the robot model), passes them through the
safety filter and publishes them like the policy node does: the same limits relative to the
measured arm, the same fault rule, and the same e-stop (``estop`` topic, ``~/estop`` and
``~/reset_estop``, a latch file that survives a restart; see ``hardware.ros.estop``). It also publishes ``teleop/action``
(the normalised command, what the recorder stores as ``action``), ``teleop/twist``
(geometry_msgs/TwistStamped in m/s and rad/s) and ``teleop/events`` (start, keep, discard,
success, failure, quit). ``device:=topic`` reads geometry_msgs/Twist from ``spacenav/twist``
and the gripper (-1 open .. 1 closed, std_msgs/Float64) from ``teleop/gripper`` instead of a
device, so any ROS joystick driver can drive it. ``device:=excite`` plays system
identification's excitation motions (``hardware.teleop.excite``; ``excite_*`` parameters), one
recorded episode each, for ``robot-rl sysid``. The keyboard needs the node's own terminal:
run it directly (``python -m hardware.ros.teleop_node --ros-args -p device:=keyboard``).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from geometry_msgs.msg import Twist, TwistStamped
from rclpy.node import Node
from std_msgs.msg import Float32MultiArray, Float64, Float64MultiArray, String

from hardware.ros.conversions import DEFAULT_COMMAND_TOPICS, command_type, joint_command, vector
from hardware.ros.estop import EStop
from hardware.ros.observations import ObservationCache
from hardware.ros.params import declare_config
from hardware.ros.runner import loop_guard, run_node
from hardware.control.tick import PolicyController, TickResult
from hardware.control.robot_model import load_robot_model
from hardware.control.timing import RateLoop
from hardware.safety import CommandWatchdog, SafetyConfig, SafetyFilter, SafetyLimits, limits_of


@dataclass(frozen=True)
class TeleopNodeConfig(SafetyLimits):
    """Parameters of the teleop node: the safety limits (SafetyLimits' fields; two defaults differ) and these."""

    device: str = "spacemouse"  # keyboard | spacemouse | gamepad | topic | excite
    robot: str = "panda"
    control_rate_hz: float = 20.0
    translation_scale: float = 1.0
    rotation_scale: float = 1.0
    deadzone: float = 0.1
    max_pos_step_m: float = 0.04  # ee_delta scaling, as the sim's controller
    max_yaw_step_rad: float = 0.25
    command_interface: str = "joint_trajectory"
    command_topic: str = ""
    gripper_topic: str = "gripper_controller/commands"
    joint_states_topic: str = "joint_states"
    twist_topic: str = "spacenav/twist"
    # A person watches teleop: a shorter ramp-in than the policy's; the same timeout stops a twist stream.
    command_timeout_s: float = 0.3  # device=topic: no twist for this long means stop
    ramp_in_s: float = 0.5
    max_stamp_age_s: float = 1.0  # header stamps further than this from the node's clock are refused
    estop_latch_file: str = ""  # empty: $ROBOT_RL_STATE_DIR (or ~/.local/state/robot_rl)/estop-d<domain>-<node>.latch
    # device=excite: how many motions of how many steps, chosen in which task's sim scene at which
    # physics (a calibration.yaml from an earlier robot-rl sysid; empty: the robot file's), resting between
    excite_motions: int = 3
    excite_steps: int = 50
    excite_task: str = "reach"
    excite_prior: str = ""
    excite_settle_s: float = 1.0
    excite_scale: float = 1.0  # fraction of each motion's hand motion played (gentler for a first run on an arm)
    excite_attempts: int = 2  # a motion cut short (a safety fault) this many times is skipped (a third fault soon after latches)


class TopicDevice:
    """Twist and gripper messages as a teleop device (for ``device:=topic``), with a watchdog."""

    help = "Teleop from geometry_msgs/Twist messages."

    def __init__(self, node: Node, config: TeleopNodeConfig) -> None:
        self._scale = np.array([config.max_pos_step_m] * 3 + [config.max_yaw_step_rad]) * config.control_rate_hz
        self._action = np.zeros(4, np.float32)
        self._gripper = -1.0
        self._watchdog = CommandWatchdog(config.command_timeout_s)
        node.create_subscription(Twist, config.twist_topic, self._on_twist, 10)
        node.create_subscription(Float64, "teleop/gripper", self._on_gripper, 10)

    def _on_twist(self, msg: Twist) -> None:
        rates = np.array([msg.linear.x, msg.linear.y, msg.linear.z, msg.angular.z])
        if np.all(np.isfinite(rates)):
            self._action = np.clip(rates / self._scale, -1.0, 1.0).astype(np.float32)
            self._watchdog.feed(time.perf_counter())

    def _on_gripper(self, msg: Float64) -> None:
        if np.isfinite(msg.data):
            self._gripper = float(np.clip(msg.data, -1.0, 1.0))

    def read(self):
        from hardware.teleop import TeleopCommand

        motion = np.zeros(4, np.float32) if self._watchdog.expired(time.perf_counter()) else self._action
        return TeleopCommand(action=np.append(motion, np.float32(self._gripper)).astype(np.float32))

    def close(self) -> None:
        pass


class _DeviceAction:
    """The device's latest command in the place of a policy runtime (no observation inputs)."""

    inputs: dict = {}

    def __init__(self) -> None:
        self.action = np.array([0, 0, 0, 0, -1], np.float32)

    def act(self) -> np.ndarray:
        return self.action


class TeleopNode(Node):
    def __init__(self, device=None, **node_kwargs) -> None:
        super().__init__("teleop", **node_kwargs)
        cfg = self.config = declare_config(self, TeleopNodeConfig)
        scaling = {"max_pos_step_m": cfg.max_pos_step_m, "max_yaw_step_rad": cfg.max_yaw_step_rad}
        self.robot = load_robot_model(cfg.robot, "ee_delta", scaling)
        safety = SafetyConfig.for_robot(self.robot.joint_range, self.robot.velocity_limits_rad_s, cfg.control_rate_hz,
                                        **limits_of(cfg))
        self.estop = EStop(self, cfg.estop_latch_file, self._reset_estop)
        self.safety = self.estop.safety = SafetyFilter(safety, self.robot.ee_position, self.estop.latch)
        self._source = _DeviceAction()
        self.controller = PolicyController(self._source, self.robot, self.safety)
        self.cache = ObservationCache(self, self.robot.joint_names, self.robot.gripper_joint_names, {},
                                      cfg.joint_states_topic, max_stamp_age_s=cfg.max_stamp_age_s)
        self.device = device or self._open_device()
        topic = cfg.command_topic or DEFAULT_COMMAND_TOPICS[cfg.command_interface]
        self._command_pub = self.create_publisher(command_type(cfg.command_interface), topic, 10)
        self._gripper_pub = self.create_publisher(Float64MultiArray, cfg.gripper_topic, 10)
        self._action_pub = self.create_publisher(Float32MultiArray, "teleop/action", 10)
        self._twist_pub = self.create_publisher(TwistStamped, "teleop/twist", 10)
        self._events_pub = self.create_publisher(String, "teleop/events", 10)
        self._stop, self._finished = threading.Event(), False
        self._thread = threading.Thread(target=loop_guard, args=(self, self._loop), name="teleop", daemon=True)
        self._thread.start()
        self.get_logger().info(f"teleop: {cfg.device} -> {cfg.robot} at {cfg.control_rate_hz:g} Hz")

    def _open_device(self):
        if self.config.device == "topic":
            return TopicDevice(self, self.config)
        if self.config.device == "excite":
            return self._excitation()
        from hardware.teleop import TeleopConfig, TeleopDeviceError, make_device

        config = TeleopConfig(translation_scale=self.config.translation_scale,
                              rotation_scale=self.config.rotation_scale, deadzone=self.config.deadzone)
        try:
            return make_device(self.config.device, config)
        except TeleopDeviceError as error:
            raise ValueError(str(error)) from None

    def _excitation(self):
        """The excitation player, its motions chosen now in the sim (a few seconds)."""
        from hardware.teleop.excite import ExcitationPlayer
        from robot_rl.sysid.explore import motions_for

        cfg = self.config
        if (cfg.excite_motions < 1 or cfg.excite_steps < 2 or cfg.excite_settle_s < 0 or not 0 < cfg.excite_scale <= 1
                or cfg.excite_attempts < 1):
            raise ValueError(f"device:=excite needs excite_motions >= 1, excite_steps >= 2, excite_settle_s >= 0, "
                             f"0 < excite_scale <= 1 and excite_attempts >= 1; got {cfg.excite_motions}, "
                             f"{cfg.excite_steps}, {cfg.excite_settle_s:g}, {cfg.excite_scale:g} and {cfg.excite_attempts}.")
        if cfg.excite_prior and not Path(cfg.excite_prior).is_file():
            raise ValueError(f"excite_prior:={cfg.excite_prior} is not a file; give the calibration.yaml an earlier "
                             "robot-rl sysid wrote, or leave it empty for the robot file's physics.")
        try:
            motions = motions_for(cfg.excite_task, cfg.robot, cfg.excite_motions, cfg.excite_steps,
                                  cfg.excite_prior or None, control_rate_hz=cfg.control_rate_hz, action_space="ee_delta")
        except (KeyError, ValueError) as error:  # an unknown task, a damaged calibration
            raise ValueError(f"device:=excite could not choose its motions ({str(error).strip(chr(39)).rstrip('.')}).") from None
        player = ExcitationPlayer(motions, cfg.control_rate_hz, cfg.excite_settle_s, ready=self._arm_ready,
                                  scale=cfg.excite_scale, attempts=cfg.excite_attempts)
        self.get_logger().info(f"excite: {len(player.motions)} motions of {cfg.excite_steps} steps "
                               f"({', '.join(name for name, _ in player.motions)}); start from the home pose")
        return player

    def _arm_ready(self) -> bool:
        """The node commands the arm at full rate: active, ramped in, no fault, no e-stop."""
        safety = self.safety
        return (safety.active and not safety.faulted and not self.estop.tripped
                and safety.ramp(time.perf_counter()) >= 1.0)

    def _loop(self) -> None:
        loop = RateLoop(self.config.control_rate_hz)
        while not self._stop.is_set():
            loop.wait()
            command = self.device.read()
            if getattr(self.device, "done", False) and not self._finished:
                self._finished = True
                skipped = self.device.skipped
                self.get_logger().info(f"excite: done, {len(self.device.played)} motions recorded "
                                       f"({self.device.interrupted} cut short and played again or skipped; skipped: "
                                       f"{', '.join(skipped) or 'none'}); robot-rl sysid data=<the recorder's store> "
                                       "fits the sim to them")
            if "discard" in command.events and self.config.device == "excite":
                why = ("the e-stop" if self.estop.tripped else self.safety.fault_reason or self.safety.latched_reason
                       or ("ramping in" if self.safety.active else "inactive"))
                self.get_logger().warning(f"excite: motion cut short ({why}); discarded, retraced, and played again "
                                          f"unless cut short {self.config.excite_attempts} times (then skipped: a "
                                          "smaller excite_scale plays the motions gentler)")
            for event in command.events:
                self._events_pub.publish(String(data=event))
            self._source.action = command.action
            self._publish_intent(command.action)
            problem, obs, now = self.cache.take_fault(), self.cache.snapshot(), time.perf_counter()
            if (obs is not None and not problem and not self.safety.active and not self.estop.tripped
                    and obs.time_s > now - self.config.obs_timeout_s):
                self.controller.activate(obs, now)
                self.get_logger().info("joint states arriving: teleop commands the arm (ramping in)")
            self._publish(self.controller.tick(obs, now, problem), obs)

    def _publish_intent(self, action: np.ndarray) -> None:
        cfg = self.config
        twist = TwistStamped()
        twist.header.stamp = self.get_clock().now().to_msg()
        twist.twist.linear.x, twist.twist.linear.y, twist.twist.linear.z = (
            float(a) * cfg.max_pos_step_m * cfg.control_rate_hz for a in action[:3])
        twist.twist.angular.z = float(action[3]) * cfg.max_yaw_step_rad * cfg.control_rate_hz
        self._twist_pub.publish(twist)
        self._action_pub.publish(vector(action))

    def _publish(self, result: TickResult, obs) -> None:
        if not result.command.publish or obs is None:
            return
        message = joint_command(self.config.command_interface, self.robot.joint_names, result.command.positions,
                                1.0 / self.config.control_rate_hz)
        if not self.safety.send_if_safe(obs.time_s, lambda: self._command_pub.publish(message)):
            return
        if result.gripper is not None:
            self._gripper_pub.publish(Float64MultiArray(data=result.gripper.tolist()))

    def _reset_estop(self) -> tuple[bool, str]:
        return self.estop.reset_from(self.cache, self.config.obs_timeout_s)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        self.device.close()


def main(argv: list[str] | None = None) -> int:
    return run_node(TeleopNode, "teleop", argv)


if __name__ == "__main__":
    raise SystemExit(main())
