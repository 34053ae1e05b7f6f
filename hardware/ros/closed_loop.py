"""Closed-loop evaluation of a policy artifact over real ROS 2 DDS.

``evaluate_over_ros`` starts ``deploy_sim.launch.yaml`` (the sim bridge and the policy node, one
process each, as ``robot-rl launch`` does) and judges them from an evaluator node in this
process: per episode it resets the bridge (``/sim_bridge/reset``) with the policy node inactive,
activates it (``/policy/change_state``), counts ``task/success`` and gathers latency, the policy
node's own per tick (``/policy/timing``) and an end-to-end figure seen from outside. A student
runs as on a robot: the bridge renders the policy's cameras at its image size and publishes them
over DDS, and each reset publishes the episode's instruction, which the node embeds itself. Used by
``robot-rl pipeline`` ("ROS 2 deployment check") and ``robot-rl eval ... ros=true``.
"""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import JointState
from std_msgs.msg import Bool, Float32MultiArray
from std_srvs.srv import Trigger

from hardware.control.timing import percentiles
from hardware.ros.conversions import DEFAULT_COMMAND_TOPICS, command_type
from hardware.ros.diagnostics import ERROR, values_of
from hardware.ros.isolation import LaunchLog, isolated_environment, private_domain
from hardware.ros.launch_file import LaunchError, load_launch_file, resolve_launch_file
from hardware.ros.launcher import Launcher
from hardware.ros.runner import BackgroundSpin

log = logging.getLogger(__name__)

SERVICE_TIMEOUT_S = 20.0  # a reset, or a lifecycle transition, on a busy machine
POLL_S = 0.05
POLICY_STATUS = "robot_rl policy:"  # how the policy node's DiagnosticStatus name starts


class RosEvalError(RuntimeError):
    """The launched nodes did not start, died, or stopped answering; the message says which."""


@dataclass(frozen=True)
class RosEvalConfig:
    policy_path: str
    task: str = "reach"
    robot: str = "panda"
    episodes: int = 10
    seed: int = 200_000  # first episode seed of the bridge
    randomize: str = "none"  # the bridge's randomisation preset (sim/conf/randomize)
    episode_timeout_s: float = 5.0  # wall time from the policy's activation until the episode counts as failed
    backend: str = "auto"
    command_interface: str = "joint_trajectory"
    start_timeout_s: float = 120.0  # processes start + discovery + policy activation, on a busy 2-core machine
    cameras: tuple[str, ...] | None = None  # cameras the bridge renders; None: the policy's (policy.yaml sensors)
    image_size: int = 0  # 0: the policy's

    def __post_init__(self) -> None:
        if self.episodes < 1 or self.episode_timeout_s <= 0 or self.start_timeout_s <= 0:
            raise ValueError(f"episodes ({self.episodes}), episode_timeout_s ({self.episode_timeout_s}) and "
                             f"start_timeout_s ({self.start_timeout_s}) must be positive.")
        if self.seed < 1:
            raise ValueError(f"seed must be at least 1 (the bridge plays seed - 1 while the nodes start), got {self.seed}.")
        command_type(self.command_interface)


def evaluate_over_ros(config: RosEvalConfig, log_path: Path | None = None,
                      on_episode: Callable[[int, bool], None] | None = None) -> dict:
    """Run ``config.episodes`` episodes of the policy driving the sim bridge over DDS; a JSON-ready summary.

    The nodes' output goes to ``log_path`` (or nowhere); ``on_episode(index, success)`` is called
    after each episode. Raises ``RosEvalError`` when the nodes do not start in time, a node dies
    or a service does not answer; the launched processes are stopped in every case.
    """
    started_s = time.monotonic()
    config = with_policy_sensors(config)
    claim = private_domain()  # held for the evaluation: no other robot_rl process takes it meanwhile
    domain_id = claim.domain_id
    # A private e-stop latch: an e-stop left by an evaluation must not stop the robot's own
    # policy node, nor the robot's latch stop the evaluation.
    with claim, LaunchLog(log_path) as launch_log, \
            tempfile.TemporaryDirectory(prefix="robot_rl_ros_eval_") as state_dir:
        stack = _Stack(config, domain_id, launch_log, Path(state_dir) / "estop-policy.latch")
        try:
            stack.start()
            times_s = [_run_episode(stack, config, i, on_episode) for i in range(config.episodes)]
        finally:
            stack.close()
    return _summary(config, times_s, stack.evaluator, domain_id, time.monotonic() - started_s)


