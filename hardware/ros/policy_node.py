"""The policy node: a lifecycle node that runs a policy artifact at a fixed rate on the robot.

Configure (done at start) loads the artifact, checks it against the robot config, warms the
fastest backend up and leaves the node **inactive**: it subscribes but commands nothing.
Activate (lifecycle ``change_state``, ``python -m hardware.ros.lifecycle activate /policy``, or
``autostart``) refuses with one clear sentence unless every input the policy reads is arriving,
fresh and of the right layout; then a control thread ticks at the control rate:
latest observation -> policy -> joint targets -> safety filter -> command.

Safety (see ``hardware.safety``): every command is within one step of the *measured* joint
position; any fault (a bad or stale input, a jump of the measured position, a non-finite policy
output, an observation too old by publish time, a stalled control thread) sends nothing, and
motion resumes only after ``fault_recovery_s`` of good inputs, re-anchored and ramped in;
repeated faults latch until the node is activated again. The e-stop latches in
``estop_latch_file`` too, so it survives a restart: activate and autostart refuse until
``~/reset_estop``. Parameters are read once at start; setting one later is refused.

``require_deployable`` (deploy_robot) refuses a sim-only policy at configure; a student's
instruction is embedded off the control thread (hardware.ros.instruction), required to activate.

Topics (relative, remap as needed): in ``joint_states`` and one per extra policy input
(``<camera>/image_raw``, ``observations/<name>``, ``instruction``), ``estop`` (std_msgs/Bool, true trips; a
BEST_EFFORT subscription, so reliable and best-effort publishers both reach it; false never
clears it);
out the arm command (``joint_trajectory_controller/joint_trajectory`` or
``forward_position_controller/commands``), ``gripper_controller/commands``, ``~/action`` and
``/diagnostics`` (observation age, inference time, latency and tick jitter p50/p99), and
``~/timing`` (std_msgs/Float32MultiArray, once per tick: ``[latency_ms, compute_ms, infer_ms,
obs_age_ms]``, NaN where the tick had none, e.g. no observation or a hold without inference).
Services: ``~/estop`` and ``~/reset_estop`` (std_srvs/Trigger); the e-stop latches until reset.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from dataclasses import dataclass

from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.lifecycle import LifecycleNode, TransitionCallbackReturn
from rclpy.publisher import Publisher
from rclpy.service import Service
from rclpy.subscription import Subscription
from rclpy.timer import Timer
from std_msgs.msg import Float32MultiArray, Float64MultiArray

from hardware.control.robot_model import load_robot_model
from hardware.control.tick import PolicyController, TickResult
from hardware.control.accounting import TickAccount
from hardware.control.timing import TickSchedule
from hardware.ros import diagnostics
from hardware.ros.conversions import DEFAULT_COMMAND_TOPICS, command_type, joint_command, vector
from hardware.ros.estop import EStop
from hardware.ros.lifecycle import guard_transitions
from hardware.ros.observations import ObservationCache
from hardware.ros.params import declare_config
from hardware.ros.runner import check_executor, loop_guard, one_sentence, run_node
from hardware.safety import CommandWatchdog, SafetyConfig, SafetyFilter, SafetyLimits, limits_of
from robot_rl.contracts import OBS_STATE, ArraySpec
from robot_rl.policy.runtime import load_runtime
from robot_rl.policy.spec import PolicySpec


AUTOSTART_RETRY_S = 1.0  # between autostart attempts after a refusal


@dataclass(frozen=True)
class PolicyNodeConfig(SafetyLimits):
    """Parameters of the policy node: the safety limits (SafetyLimits' fields and defaults, always
    applied) and these."""

    policy_path: str = ""
    robot: str = "panda"
    backend: str = "auto"  # auto | onnxruntime-tensorrt | onnxruntime-cuda | torch-cuda | onnxruntime-cpu | torch-cpu
    threads: int = 1
    warmup_runs: int = 50
    control_rate_hz: float = 0.0  # 0: the artifact's control_rate_hz
    command_interface: str = "joint_trajectory"  # joint_trajectory | position_array
    command_topic: str = ""  # empty: the interface's usual controller topic
    gripper_topic: str = "gripper_controller/commands"
    joint_states_topic: str = "joint_states"
    autostart: bool = False
    max_stamp_age_s: float = 1.0  # header stamps further than this from the node's clock are refused
    estop_latch_file: str = ""  # empty: $ROBOT_RL_STATE_DIR (or ~/.local/state/robot_rl)/estop-d<domain>-<node>.latch
    diagnostics_period_s: float = 1.0
    spin_s: float = 2e-4  # busy-wait this long before each tick, for a punctual wake-up
    phase_lock: bool = True  # tick just after the joint states arrive (see hardware.control.timing.PhaseLock)
    tick_on_joint_state: bool = True  # at each tick time wait (up to half a period) for the next joint state, then act on it
    realtime_priority: int = 0  # > 0: SCHED_FIFO priority for the control thread (needs CAP_SYS_NICE)
    gil_switch_interval_s: float = 2e-4  # how soon the control thread gets the GIL back from callbacks
    require_deployable: bool = False  # true on a real arm: refuse a policy that reads sim-only state
    instruction: str = ""  # a language-conditioned policy's first instruction, until one arrives on `instruction`
    executor: str = "events"  # rclpy's EventsExecutor (less jitter: bench/RESULTS.md ros_latency) | single

    def __post_init__(self) -> None:
        if not self.policy_path:
            raise ValueError("policy_path is empty; pass the exported policy directory (policy:=runs/.../policy).")
        command_type(self.command_interface)
        check_executor(self.executor)


class PolicyNode(LifecycleNode):
    def __init__(self, **node_kwargs) -> None:
        super().__init__("policy", **node_kwargs)
        guard_transitions(self)  # a transition the state lacks is refused, not a crash
        self.config = declare_config(self, PolicyNodeConfig)
        # Python's default 5 ms GIL switch interval would add up to 5 ms of jitter whenever a
        # subscription callback holds the GIL as a tick wakes up.
        sys.setswitchinterval(self.config.gil_switch_interval_s)
        self._set_priority(offset=1)  # this thread runs the executor (subscription callbacks)
        self.configure_error = self.refusal = ""
        self._active = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._tick_lock = threading.Lock()
        self.account = TickAccount()
        self._loop: TickSchedule | None = None
        self._diag_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(self.config.diagnostics_period_s, self._publish_diagnostics)
        self.add_on_set_parameters_callback(self._refuse_parameter_change)
        # The e-stop is heard in every lifecycle state, configured or not, and outlives a cleanup.
        self.estop = EStop(self, self.config.estop_latch_file, self._reset_estop)
        self.safety: SafetyFilter | None = None

    def _refuse_parameter_change(self, parameters) -> SetParametersResult:
        # The safety limits are read once; a change that silently did nothing (or applied
        # half-way through a motion) would be worse than a refusal.
        names = ", ".join(p.name for p in parameters)
        return SetParametersResult(successful=False, reason=f"{names}: parameters are read at start; restart the "
                                                            "node to change them.")

    # --- lifecycle --------------------------------------------------------------------------
    def on_configure(self, state) -> TransitionCallbackReturn:
        self.configure_error = ""
        try:
            self._configure()
        except Exception as error:  # noqa: BLE001 - a broken artifact raises whatever its loader raises
            self.configure_error = one_sentence(error)
            self.get_logger().error(f"cannot configure: {self.configure_error}")
            self.runtime = None
            self._publish_diagnostics()
            return TransitionCallbackReturn.FAILURE
        self.get_logger().info(f"configured: {self.config.policy_path} on {self.runtime.describe()}, "
                               f"{self.rate_hz:g} Hz, inactive until activated")
        return TransitionCallbackReturn.SUCCESS

    def _configure(self) -> None:
        cfg = self.config
        spec = PolicySpec.load(cfg.policy_path)
        if cfg.require_deployable:
            spec.check_deployable(cfg.policy_path)
        self.robot = load_robot_model(cfg.robot, spec.action.get("space", ""), spec.action.get("scaling"))
        n = self.robot.n_joints
        provided = {OBS_STATE: ArraySpec((2 * n + 8,), "float32")}
        extra = {o.key: (tuple(o.shape), o.dtype) for o in spec.observations if o.key != OBS_STATE}
        provided.update({k: ArraySpec(shape, dtype) for k, (shape, dtype) in extra.items()})
        self.runtime = load_runtime(cfg.policy_path, cfg.backend, robot=cfg.robot, joint_names=self.robot.joint_names,
                                    obs_specs=provided, threads=cfg.threads, warmup_runs=cfg.warmup_runs)
        self.rate_hz = float(cfg.control_rate_hz or spec.control_rate_hz)
        if cfg.control_rate_hz and abs(cfg.control_rate_hz - spec.control_rate_hz) > 1e-9:
            self.get_logger().warning(f"running at {cfg.control_rate_hz:g} Hz; the policy was trained at "
                                      f"{spec.control_rate_hz:g} Hz and its actions are per control step.")
        safety = SafetyConfig.for_robot(self.robot.joint_range, self.robot.velocity_limits_rad_s, self.rate_hz,
                                        **limits_of(cfg))
        self.safety = self.estop.safety = SafetyFilter(safety, self.robot.ee_position, self.estop.latch)
        self.controller = PolicyController(self.runtime, self.robot, self.safety)
        self.cache = ObservationCache(self, self.robot.joint_names, self.robot.gripper_joint_names, extra,
                                      cfg.joint_states_topic, max_stamp_age_s=cfg.max_stamp_age_s,
                                      instruction=cfg.instruction, artifact=cfg.policy_path)
        topic = cfg.command_topic or DEFAULT_COMMAND_TOPICS[cfg.command_interface]
        self._command_pub = self.create_publisher(command_type(cfg.command_interface), topic, 10)
        self._gripper_pub = self.create_publisher(Float64MultiArray, cfg.gripper_topic, 10)
        self._action_pub = self.create_publisher(Float32MultiArray, "~/action", 10)
        self._timing_pub = self.create_publisher(Float32MultiArray, "~/timing", 10)
        self._timing_msg = Float32MultiArray()  # reused every tick
        self._watchdog = CommandWatchdog(cfg.command_timeout_s)
        # Everything configure creates, so cleanup can take it down and configure run again.
        self._configured = [*self.cache.subscriptions, self._command_pub, self._gripper_pub, self._action_pub,
                            self._timing_pub,
                            self.create_timer(cfg.command_timeout_s / 2, self._check_control_thread)]
        if cfg.autostart:
            self._autostart_tried_s = -math.inf
            self._autostart = self.create_timer(0.2, self._try_autostart)
            self._configured.append(self._autostart)

    def on_activate(self, state) -> TransitionCallbackReturn:
        problem = self._activation_problem()
        if problem:
            self.refusal = f"refusing to activate: {problem}"
            self.get_logger().error(self.refusal)
            self._publish_diagnostics()
            return TransitionCallbackReturn.FAILURE
        obs = self.cache.snapshot()
        if obs is None:  # the stream went bad between the check and now
            self.refusal = f"refusing to activate: {self.cache.problem() or 'no observation'}"
            self.get_logger().error(self.refusal)
            return TransitionCallbackReturn.FAILURE
        self.refusal = ""
        with self._tick_lock:
            self.cache.take_fault()  # bad messages before activation were refused then; they are not faults now
            self.controller.activate(obs, time.perf_counter())
        self._start_thread()
        self._active = True
        self.get_logger().info(f"active: commanding {self.robot.n_joints} joints at {self.rate_hz:g} Hz")
        return super().on_activate(state)

    def _activation_problem(self) -> str:
        problem = self.cache.problem()
        if problem:
            return problem
        if self.estop.tripped:
            return f"the e-stop is latched ({self.estop.reason}); call ~/reset_estop first."
        for key, age_s in self.cache.ages_s().items():
            if age_s > self.config.obs_timeout_s:
                return (f"{self.cache.topics[key]} last arrived {age_s:.2f} s ago "
                        f"(obs_timeout_s {self.config.obs_timeout_s}).")
        return ""

    def on_deactivate(self, state) -> TransitionCallbackReturn:
        self._stop_thread()
        self.safety.deactivate()
        self._active = False
        return super().on_deactivate(state)

    def on_cleanup(self, state) -> TransitionCallbackReturn:
        self._stop_thread()
        destroyers = ((Publisher, self.destroy_publisher), (Subscription, self.destroy_subscription),
                      (Service, self.destroy_service), (Timer, self.destroy_timer))
        for entity in self._configured:
            next(destroy for kind, destroy in destroyers if isinstance(entity, kind))(entity)
        self._configured = []
        self.cache.close()
        self.runtime = None
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state) -> TransitionCallbackReturn:
        self._stop_thread()
        return TransitionCallbackReturn.SUCCESS

    def _try_autostart(self) -> None:
        """Activate once every input arrives; a refusal (say, an observation stale for a moment
        on a busy machine) is retried each second. Never after an e-stop: that needs a person."""
        if self.cache.waiting():
            return  # wait for the robot (and the first instruction) to appear
        if self.estop.tripped:
            self._autostart.cancel()
            self.get_logger().warning("autostart abandoned: the e-stop is latched; call ~/reset_estop, then "
                                      "activate by hand")
            return
        now = time.monotonic()
        if now - self._autostart_tried_s < AUTOSTART_RETRY_S:
            return
        self._autostart_tried_s = now
        self.trigger_activate()
        if self._active:
            self._autostart.cancel()

    # --- control thread ---------------------------------------------------------------------
    def _start_thread(self) -> None:
        self._stop.clear()
        self._loop = TickSchedule(self.rate_hz, self.config.spin_s, self.config.phase_lock,
                                  self.cache.wait_for_joint_state if self.config.tick_on_joint_state else None)
        self._watchdog.feed(time.perf_counter())
        self._thread = threading.Thread(target=loop_guard, args=(self, self._control_loop), name="policy-control",
                                        daemon=True)
        self._thread.start()

    def _stop_thread(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5.0)
            self._thread = None

    def _control_loop(self) -> None:
        self._set_priority()
        while not self._stop.is_set():
            late_s = self._loop.wait()
            start = time.perf_counter()
            joint_arrival = self.cache.joint_arrival_s()
            problem = self.cache.take_fault()
            obs = self.cache.snapshot()
            if obs is None:
                problem = problem or self.cache.problem() or "no observation"
            with self._tick_lock:
                result = self.controller.tick(obs, start, problem)
            self._publish(result, obs)
            end = time.perf_counter()
            self._watchdog.feed(end)
            self._account(result, obs, start, end, late_s, joint_arrival)
            self.account.phase_shifts += self._loop.observed(joint_arrival)

    def _set_priority(self, offset: int = 0) -> None:
        """SCHED_FIFO for the calling thread: the control thread, and one below it the executor's
        (so observations are taken in promptly); a no-op unless ``realtime_priority`` > 0."""
        if self.config.realtime_priority <= 0:
            return
        try:
            os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(max(1, self.config.realtime_priority - offset)))
        except (PermissionError, OSError) as error:
            self.get_logger().warning(f"keeping normal priority: SCHED_FIFO refused ({error})")

    def _publish(self, result: TickResult, obs) -> None:
        command = result.command
        if not command.publish or obs is None:
            return
        message = joint_command(self.config.command_interface, self.robot.joint_names, command.positions,
                                1.0 / self.rate_hz)
        if not self.safety.send_if_safe(obs.time_s, lambda: self._command_pub.publish(message)):
            return
        if result.gripper is not None:
            self._gripper_pub.publish(Float64MultiArray(data=result.gripper.tolist()))
        if result.action is not None:
            self._action_pub.publish(vector(result.action))

    def _account(self, result: TickResult, obs, start: float, end: float, late_s: float, joint_arrival: float) -> None:
        self._timing_msg.data = self.account.record(result, None if obs is None else obs.time_s, start, end, late_s,
                                                    joint_arrival, self.safety.fault_reason)
        self._timing_pub.publish(self._timing_msg)
        fault = self.safety.latched_reason or self.safety.fault_reason
        if self.account.fault_changed(fault):
            if fault:
                self.get_logger().warning(f"fault: {fault}; sending nothing until the inputs are good for "
                                          f"{self.config.fault_recovery_s:g} s" if not self.safety.latched_reason
                                          else f"fault latched: {fault}")
            else:
                self.get_logger().info("fault cleared: ramping in from the measured position")

    def _check_control_thread(self) -> None:
        """A fault, from the executor, when the control thread has stopped ticking (e.g. stuck inference):
        whatever that tick computes is not sent, and motion resumes only by the fault rule."""
        now = time.perf_counter()
        if not self._active or not self._watchdog.expired(now):
            return
        self.safety.fault("control_thread_stalled", now)
        self.account.hold_reason = "control_thread_stalled"
        self.get_logger().error(f"control thread has not ticked for {self._watchdog.age_s(now):.3f} s; sending "
                                "nothing", throttle_duration_sec=1.0)

    # --- e-stop (topic and services: hardware.ros.estop) ----------------------------------
    def _reset_estop(self) -> tuple[bool, str]:
        if self.safety is None or getattr(self, "runtime", None) is None:
            return False, "cannot reset the e-stop before the node is configured (it needs fresh joint states)."
        with self._tick_lock:
            return self.estop.reset_from(self.cache, self.config.obs_timeout_s)

    # --- diagnostics ------------------------------------------------------------------------
    def _publish_diagnostics(self) -> None:
        level, message = self._summary()
        values = {"state": "active" if self._active else "inactive", "policy": self.config.policy_path}
        runtime = getattr(self, "runtime", None)
        if runtime is not None:
            values.update(backend=runtime.backend, backend_detail=runtime.describe(), control_rate_hz=self.rate_hz,
                          ticks=self.account.ticks, holds=self.account.holds, hold_reason=self.account.hold_reason,
                          overruns=self._loop.overruns if self._loop else 0, phase_shifts=self.account.phase_shifts,
                          estop=self.estop.reason, estop_latch_file=str(self.estop.latch.path or ""),
                          fault=self.safety.fault_reason, fault_latched=self.safety.latched_reason,
                          faults=self.safety.faults)
            values.update({"instruction": self.cache.instruction.text} if self.cache.instruction else {})
            for name, stats in self.account.stats.items():
                values.update(diagnostics.percentile_values(f"{name}_ms", stats))
        self._diag_pub.publish(diagnostics.diagnostic_array(f"robot_rl policy: {self.get_fully_qualified_name()}",
                                                            level, message, values, self.get_clock().now().to_msg()))

    def _summary(self) -> tuple[bytes, str]:
        if self.configure_error:
            return diagnostics.ERROR, f"cannot configure: {self.configure_error}"
        if self.estop.tripped:
            return diagnostics.ERROR, f"e-stop latched ({self.estop.reason})"
        if self.refusal:
            return diagnostics.ERROR, self.refusal
        if self.safety is not None and self.safety.latched_reason:
            return diagnostics.ERROR, f"fault latched: {self.safety.latched_reason}"
        if not self._active:
            return diagnostics.WARN, "inactive"
        if self.account.hold_reason:
            return diagnostics.WARN, f"holding: {self.account.hold_reason}"
        return diagnostics.OK, "active"

    def close(self) -> None:
        self._stop_thread()
        if getattr(self, "cache", None) is not None:
            self.cache.close()


def _configure_now(node: PolicyNode) -> None:
    node.trigger_configure()
    if node.configure_error:
        raise ValueError(node.configure_error)


def main(argv: list[str] | None = None) -> int:
    return run_node(PolicyNode, "policy", argv, after_start=_configure_now)


if __name__ == "__main__":
    raise SystemExit(main())
