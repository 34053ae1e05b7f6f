"""``SafetyFilter``: the last stage before any joint command leaves the process.

Every command is computed against the **measured** joint position of its tick. For every
command the filter returns, per joint:

(a) ``|command - q_measured| <= step * ramp`` where ``step = min(max_joint_step_rad,
    velocity limit x period)`` and ``ramp`` grows from 0 to 1 over ``ramp_in_s`` after every
    activation, e-stop reset and fault recovery;
(b) ``|command - previous command| <= step`` while continuously commanding;
(c) inside the joint limits (or, for a joint measured outside them, no further out) and the
    end effector inside the workspace box (or, from outside, closer to it).

The step is scaled as a whole, so its direction holds. Anything else -- inactive, e-stop, a
latched fault, a bad observation or target, a measured position that jumped away from the
last command -- returns a command with ``positions=None``: **nothing is sent**, and the arm's
controller holds its own last setpoint (re-sending an old setpoint could be far from an arm
that has moved). The fault rule, one for every fault kind: after a fault nothing is sent until
the inputs have been good for ``fault_recovery_s`` without a break; the filter then re-anchors
at the measured position and ramps in from zero. ``fault_latch_count`` fault onsets within
``fault_latch_window_s`` latch the fault until :meth:`activate` (or :meth:`reset_estop`).
"""

from __future__ import annotations

import collections
import threading
import time
from dataclasses import dataclass
from enum import Enum
from typing import Callable

import numpy as np

from hardware.safety.config import SafetyConfig
from hardware.safety.watchdog import EStopLatch

WORKSPACE_BISECTIONS = 8
PLAUSIBLE_MARGIN_FRACTION = 0.1  # a measured joint this far (of its range) past a limit is a sensor fault