def _run_episode(stack: _Stack, config: RosEvalConfig, index: int,
                 on_episode: Callable[[int, bool], None] | None) -> float | None:
    """One episode; its time to success in seconds, None for a failure."""
    start_ns = stack.new_episode()
    evaluator = stack.evaluator
    evaluator.begin_episode(start_ns)
    deadline_s = time.monotonic() + config.episode_timeout_s
    while not evaluator.succeeded.wait(POLL_S) and time.monotonic() < deadline_s:
        stack.check_alive(f"episode {index} to end")
    success_ns = evaluator.end_episode()
    time_s = None if success_ns is None else (success_ns - start_ns) * 1e-9
    if time_s is not None and time_s > config.episode_timeout_s:
        time_s = None  # arrived between two polls, after the deadline
    log.info("ROS 2 episode %d (seed %d): %s", index, config.seed + index,
             "failure" if time_s is None else f"success after {time_s:.2f} s")
    if on_episode is not None:
        on_episode(index, time_s is not None)
    return time_s


class _Evaluator(Node):
    """Listens to the launched nodes: task success, joint states, commands, the policy's timing, diagnostics."""

    def __init__(self, context, command_interface: str) -> None:
        super().__init__("ros_evaluator", context=context)
        self._lock = threading.Lock()
        self.succeeded = threading.Event()
        self._episode_start_ns: int | None = None  # None between episodes: nothing is recorded
        self._success_ns: int | None = None
        self._joint_stamp_ns: int | None = None
        self.timing_ms: list[list[float]] = []  # per tick: latency, compute, infer, obs_age
        self.e2e_ms: list[float] = []
        self.policy_status: dict[str, str] = {}
        self.policy_error = ""  # the policy node's diagnostics message while at ERROR level
        # Best effort on the control loop's topics: an observer must never make the policy node wait.
        self.create_subscription(Bool, "task/success", self._on_success, 10)
        self.create_subscription(JointState, "joint_states", self._on_joint_state, qos_profile_sensor_data)
        self.create_subscription(command_type(command_interface), DEFAULT_COMMAND_TOPICS[command_interface],
                                 self._on_command, qos_profile_sensor_data)
        self.create_subscription(Float32MultiArray, "/policy/timing", self._on_timing, qos_profile_sensor_data)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)
        self.reset_client = self.create_client(Trigger, "/sim_bridge/reset")
        self.lifecycle_client = self.create_client(ChangeState, "/policy/change_state")

    def policy_loaded(self) -> bool:
        # The node reports its runtime once configured, and a student its instruction once embedded
        # (the first loads the sentence encoder: seconds, during which activation is refused).
        return "backend" in self.policy_status and self.policy_status.get("instruction", "-") != ""

    def begin_episode(self, start_ns: int) -> None:
        with self._lock:
            self._episode_start_ns, self._success_ns = start_ns, None
            self.succeeded.clear()

    def end_episode(self) -> int | None:
        """Stop recording; the system time (ns) the episode's first success arrived, or None."""
        with self._lock:
            self._episode_start_ns = None
            return self._success_ns

    def _on_success(self, msg: Bool, info) -> None:
        # Judged by publication time: a success of the previous episode can still be in flight
        # after the episode starts (another DDS reader than the services'), and must not count.
        published_ns = info["source_timestamp"] or time.time_ns()
        with self._lock:
            start_ns = self._episode_start_ns
            if msg.data and start_ns is not None and self._success_ns is None and published_ns >= start_ns:
                self._success_ns = time.time_ns()
                self.succeeded.set()

    def _on_joint_state(self, msg: JointState) -> None:
        self._joint_stamp_ns = msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec

    def _on_command(self, msg) -> None:
        # Approximate, observer-side: the newest joint state stands in for the one the policy read,
        # and the figure includes DDS both ways (bridge -> policy -> here). Both ends use this
        # machine's system time (the bridge stamps joint states with its ROS clock).
        if self._episode_start_ns is not None and self._joint_stamp_ns is not None:
            self.e2e_ms.append((self.get_clock().now().nanoseconds - self._joint_stamp_ns) * 1e-6)

    def _on_timing(self, msg: Float32MultiArray) -> None:
        if self._episode_start_ns is not None and len(msg.data) == 4:
            self.timing_ms.append(list(msg.data))

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        if msg.status and msg.status[0].name.startswith(POLICY_STATUS):
            self.policy_status = values_of(msg)
            self.policy_error = msg.status[0].message if msg.status[0].level == ERROR else ""


