"""``SafetyFilter``: the last stage before any joint command leaves the process.

Per call, in this order: inactive or e-stopped -> publish nothing; non-finite or stale
observation, missing, non-finite or expired target -> hold the last safe command; otherwise
clip to the joint position limits, limit the change per step (step limit, joint velocity x
period, scaled by the ramp-in after activation; the whole step shrinks, so its direction holds)
and pull the step back until the end effector stays inside the workspace box. The returned
command is always finite and within every limit the robot can reach from where it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Callable

import numpy as np

from hardware.safety.config import SafetyConfig
from hardware.safety.watchdog import EStopLatch

WORKSPACE_BISECTIONS = 8


class HoldReason(str, Enum):
    """Why the filter held or stopped instead of passing a new target."""

    INACTIVE = "inactive"
    ESTOP = "estop"
    NON_FINITE_OBSERVATION = "non_finite_observation"
    STALE_OBSERVATION = "stale_observation"
    NO_TARGET = "no_target"
    NON_FINITE_TARGET = "non_finite_target"
    COMMAND_TIMEOUT = "command_timeout"
    WORKSPACE = "workspace"


@dataclass(frozen=True)
class SafeCommand:
    """What to send: ``positions`` (None means send nothing), whether it is a hold, and why.

    ``limits`` names the limits that changed the target: ``joint_limit``, ``step_limit``,
    ``workspace``.
    """

    positions: np.ndarray | None
    held: bool = False
    reason: str = ""
    limits: tuple[str, ...] = ()

    @property
    def publish(self) -> bool:
        return self.positions is not None


class SafetyFilter:
    """Stateful filter for one arm; ``ee_position(q)`` is the arm's forward kinematics."""

    def __init__(self, config: SafetyConfig, ee_position: Callable[[np.ndarray], np.ndarray]) -> None:
        self.config = config
        self.ee_position = ee_position
        self.estop = EStopLatch()
        self._low = np.asarray(config.joint_pos_low_rad, dtype=np.float64)
        self._high = np.asarray(config.joint_pos_high_rad, dtype=np.float64)
        self._step = config.step_limits_rad()
        self._box_low = np.asarray(config.workspace_low_m, dtype=np.float64)
        self._box_high = np.asarray(config.workspace_high_m, dtype=np.float64)
        self._last: np.ndarray | None = None
        self._active_since_s: float | None = None

    @property
    def active(self) -> bool:
        return self._active_since_s is not None

    @property
    def last_command(self) -> np.ndarray | None:
        return None if self._last is None else self._last.copy()

    def activate(self, q_measured: np.ndarray, now_s: float) -> None:
        """Start from where the arm is; the step limit ramps in from zero over ``ramp_in_s``."""
        q = np.asarray(q_measured, dtype=np.float64)
        if q.shape != self._low.shape or not np.all(np.isfinite(q)):
            raise ValueError(f"cannot activate the safety filter from joint positions {q.tolist()}: "
                             f"expected {self._low.size} finite values.")
        self._last = q.copy()
        self._active_since_s = now_s

    def deactivate(self) -> None:
        self._active_since_s = None

    def trip_estop(self, reason: str = "e-stop") -> None:
        """Latch the e-stop: nothing is sent until :meth:`reset_estop`."""
        self.estop.trip(reason)

    def reset_estop(self, q_measured: np.ndarray, now_s: float) -> bool:
        """Clear the e-stop and, when active, ramp in again from the measured position."""
        was = self.estop.reset()
        if self.active:
            self.activate(q_measured, now_s)
        return was

    def ramp(self, now_s: float) -> float:
        """Fraction of the step limit allowed now: 0 at activation, 1 after ``ramp_in_s``."""
        if self._active_since_s is None:
            return 0.0
        if self.config.ramp_in_s <= 0:
            return 1.0
        return float(np.clip((now_s - self._active_since_s) / self.config.ramp_in_s, 0.0, 1.0))

    def hold(self, reason: HoldReason | str) -> SafeCommand:
        """The last safe command again (nothing while inactive or e-stopped)."""
        reason = HoldReason(reason).value if isinstance(reason, HoldReason) else str(reason)
        if not self.active or self.estop.tripped or self._last is None:
            stop = HoldReason.ESTOP.value if self.estop.tripped else HoldReason.INACTIVE.value
            return SafeCommand(None, held=True, reason=stop)
        return SafeCommand(self._last.copy(), held=True, reason=reason)

    def check_inputs(self, q_measured: np.ndarray, obs_time_s: float, now_s: float) -> SafeCommand | None:
        """The hold (or stop) that ``filter`` would return for these inputs whatever the target, else None.

        Lets a caller skip inference when the observation is already unusable.
        """
        if not self.active or self.estop.tripped:
            return self.hold(HoldReason.INACTIVE)
        if not np.all(np.isfinite(q_measured)):
            return self.hold(HoldReason.NON_FINITE_OBSERVATION)
        if not now_s - obs_time_s <= self.config.obs_timeout_s:  # also catches a NaN time stamp
            return self.hold(HoldReason.STALE_OBSERVATION)
        return None

    def filter(self, target: np.ndarray | None, q_measured: np.ndarray, obs_time_s: float, now_s: float,
               target_time_s: float | None = None) -> SafeCommand:
        """The command to send for ``target`` given the latest observation and the time now."""
        problem = self.check_inputs(q_measured, obs_time_s, now_s)
        if problem is not None:
            return problem
        if target is None:
            return self.hold(HoldReason.NO_TARGET)
        target = np.asarray(target, dtype=np.float64)
        if target.shape != self._low.shape or not np.all(np.isfinite(target)):
            return self.hold(HoldReason.NON_FINITE_TARGET)
        if target_time_s is not None and not now_s - target_time_s <= self.config.command_timeout_s:
            return self.hold(HoldReason.COMMAND_TIMEOUT)
        return self._limit(target, now_s)

    def _limit(self, target: np.ndarray, now_s: float) -> SafeCommand:
        limits = []
        clipped = np.clip(target, self._low, self._high)
        if not np.array_equal(clipped, target):
            limits.append("joint_limit")
        delta = clipped - self._last
        # Scale the whole step, not each joint apart: clipping joints one by one would bend the
        # end effector's path (an IK step clipped per joint can move the hand the wrong way).
        allowed = self._step * self.ramp(now_s)
        scale = float(np.min(np.divide(allowed, np.abs(delta), out=np.full_like(delta, np.inf),
                                       where=np.abs(delta) > 0), initial=np.inf))
        if scale < 1.0:
            delta = delta * scale
            limits.append("step_limit")
        command, inside = self._inside_workspace(self._last, delta)
        if command is None:
            return self.hold(HoldReason.WORKSPACE)
        if not inside:
            limits.append("workspace")
        self._last = command
        return SafeCommand(command.copy(), limits=tuple(limits))

    def _inside_workspace(self, start: np.ndarray, delta: np.ndarray) -> tuple[np.ndarray | None, bool]:
        """``start + delta`` if its end effector is in the box, else the longest safe part of the step.

        From outside the box (e.g. activated there) only steps that bring the end effector
        closer to the box are allowed; returns (None, False) when no part of the step is safe.
        """
        candidate = start + delta
        outside = self._box_distance(self.ee_position(candidate))
        if outside == 0.0:
            return candidate, True
        start_outside = self._box_distance(self.ee_position(start))
        if start_outside > 0.0:
            return (candidate, False) if outside < start_outside else (None, False)
        lo, hi = 0.0, 1.0  # invariant: start + lo*delta is inside, start + hi*delta is not
        for _ in range(WORKSPACE_BISECTIONS):
            mid = 0.5 * (lo + hi)
            if self._box_distance(self.ee_position(start + mid * delta)) == 0.0:
                lo = mid
            else:
                hi = mid
        return start + lo * delta, False

    def _box_distance(self, point: np.ndarray) -> float:
        below, above = self._box_low - point, point - self._box_high
        return float(np.linalg.norm(np.maximum(0.0, np.maximum(below, above))))