class HoldReason(str, Enum):
    """Why the filter sent nothing instead of a new command."""

    INACTIVE = "inactive"
    ESTOP = "estop"
    FAULT_LATCHED = "fault_latched"
    RECOVERING = "recovering"
    NON_FINITE_OBSERVATION = "non_finite_observation"
    IMPLAUSIBLE_OBSERVATION = "implausible_observation"
    STALE_OBSERVATION = "stale_observation"
    STALE_AT_PUBLISH = "stale_at_publish"
    JOINT_JUMP = "joint_jump"
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
    """Stateful filter for one arm; ``ee_position(q)`` is the arm's forward kinematics.

    Thread-safe: the control thread filters while the executor may trip the e-stop or report
    a fault (a stalled control thread).
    """

    def __init__(self, config: SafetyConfig, ee_position: Callable[[np.ndarray], np.ndarray],
                 estop: EStopLatch | None = None) -> None:
        self.config = config
        self.ee_position = ee_position
        self.estop = estop if estop is not None else EStopLatch()
        self._low = np.asarray(config.joint_pos_low_rad, dtype=np.float64)
        self._high = np.asarray(config.joint_pos_high_rad, dtype=np.float64)
        margin = PLAUSIBLE_MARGIN_FRACTION * (self._high - self._low)
        self._plausible_low, self._plausible_high = self._low - margin, self._high + margin
        self._step = config.step_limits_rad()
        self._jump = self._step + config.tracking_tolerance_rad
        self._box_low = np.asarray(config.workspace_low_m, dtype=np.float64)
        self._box_high = np.asarray(config.workspace_high_m, dtype=np.float64)
        self.lock = threading.RLock()  # held while filtering; a node publishes under it too
        self._last: np.ndarray | None = None  # the last command sent; None: re-anchor at the measured position
        self._active = False
        self._anchor_s = 0.0  # when the ramp-in started
        self.fault_reason = ""  # the fault being recovered from ("" when none)
        self.latched_reason = ""  # set once faults repeat too often: needs activate() or reset_estop()
        self.faults = 0  # fault onsets since construction
        self._good_since_s: float | None = None
        self._recovery_q: np.ndarray | None = None
        self._onsets: collections.deque[float] = collections.deque(maxlen=config.fault_latch_count)

    @property
    def active(self) -> bool:
        return self._active

    @property
    def faulted(self) -> bool:
        return bool(self.fault_reason or self.latched_reason)

    @property
    def last_command(self) -> np.ndarray | None:
        last = self._last
        return None if last is None else last.copy()

    # --- state changes ----------------------------------------------------------------------
    def activate(self, q_measured: np.ndarray, now_s: float) -> None:
        """Start from where the arm is; the step limit ramps in from zero over ``ramp_in_s``.

        An explicit activation also clears a fault, latched or not.
        """
        q = np.asarray(q_measured, dtype=np.float64)
        if q.shape != self._low.shape or not np.all(np.isfinite(q)):
            raise ValueError(f"cannot activate the safety filter from joint positions {q.tolist()}: "
                             f"expected {self._low.size} finite values.")
        with self.lock:
            self._anchor(q, now_s)
            self._active = True
            self.fault_reason = self.latched_reason = ""
            self._good_since_s = self._recovery_q = None
            self._onsets.clear()

    def deactivate(self) -> None:
        with self.lock:
            self._active = False
            self._last = None

    def trip_estop(self, reason: str = "e-stop") -> None:
        """Latch the e-stop: nothing is sent until :meth:`reset_estop`."""
        with self.lock:
            self.estop.trip(reason)
            self._last = None

    def reset_estop(self, q_measured: np.ndarray, now_s: float) -> bool:
        """Clear the e-stop (and a latched fault) and, when active, ramp in again from the measured position."""
        with self.lock:
            was = self.estop.reset()
            if self._active:
                self.activate(q_measured, now_s)
            return was

    def fault(self, reason: str, now_s: float) -> SafeCommand:
        """Record a fault: nothing is sent until the inputs are good again for ``fault_recovery_s``."""
        reason = reason.value if isinstance(reason, HoldReason) else str(reason)
        with self.lock:
            if not self._active or self.estop.tripped:
                return self._stopped()
            if not self.fault_reason:
                self.faults += 1
                self._onsets.append(now_s)
                window = self.config.fault_latch_window_s
                if len(self._onsets) == self.config.fault_latch_count and now_s - self._onsets[0] <= window:
                    self.latched_reason = (f"{len(self._onsets)} faults within {window:g} s, the last "
                                           f"{reason}; activate again or call reset_estop")
            self.fault_reason = reason
            self._good_since_s = self._recovery_q = None
            self._last = None
            return SafeCommand(None, held=True, reason=reason)

    def hold(self, reason: HoldReason | str) -> SafeCommand:
        """Send nothing this tick, for ``reason`` (not a fault: e.g. no target yet)."""
        reason = reason.value if isinstance(reason, HoldReason) else str(reason)
        stopped = self._stopped()
        return stopped if stopped.reason else SafeCommand(None, held=True, reason=reason)

    def ramp(self, now_s: float) -> float:
        """Fraction of the step limit allowed now: 0 at (re-)anchoring, 1 after ``ramp_in_s``."""
        if not self._active:
            return 0.0
        if self.config.ramp_in_s <= 0:
            return 1.0
        return float(np.clip((now_s - self._anchor_s) / self.config.ramp_in_s, 0.0, 1.0))

    # --- per tick ---------------------------------------------------------------------------
    def check_inputs(self, q_measured: np.ndarray, obs_time_s: float, now_s: float) -> SafeCommand | None:
        """The no-command result ``filter`` would return for these inputs whatever the target, else None.

        A bad observation is recorded as a fault. Lets a caller skip inference when the
        observation is already unusable (or when nothing would be sent anyway).
        """
        stopped = self._stopped()
        if stopped.reason:
            return stopped
        q = np.asarray(q_measured)
        if q.shape != self._low.shape or not np.all(np.isfinite(q)):
            return self.fault(HoldReason.NON_FINITE_OBSERVATION, now_s)
        if np.any(q < self._plausible_low) or np.any(q > self._plausible_high):
            return self.fault(HoldReason.IMPLAUSIBLE_OBSERVATION, now_s)
        if not now_s - obs_time_s <= self.config.obs_timeout_s:  # also catches a NaN time
            return self.fault(HoldReason.STALE_OBSERVATION, now_s)
        return None

    def filter(self, target: np.ndarray | None, q_measured: np.ndarray, obs_time_s: float, now_s: float,
               target_time_s: float | None = None) -> SafeCommand:
        """The command to send for ``target`` given the observation of this tick and the time now."""
        problem = self.check_inputs(q_measured, obs_time_s, now_s)
        if problem is not None:
            return problem
        if target is None:
            return self.hold(HoldReason.NO_TARGET)
        target = np.asarray(target, dtype=np.float64)
        if target.shape != self._low.shape or not np.all(np.isfinite(target)):
            return self.fault(HoldReason.NON_FINITE_TARGET, now_s)
        if target_time_s is not None and not now_s - target_time_s <= self.config.command_timeout_s:
            return self.fault(HoldReason.COMMAND_TIMEOUT, now_s)
        q = np.asarray(q_measured, dtype=np.float64)
        with self.lock:
            stopped = self._stopped()
            if stopped.reason:
                return stopped
            if self.fault_reason:
                waiting = self._recover(q, now_s)
                if waiting is not None:
                    return waiting
            last = self._last
            if last is None:  # nothing sent since the last stop: start again from the arm
                self._anchor(q, now_s)
                last = self._last
            elif np.any(np.abs(q - last) > self._jump):
                jump = float(np.max(np.abs(q - last)))
                return self.fault(f"{HoldReason.JOINT_JUMP.value}: measured {jump:.3f} rad from the last command",
                                  now_s)
            return self._limit(target, q, last, now_s)

    def may_publish(self, obs_time_s: float, now_s: float) -> bool:
        """The last check, just before a command goes out: still active, no e-stop or fault, and
        the observation it was computed from no older than ``obs_timeout_s`` *now* (slow inference)."""
        with self.lock:
            if self._stopped().reason or self.fault_reason:
                return False
            if not now_s - obs_time_s <= self.config.obs_timeout_s:
                self.fault(HoldReason.STALE_AT_PUBLISH, now_s)
                return False
            return True

    def send_if_safe(self, obs_time_s: float, send: Callable[[], None],
                     clock: Callable[[], float] = time.perf_counter) -> bool:
        """Call ``send()`` (publish the command) only if :meth:`may_publish` holds at ``clock()``,
        under the filter's lock: once an e-stop or a fault is recorded, nothing more goes out."""
        with self.lock:
            if not self.may_publish(obs_time_s, clock()):
                return False
            send()
            return True

    # --- internals --------------------------------------------------------------------------
    def _stopped(self) -> SafeCommand:
        if self.estop.tripped:
            return SafeCommand(None, held=True, reason=HoldReason.ESTOP.value)
        if not self._active:
            return SafeCommand(None, held=True, reason=HoldReason.INACTIVE.value)
        if self.latched_reason:
            return SafeCommand(None, held=True, reason=f"{HoldReason.FAULT_LATCHED.value}: {self.latched_reason}")
        return SafeCommand(None)

    def _recover(self, q: np.ndarray, now_s: float) -> SafeCommand | None:
        """None once the inputs have been good for ``fault_recovery_s`` (then re-anchored), else the wait."""
        # The arm must also hold still or move plausibly: a position that keeps jumping (a
        # glitching encoder) never becomes the anchor.
        previous, self._recovery_q = self._recovery_q, q.copy()
        if self._good_since_s is None or previous is None or np.any(np.abs(q - previous) > self._jump):
            self._good_since_s = now_s
        if now_s - self._good_since_s < self.config.fault_recovery_s:
            return SafeCommand(None, held=True, reason=f"{HoldReason.RECOVERING.value} from {self.fault_reason}")
        self.fault_reason = ""
        self._good_since_s = self._recovery_q = None
        self._anchor(q, now_s)
        return None

    def _anchor(self, q: np.ndarray, now_s: float) -> None:
        self._last = q.copy()
        self._anchor_s = now_s

    def _limit(self, target: np.ndarray, q: np.ndarray, last: np.ndarray, now_s: float) -> SafeCommand:
        limits = []
        # A joint measured outside its limits may stay where it is or move back, never further out.
        low, high = np.minimum(self._low, q), np.maximum(self._high, q)
        clipped = np.clip(target, low, high)
        if not np.array_equal(clipped, target):
            limits.append("joint_limit")
        allowed = self._step * self.ramp(now_s)
        near_low, near_high = np.maximum(q - allowed, low), np.minimum(q + allowed, high)
        box_low = np.maximum(near_low, last - self._step)
        box_high = np.minimum(near_high, last + self._step)
        # An arm that trails its last command by more than a step (but within the tracking
        # tolerance, checked above: a slow or heavily loaded arm, or one still ramping in)
        # cannot be near both: the command comes back towards the arm, never further from it.
        apart = box_low > box_high
        box_low, box_high = np.where(apart, near_low, box_low), np.where(apart, near_high, box_high)
        start = np.clip(last, box_low, box_high)
        delta = clipped - start
        # Scale the whole step, not each joint apart: clipping joints one by one would bend the
        # end effector's path (an IK step clipped per joint can move the hand the wrong way).
        room = np.where(delta > 0, box_high - start, box_low - start)
        scale = float(np.min(np.divide(room, delta, out=np.full_like(delta, np.inf), where=delta != 0),
                             initial=1.0))
        if scale < 1.0:
            delta = delta * max(scale, 0.0)
            limits.append("step_limit")
        command, inside = self._inside_workspace(start, delta)
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