class _Stack:
    """deploy_sim's processes under a Launcher thread, and the evaluator node, on one private domain."""

    def __init__(self, config: RosEvalConfig, domain_id: int, launch_log: LaunchLog, latch_file: Path) -> None:
        self.config, self.domain_id, self.launch_log, self.latch_file = config, domain_id, launch_log, latch_file
        self.launcher: Launcher | None = None
        self.evaluator: _Evaluator | None = None
        self._context = self._spinner = self._launch_thread = None
        self._launch_error: BaseException | None = None
        self._policy_active = False

    def start(self) -> None:
        """Launch the nodes; wait until the policy is loaded and the services the episodes use are up."""
        try:
            description = load_launch_file(resolve_launch_file("deploy_sim.launch.yaml"),
                                           _launch_arguments(self.config, self.latch_file))
        except LaunchError as error:
            raise RosEvalError(f"cannot launch deploy_sim for the evaluation: {error}") from None
        deadline_s = time.monotonic() + self.config.start_timeout_s
        with isolated_environment(self.domain_id):  # read by the children (os.environ) and by rclpy.init below
            self.launcher = Launcher(description, self.launch_log)
            self._launch_thread = threading.Thread(target=self._run_launcher, name="ros-eval-launch", daemon=True)
            self._launch_thread.start()
            self._start_evaluator()
            self._wait_for(lambda: len(self.launcher.processes) == len(description.processes), deadline_s,
                           "the node processes to start")
        self._wait_for(self.evaluator.policy_loaded, deadline_s, "the policy node to load the policy (and the "
                       "instruction encoder)")
        for client in (self.evaluator.reset_client, self.evaluator.lifecycle_client):
            self._wait_for(client.service_is_ready, deadline_s, f"{client.srv_name} to appear")

    def _run_launcher(self) -> None:
        try:
            self.launcher.run()
        except BaseException as error:  # noqa: BLE001 - reported by check_alive in the calling thread
            self._launch_error = error

    def _start_evaluator(self) -> None:
        self._context = rclpy.Context()
        rclpy.init(context=self._context, domain_id=self.domain_id)
        self.evaluator = _Evaluator(self._context, self.config.command_interface)
        self._spinner = BackgroundSpin(self._context, self.evaluator, "ros-eval-spin")

    def _wait_for(self, ready: Callable[[], object], deadline_s: float, what: str) -> None:
        while not ready():
            self.check_alive(what)
            if time.monotonic() > deadline_s:
                raise RosEvalError(self._failure(f"timed out after {self.config.start_timeout_s:g} s "
                                                 f"(start_timeout_s) waiting for {what}"))
            time.sleep(POLL_S)

    def check_alive(self, what: str) -> None:
        """Raise RosEvalError when the launcher or one of its nodes has stopped (while waiting for ``what``)."""
        dead = {name: p.returncode for name, p in list(self.launcher.processes.items()) if p.poll() is not None}
        if not dead and self._launch_thread.is_alive():
            return
        self._launch_thread.join(timeout=30.0)  # it stops the other nodes and writes their last words
        cause = (", ".join(f"node {n!r} exited with code {c}" for n, c in dead.items())
                 or f"the launcher stopped ({self._launch_error or 'no node had died'})")
        raise RosEvalError(self._failure(f"stopped while waiting for {what}: {cause}"))

    def new_episode(self) -> int:
        """Reset the bridge with the policy inactive, then activate it; the system time (ns) it took over.

        The reset puts the arm back at once. A policy node left active would see the jump as a
        fault and wait out its recovery; deactivating first and activating after anchors it at
        the measured position at once, as an operator does on a robot.
        """
        if self._policy_active:
            response, _ = self._call(self.evaluator.lifecycle_client, _transition("deactivate"),
                                     "the policy node to deactivate")
            if not response.success:
                raise RosEvalError(self._failure("the policy node refused to deactivate"))
            self._policy_active = False
        response, _ = self._call(self.evaluator.reset_client, Trigger.Request(), "the sim bridge to reset")
        if not response.success:
            raise RosEvalError(self._failure(f"/sim_bridge/reset failed: {response.message}"))
        deadline_s = time.monotonic() + SERVICE_TIMEOUT_S
        while True:  # activation is refused while an observation is stale, as it may be just after the reset
            response, answered_ns = self._call(self.evaluator.lifecycle_client, _transition("activate"),
                                               "the policy node to activate")
            if response.success:
                self._policy_active = True
                return answered_ns
            if time.monotonic() > deadline_s:
                raise RosEvalError(self._failure(f"the policy node refused to activate after the reset: "
                                                 f"{self.evaluator.policy_error or 'see its log'}"))
            time.sleep(POLL_S)

    def _call(self, client, request, what: str) -> tuple[object, int]:
        """Call a service and wait for its answer; (response, system time in ns it arrived)."""
        answered_ns: list[int] = []
        answered = threading.Event()

        def on_answer(_) -> None:
            answered_ns.append(time.time_ns())
            answered.set()

        future = client.call_async(request)
        future.add_done_callback(on_answer)
        deadline_s = time.monotonic() + SERVICE_TIMEOUT_S
        while not answered.wait(POLL_S):
            self.check_alive(what)
            if time.monotonic() > deadline_s:
                raise RosEvalError(self._failure(f"{client.srv_name} did not answer within {SERVICE_TIMEOUT_S:g} s"))
        return future.result(), answered_ns[0]

    def _failure(self, problem: str) -> str:
        where = f"see {self.launch_log.path}" if self.launch_log.path else "pass log_path to keep the nodes' output"
        tail = "\n".join(self.launch_log.lines)
        return f"ROS 2 evaluation of {self.config.policy_path}: {problem}; {where}." + (
            f"\nLast launch output:\n{tail}" if tail else "")

    def close(self) -> None:
        """Stop the launched nodes (always) and the evaluator."""
        try:
            if self.launcher is not None:
                self.launcher.request_shutdown()
                self._launch_thread.join()  # bounded: the launcher escalates to SIGKILL
        finally:
            if self._spinner is not None:
                self._spinner.close()
                self.evaluator.destroy_node()
            if self._context is not None:
                rclpy.try_shutdown(context=self._context)


