"""One control tick, ROS-free: latest observations -> policy -> joint targets -> safety filter.

The ROS 2 policy node (and the latency benchmark) own the threads, the messages and the clock;
this class owns the order of operations, so that every command, whoever sends it, has gone
through the same observation checks and the same safety filter. A bad observation (a message
the cache refused, non-finite values, a stale input) or a non-finite policy output is a
*fault* of the safety filter: nothing is sent, and motion resumes only as its fault rule allows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from hardware.control.robot_model import RobotModel
from hardware.safety import HoldReason, SafeCommand, SafetyFilter
from robot_rl.contracts import OBS_STATE
from robot_rl.policy.runtime import PolicyRuntime


@dataclass
class Observation:
    """The latest robot observation: driver-ordered joints, gripper joints, extra policy inputs.

    ``time_s`` is when the oldest input the policy needs arrived (the clock the tick uses).
    """

    q: np.ndarray
    qd: np.ndarray
    q_gripper: np.ndarray
    time_s: float
    extra: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class TickResult:
    command: SafeCommand
    gripper: np.ndarray | None = None
    action: np.ndarray | None = None
    infer_s: float = 0.0


class PolicyController:
    """Runs the policy on observations and returns safe joint commands (and gripper targets)."""

    def __init__(self, runtime: PolicyRuntime, robot: RobotModel, safety: SafetyFilter) -> None:
        self.runtime, self.robot, self.safety = runtime, robot, safety
        self._gripper: np.ndarray | None = None
        self._state_buffer = runtime.inputs.get(OBS_STATE)

    def activate(self, obs: Observation, now_s: float) -> None:
        """Start commanding from the measured position (the safety filter ramps in)."""
        self.safety.activate(obs.q, now_s)
        self._gripper = None

    def tick(self, obs: Observation | None, now_s: float, problem: str = "") -> TickResult:
        """The command for this tick: a new safe target, or nothing (inactive, e-stop, a fault).

        ``problem`` is why the observation source has no usable observation (the cache's
        reason); it is a fault like any other.
        """
        if problem or obs is None:
            return TickResult(self.safety.fault(problem or "no observation", now_s))
        stop = self.safety.check_inputs(obs.q, obs.time_s, now_s)
        if stop is None and not _finite(obs):
            stop = self.safety.fault(HoldReason.NON_FINITE_OBSERVATION, now_s)
        if stop is not None:
            return TickResult(stop)
        start = time.perf_counter()
        self._fill_inputs(obs)
        action = self.runtime.act().copy()
        end = time.perf_counter()
        if not np.all(np.isfinite(action)):
            return TickResult(self.safety.fault(HoldReason.NON_FINITE_TARGET, end), None, action, end - start)
        q_target, gripper = self.robot.joint_targets(action, obs.q, obs.q_gripper)
        # Filtered at the time inference ended: a slow inference shows as an old observation.
        command = self.safety.filter(q_target, obs.q, obs.time_s, end, target_time_s=now_s)
        if command.publish:
            self._gripper = gripper
        return TickResult(command, self._gripper if command.publish else None, action, end - start)

    def _fill_inputs(self, obs: Observation) -> None:
        if self._state_buffer is not None:
            self.robot.state_vector(obs.q, obs.qd, obs.q_gripper, out=self._state_buffer)
        for key, value in obs.extra.items():
            buffer = self.runtime.inputs.get(key)
            if buffer is not None:
                np.copyto(buffer, value, casting="same_kind")


def _finite(obs: Observation) -> bool:
    arrays = [obs.qd, obs.q_gripper, *(v for v in obs.extra.values() if v.dtype.kind == "f")]
    return all(np.all(np.isfinite(a)) for a in arrays)
