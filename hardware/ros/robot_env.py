"""The robot as a gymnasium env over ROS 2: what learning on the robot steps through.

``RosRobotEnv`` reads the arm as the policy node does (``joint_states``, ``<camera>/image_raw``,
the operator's ``instruction``: one ``ObservationCache``) and commands it as the policy node
does (the arm controller's topic, ``gripper_controller/commands``): every command goes through
the same ``SafetyFilter`` relative to the measured arm, the same ``EStop`` (``estop`` topic,
``~/estop``, ``~/reset_estop``, a latch file that survives a restart) and the same fault rule.
There is no second safety implementation here.

One step is one control tick. ``send(action)`` turns the ee_delta action into joint targets
from the arm's measured position (the robot model, the sim's own controller), filters and
publishes them at once; ``receive()`` waits for the next tick and returns the new observation,
the reward and the episode's end. ``step`` is the two; a learner uses the gap between them for
its gradient updates (``time_left_s``), so learning never delays a command.

Observation: the student's layout (``obs/images/<camera>`` uint8 HWC, ``obs/state`` from the
joints by the robot model, ``obs/instruction``: the instruction's frozen embedding).
Reward and success: the learned reward model on the camera frames (``reward=``, a
``LearnedReward``: success on ``success_frames`` consecutive frames ends the episode), the
operator's success/failure key (an intervention device's events), or both; with
``ground_truth=True`` (the sim bridge only) its ``task/success`` and ``task/progress`` are
reported in ``info`` and, without a learned reward, are the reward.
Interventions: with an ``Intervention`` (hardware.control.intervention), the operator's action
replaces the policy's while its button is held; ``info["action"]`` is what was executed and
``info["intervention"]`` flags it.

Reset: the arm moves to its home pose slowly through the safety filter, then either the robot
resets itself (``reset_mode=auto``: the sim bridge's ``~/reset``) or the env waits for the
operator (``reset_mode=operator``: the device's ``start`` key or ``~/start_episode``). While
the e-stop is latched, reset waits (training pauses) until ``~/reset_estop``. No joint states
for ``connection_timeout_s`` raises ``RobotConnectionError`` in one sentence.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import rclpy
from rclpy.node import Node
from std_msgs.msg import Bool, Float32, Float64MultiArray
from std_srvs.srv import Trigger

from hardware.control.robot_model import load_robot_model
from hardware.control.timing import RateLoop, StepTiming, sleep_until
from hardware.ros.conversions import DEFAULT_COMMAND_TOPICS, RESET_PREFIX, command_type, joint_command
from hardware.ros.estop import EStop
from hardware.ros.homing import Homing
from hardware.ros.instruction import InstructionInput
from hardware.ros.observations import ObservationCache
from hardware.ros.runner import BackgroundSpin
from hardware.safety import SafetyConfig, SafetyFilter, SafetyLimits, limits_of
from robot_rl.contracts import INSTRUCTION_ENCODER, OBS_INSTRUCTION, OBS_STATE, image_key

log = logging.getLogger(__name__)

RESET_MODES = ("auto", "operator")
POLL_S = 0.02


class RobotConnectionError(RuntimeError):
    """The robot (or the sim bridge standing in for it) stopped answering; the message is one sentence."""


@dataclass(frozen=True, kw_only=True)
class RobotEnvConfig(SafetyLimits):
    """The robot env's settings: the safety limits (SafetyLimits' fields, always applied) and these."""

    robot: str = "panda"
    task: str = "reach"  # what the episodes are (the instruction says it to the policy and the reward)
    action_space: str = "ee_delta"
    cameras: tuple[str, ...] = ("front",)
    image_size: int = 84
    control_rate_hz: float = 20.0
    episode_steps: int = 50
    instruction: str = ""  # the operator's words; empty: the latest on instruction_topic
    instruction_topic: str = "instruction"
    success_frames: int = 3  # the reward model's success on this many consecutive frames ends the episode
    success_threshold: float = 0.5
    reset_mode: str = "auto"  # auto: the robot's reset_service after homing | operator: wait for `start`
    reset_service: str = "/sim_bridge/reset"
    home_speed_rad_s: float = 0.6  # homing speed of the fastest joint
    home_tolerance_rad: float = 0.05
    home_timeout_s: float = 20.0
    command_interface: str = "joint_trajectory"
    command_topic: str = ""
    gripper_topic: str = "gripper_controller/commands"
    joint_states_topic: str = "joint_states"
    obs_timeout_s: float = 0.25  # above a camera's period: the bridge renders at 20 Hz
    # Each command goes out this long after its tick (a fixed latency rather than one that varies
    # with the policy's and the learner's load: jitter is what hurts a controller); one that is
    # ready later goes out at once and counts as late. 0: at once.
    command_delay_s: float = 0.02
    connection_timeout_s: float = 5.0  # no usable observation this long: the robot is gone
    start_timeout_s: float = 60.0  # the first observation (and instruction embedding) at construction
    max_stamp_age_s: float = 1.0
    estop_latch_file: str = ""  # empty: $ROBOT_RL_STATE_DIR (or ~/.local/state/robot_rl)/estop-d<domain>-robot_env.latch
    ground_truth: bool = False  # the sim bridge's task/success and task/progress (sim only)
    remap: tuple[tuple[str, str], ...] = ()  # (from, to) topic remaps of the env's node

    def __post_init__(self) -> None:
        if self.reset_mode not in RESET_MODES:
            raise ValueError(f"reset_mode {self.reset_mode!r} is unknown; expected one of {RESET_MODES}.")
        if not 0 <= self.command_delay_s < 1.0 / self.control_rate_hz:
            raise ValueError(f"command_delay_s {self.command_delay_s} must be in [0, one control period).")
        if self.success_frames < 1 or self.episode_steps < 1 or not self.control_rate_hz > 0:
            raise ValueError(f"success_frames ({self.success_frames}), episode_steps ({self.episode_steps}) and "
                             f"control_rate_hz ({self.control_rate_hz}) must be positive.")
        if not self.cameras:
            raise ValueError("the robot env needs at least one camera (cameras=[front]).")
        command_type(self.command_interface)


class RosRobotEnv(Homing, gym.Env):
    """One arm over ROS 2 (see the module docstring). ``close()`` stops commanding and leaves ROS."""

    metadata = {"render_modes": []}

    def __init__(self, config: RobotEnvConfig, reward: Any = None, intervention: Any = None,
                 scaling: dict | None = None, domain_id: int | None = None, embed=None) -> None:
        self.config = cfg = config
        self.reward_model, self.intervention = reward, intervention
        self.interventions_enabled = intervention is not None
        self.robot = load_robot_model(cfg.robot, cfg.action_space, scaling)
        self.period_s = 1.0 / cfg.control_rate_hz
        n = self.robot.n_joints
        state_dim = len(self.robot.state_vector(np.zeros(n), np.zeros(n), np.zeros(len(self.robot.gripper_joint_names))))
        size = int(cfg.image_size)
        dim = int(INSTRUCTION_ENCODER["dim"])
        self.image_keys = [image_key(c) for c in cfg.cameras]
        self.observation_space = gym.spaces.Dict({
            **{k: gym.spaces.Box(0, 255, (size, size, 3), np.uint8) for k in self.image_keys},
            OBS_STATE: gym.spaces.Box(-np.inf, np.inf, (state_dim,), np.float32),
            OBS_INSTRUCTION: gym.spaces.Box(-1.0, 1.0, (dim,), np.float32)})
        action_dim = 5 if cfg.action_space == "ee_delta" else n + 1
        self.action_space = gym.spaces.Box(-1.0, 1.0, (action_dim,), np.float32)
        self.timing = StepTiming()
        self._tick = 0  # ticks since construction (gaps between episodes count two)
        self._loop = RateLoop(cfg.control_rate_hz)  # the control ticks, t0 + k * period from each reset
        self._closed = False
        self._episode_step = 0
        self._streak = 0
        self._progress = 0.0
        self._obs = None  # the hardware.control Observation the next command is computed from
        self._pending: dict[str, Any] | None = None
        self._events: list[str] = []
        self._start_episode = threading.Event()
        self.waiting_for_operator = False
        self._homing: dict = {}
        self._truth = {"success": False, "progress": 0.0}
        self._start_ros(domain_id, embed)
        try:
            self._wait_for_robot()
        except BaseException:
            self.close()
            raise

    # --- ROS side -----------------------------------------------------------------------------
    def _start_ros(self, domain_id: int | None, embed) -> None:
        cfg = self.config
        self._context = rclpy.Context()
        rclpy.init(context=self._context, **({} if domain_id is None else {"domain_id": int(domain_id)}))
        remaps = [arg for src, dst in cfg.remap for arg in ("-r", f"{src}:={dst}")]
        self.node = node = Node("robot_env", context=self._context,
                                cli_args=["--ros-args", *remaps] if remaps else None)
        size = int(cfg.image_size)
        extra = {k: ((size, size, 3), "uint8") for k in self.image_keys}
        self.cache = ObservationCache(node, self.robot.joint_names, self.robot.gripper_joint_names, extra,
                                      cfg.joint_states_topic, max_stamp_age_s=cfg.max_stamp_age_s)
        self.instruction = InstructionInput(node, cfg.instruction_topic, initial=cfg.instruction, embed=embed)
        self.estop = EStop(node, cfg.estop_latch_file, self._reset_estop)
        safety = SafetyConfig.for_robot(self.robot.joint_range, self.robot.velocity_limits_rad_s,
                                        cfg.control_rate_hz, **limits_of(cfg))
        self.safety = self.estop.safety = SafetyFilter(safety, self.robot.ee_position, self.estop.latch)
        topic = cfg.command_topic or DEFAULT_COMMAND_TOPICS[cfg.command_interface]
        self._command_pub = node.create_publisher(command_type(cfg.command_interface), topic, 10)
        self._gripper_pub = node.create_publisher(Float64MultiArray, cfg.gripper_topic, 10)
        self._reset_client = node.create_client(Trigger, cfg.reset_service) if cfg.reset_mode == "auto" else None
        node.create_service(Trigger, "~/start_episode", self._on_start_episode)
        if cfg.ground_truth:
            node.create_subscription(Bool, "task/success", lambda m: self._truth.update(success=bool(m.data)), 10)
            node.create_subscription(Float32, "task/progress", lambda m: self._truth.update(progress=float(m.data)), 10)
        self._spinner = BackgroundSpin(self._context, node, "robot-env-spin")

    def _wait_for_robot(self) -> None:
        deadline = time.monotonic() + self.config.start_timeout_s
        while self.cache.snapshot() is None or self.instruction.vector() is None:
            if time.monotonic() > deadline:
                problem = self.cache.problem() or self.instruction.problem()
                raise RobotConnectionError(
                    f"no usable observation from the robot after {self.config.start_timeout_s:g} s ({problem}); is "
                    f"its driver (or ros.sim's bridge) running on ROS_DOMAIN_ID "
                    f"{self._context.get_domain_id()}?")
            time.sleep(POLL_S)

    def _on_start_episode(self, request, response):
        self._start_episode.set()
        response.success, response.message = True, "starting the next episode"
        return response

    def _reset_estop(self) -> tuple[bool, str]:
        return self.estop.reset_from(self.cache, self.config.obs_timeout_s)

    # --- gym API ------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Home the arm, start the next episode (robot reset or the operator), return its first observation.

        ``seed`` is not used: a robot's episodes are not replayable (the sim bridge seeds its own).
        """
        super().reset(seed=seed)
        self._start_episode.clear()  # only a start said from now on begins this episode
        self._wait_out_estop()
        self._home()
        said = self._begin_episode()
        began_s = time.perf_counter()
        self._episode_step, self._streak, self._progress = 0, 0, 0.0
        if self.intervention is not None:
            self.intervention.reset()
        self._events.clear()
        obs = self._fresh_observation(newer_than_s=began_s, instruction=said)
        self.safety.activate(obs.q, time.perf_counter())
        self._loop.reset()  # this tick starts now
        self._tick += 2  # a new schedule: not consecutive with the last episode's ticks
        out = self._observation(obs)
        self._obs = obs
        if self.reward_model is not None:
            self._progress = float(self._score(out)[0])
        return out, {"instruction": self.instruction.text}

    def step(self, action):
        self.send(action)
        return self.receive()

    def send(self, action) -> None:
        """Command ``action`` now, from the arm's latest measured position, through the safety filter."""
        if self._obs is None:
            raise RuntimeError("send() before reset(): reset the env first.")
        action = np.asarray(action, np.float32).reshape(self.action_space.shape)
        operator = intervened = False
        if self.intervention is not None:
            if self.interventions_enabled:
                taken = self.intervention.step(action)
                action, operator, intervened = np.asarray(taken.action, np.float32), taken.operator, taken.intervened
                self._events.extend(taken.events)
            else:
                self.intervention.step(action)  # keep the device's events flowing; its action is not used
        latest = self.cache.snapshot()
        obs = latest if latest is not None else self._obs
        now = time.perf_counter()
        problem = self.cache.take_fault()
        if problem:
            command = self.safety.fault(problem, now)
        else:
            q_target, gripper = self.robot.joint_targets(np.clip(action, -1.0, 1.0), obs.q, obs.q_gripper)
            command = self.safety.filter(q_target, obs.q, obs.time_s, now, target_time_s=now)
        sent = False
        if command.publish:
            message = joint_command(self.config.command_interface, self.robot.joint_names, command.positions,
                                    self.period_s)
            sleep_until(self._tick_start_s + self.config.command_delay_s)
            sent = self.safety.send_if_safe(obs.time_s, lambda: self._command_pub.publish(message))
            if sent:
                self._gripper_pub.publish(Float64MultiArray(data=np.asarray(gripper, np.float64).tolist()))
                self.timing.sent(self._tick, time.perf_counter() - self._tick_start_s)
        self._pending = {"action": action, "intervention": intervened, "operator": operator,
                         "hold": "" if sent else (command.reason or self.safety.fault_reason or "not sent")}

    @property
    def joint_positions(self) -> np.ndarray:
        """The arm's joint positions in the latest observation (driver order)."""
        return self._obs.q.copy()

    @property
    def between_ticks(self) -> bool:
        """True from ``send`` until ``receive``: this tick's command is out, the next tick not yet due."""
        return self._pending is not None

    def time_left_s(self) -> float:
        """Seconds until the next tick: what a learner may spend between ``send`` and ``receive``."""
        return self._loop.next_tick_s - time.perf_counter()

    @property
    def _tick_start_s(self) -> float:
        return self._loop.next_tick_s - self.period_s

    def receive(self):
        """Wait for the next tick; (obs, reward, terminated, truncated, info) of the step just sent."""
        if self._pending is None:
            raise RuntimeError("receive() without send(): call send(action) first.")
        pending, self._pending = self._pending, None
        missed = self._loop.overruns
        late = self._loop.wait()  # a tick missed altogether (a long pause) is skipped, not caught up
        self._tick += 1 + self._loop.overruns - missed
        self.timing.late_ms.append(max(0.0, late) * 1e3)
        obs = self._fresh_observation(newer_than_s=self._obs.time_s)
        self._obs = obs
        out = self._observation(obs)
        self._episode_step += 1
        events, self._events = self._events, []
        info = {**pending, "instruction": self.instruction.text, "estop": self.estop.tripped}
        reward, success = self._judge(out, info)
        if "success" in events:
            success = True
        terminated = bool(success and (self._streak >= self.config.success_frames or "success" in events))
        truncated = not terminated and (self._episode_step >= self.config.episode_steps or "failure" in events
                                        or info["estop"] or "quit" in events)
        info.update(success=bool(success), operator_label="success" if "success" in events else
                    "failure" if "failure" in events else "", events=tuple(events))
        if self.config.ground_truth:
            info.update(task_success=bool(self._truth["success"]), task_progress=float(self._truth["progress"]))
        return out, float(reward), terminated, bool(truncated), info

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if getattr(self, "safety", None) is not None:
            self.safety.deactivate()
        if self.intervention is not None:
            self.intervention.close()
        if getattr(self, "instruction", None) is not None:
            self.instruction.close()
        if getattr(self, "_spinner", None) is not None:
            self._spinner.close()
            self.node.destroy_node()
        rclpy.try_shutdown(context=self._context)

    # --- the pieces of a step -------------------------------------------------------------------
    def _judge(self, obs: dict[str, np.ndarray], info: dict) -> tuple[float, bool]:
        """This step's reward and whether the frame shows success (the streak counts consecutive ones)."""
        success, reward = False, 0.0
        if self.reward_model is not None:
            progress, success_p = self._score(obs)
            success = bool(success_p >= self.config.success_threshold)
            before, self._progress = self._progress, float(progress)
            reward = float(self.reward_model.reward_fn(np.array([before], np.float32), np.array([progress], np.float32),
                                                       np.array([success_p], np.float32), np.array([False]))[0])
            info.update(progress=float(progress), reward_success=float(success_p))
        elif self.config.ground_truth:
            success, reward = bool(self._truth["success"]), float(self._truth["progress"])
            info.update(progress=reward)
        else:
            info.update(progress=0.0)
        self._streak = self._streak + 1 if success else 0
        return reward, success

    def _score(self, obs: dict[str, np.ndarray]) -> tuple[float, float]:
        frames = {k: obs[k][None] for k in self.image_keys}
        progress, success = self.reward_model.score(frames, [self.instruction.text])
        return float(progress[0]), float(success[0])

    def _observation(self, obs) -> dict[str, np.ndarray]:
        out = {k: obs.extra[k] for k in self.image_keys}
        out[OBS_STATE] = self.robot.state_vector(obs.q, obs.qd, obs.q_gripper).astype(np.float32)
        out[OBS_INSTRUCTION] = self.instruction.vector()
        return out

    def _fresh_observation(self, newer_than_s: float, instruction: str | None = None):
        """The first complete observation whose every input is fresh (and joints newer than
        ``newer_than_s``); RobotConnectionError after ``connection_timeout_s`` without one."""
        cfg = self.config
        deadline = time.monotonic() + cfg.connection_timeout_s
        while True:
            obs = self.cache.snapshot()
            ready = (obs is not None and self.cache.joint_arrival_s() > newer_than_s
                     and max(self.cache.ages_s().values()) <= cfg.obs_timeout_s
                     and (instruction is None or self.instruction.text == instruction))
            if ready:
                return obs
            if time.monotonic() > deadline:
                stale = {k: round(a, 2) for k, a in self.cache.ages_s().items() if a > cfg.obs_timeout_s}
                why = self.cache.problem() or (f"inputs stale for {stale} s" if stale else
                                               f"still waiting for the instruction {instruction!r}")
                raise RobotConnectionError(f"the robot stopped answering: no usable observation for "
                                           f"{cfg.connection_timeout_s:g} s ({why}).")
            self.cache.wait_for_joint_state(self.cache.joint_arrival_s(), POLL_S)

    def _wait_out_estop(self) -> None:
        """Training pauses here while the e-stop is latched; it goes on after ``~/reset_estop``."""
        if not self.estop.tripped:
            return
        log.warning("e-stop latched (%s): training paused until %s/reset_estop", self.estop.reason,
                    self.node.get_fully_qualified_name())
        while self.estop.tripped:
            self._check_alive()
            time.sleep(POLL_S * 5)
        log.info("e-stop reset: training goes on")

    def _check_alive(self) -> None:
        age = self.cache.ages_s()[OBS_STATE]
        if age > self.config.connection_timeout_s:
            raise RobotConnectionError(f"the robot stopped answering: no joint states on "
                                       f"{self.cache.topics[OBS_STATE]} for {age:.1f} s.")

    def _begin_episode(self) -> str | None:
        """Start the next episode; the instruction it expects (None: whatever is latest)."""
        self.safety.deactivate()  # a robot-side reset may move the arm: no command is in flight meanwhile
        if self.config.reset_mode == "operator":
            self._wait_for_operator()
            return None
        response = self._call_reset()
        if not response.success:
            raise RobotConnectionError(f"{self.config.reset_service} refused to reset: {response.message}")
        said = response.message[len(RESET_PREFIX):] if response.message.startswith(RESET_PREFIX) else None
        return None if self.config.instruction else said

    def _call_reset(self):
        cfg = self.config
        deadline = time.monotonic() + cfg.connection_timeout_s
        while not self._reset_client.service_is_ready():
            if time.monotonic() > deadline:
                raise RobotConnectionError(f"the robot's reset service {cfg.reset_service} is not available "
                                           f"(waited {cfg.connection_timeout_s:g} s); use reset_mode=operator on "
                                           "an arm without one.")
            time.sleep(POLL_S)
        done = threading.Event()
        future = self._reset_client.call_async(Trigger.Request())
        future.add_done_callback(lambda _: done.set())
        if not done.wait(cfg.connection_timeout_s + 10.0):
            raise RobotConnectionError(f"{cfg.reset_service} did not answer within {cfg.connection_timeout_s + 10:g} s.")
        return future.result()

    def _wait_for_operator(self) -> None:
        """Until the operator starts the episode: ``~/start_episode`` or the device's ``start``, said
        since this reset began (a start pressed while the arm was homing counts)."""
        log.info("waiting for the operator: press start on the teleop device or call %s/start_episode",
                 self.node.get_fully_qualified_name())
        self.waiting_for_operator = True
        try:
            while not self._start_episode.wait(POLL_S * 5):
                self._check_alive()
                if self.intervention is not None and "start" in self.intervention.poll_events():
                    return
        finally:
            self.waiting_for_operator = False