def with_policy_sensors(config: RosEvalConfig) -> RosEvalConfig:
    """``config`` with the cameras and image size the policy reads where it leaves them unset."""
    from dataclasses import replace

    from robot_rl.contracts import OBS_IMAGES_PREFIX
    from robot_rl.policy.spec import ContractError, PolicySpec

    try:
        observations = PolicySpec.load(config.policy_path).observations
    except ContractError:
        observations = []  # the policy node reports the broken artifact in its own words
    images = {o.key[len(OBS_IMAGES_PREFIX):]: o.shape for o in observations if o.key.startswith(OBS_IMAGES_PREFIX)}
    cameras = tuple(images) if config.cameras is None else config.cameras
    image_size = config.image_size or (int(next(iter(images.values()))[0]) if images else 84)
    return replace(config, cameras=cameras, image_size=image_size)


def _launch_arguments(config: RosEvalConfig, latch_file: Path) -> dict[str, str]:
    # The bridge plays seed - 1 while the nodes start; the first reset brings episode 0 its seed.
    # No autostart: every episode activates the policy itself (see _Stack.new_episode).
    return {"policy": config.policy_path, "task": config.task, "robot": config.robot, "seed": str(config.seed - 1),
            "randomize": config.randomize,
            "cameras": f"[{', '.join(config.cameras)}]", "image_size": str(config.image_size),
            "backend": config.backend, "command_interface": config.command_interface, "autostart": "false",
            "estop_latch_file": str(latch_file)}


def _transition(name: str) -> ChangeState.Request:
    transition_id = {"activate": Transition.TRANSITION_ACTIVATE, "deactivate": Transition.TRANSITION_DEACTIVATE}[name]
    return ChangeState.Request(transition=Transition(id=transition_id))


def _summary(config: RosEvalConfig, times_s: list[float | None], evaluator: _Evaluator, domain_id: int,
             wall_s: float) -> dict:
    timing_ms = np.array(evaluator.timing_ms, np.float64).reshape(-1, 4)
    samples = {"latency_ms": timing_ms[:, 0], "compute_ms": timing_ms[:, 1], "infer_ms": timing_ms[:, 2],
               "e2e_ms": np.array(evaluator.e2e_ms, np.float64)}
    samples = {name: values[np.isfinite(values)] for name, values in samples.items()}
    successes = [t is not None for t in times_s]
    status = evaluator.policy_status
    result = {"episodes": len(times_s), "successes": successes, "success_rate": sum(successes) / len(times_s),
              "time_to_success_s": times_s, "episode_timeout_s": config.episode_timeout_s, "seed": config.seed}
    result.update({name: [round(float(v), 4) for v in values] for name, values in samples.items()})
    for name in ("latency_ms", "infer_ms", "e2e_ms"):
        result[f"{name}_p50"], result[f"{name}_p99"] = percentiles(samples[name], 50, 99)
    result.update(backend=status.get("backend", ""), holds=int(status.get("holds", 0)),
                  ticks=int(status.get("ticks", 0)), control_rate_hz=float(status.get("control_rate_hz", "nan")),
                  cameras=list(config.cameras), image_size=config.image_size, instruction=status.get("instruction", ""),
                  domain_id=domain_id, wall_s=wall_s)
    return result

