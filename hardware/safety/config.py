"""``SafetyLimits`` (what a user sets) and ``SafetyConfig`` (those limits for one arm): every limit the
safety filter enforces, as plain config fields."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from robot_rl.schema import check_keys

JOINT_MARGIN_FRACTION = 0.02  # as the sim controller: stay 2% of each range off the hard stops


@dataclass(frozen=True, kw_only=True)
class SafetyLimits:
    """The limits a user sets, declared once: the safety filter's config and the ROS nodes'
    parameters (``max_joint_step_rad:=...``) both derive from this class.

    ``max_joint_step_rad`` bounds every command's distance from the *measured* joint position
    (and from the previous command); the joint velocity limits bound it further to
    ``velocity * period``. Observations older than ``obs_timeout_s`` (at filter time and again
    at publish time) and targets older than ``command_timeout_s`` are faults. ``ramp_in_s``
    grows the step limit from zero to full after every activation, reset or fault recovery.

    Fault rule: after any fault nothing is sent until the inputs have been good for
    ``fault_recovery_s`` without a break; then the filter re-anchors at the measured position
    and ramps in. ``fault_latch_count`` fault onsets within ``fault_latch_window_s`` latch the
    fault: nothing is sent until the filter is activated again (or the e-stop reset).
    A measured position more than one step plus ``tracking_tolerance_rad`` from the last
    command (a bridge restart, an arm moved by hand, a glitching encoder) is a fault too.

    Not the sim controller's ``max_joint_step_rad`` (``sim.controllers``): that one scales a
    joint_delta action into radians, is saved in the policy artifact as part of its action
    contract and changes what the policy does; this one clamps whatever reaches the arm and
    may be set tighter without retraining.
    """

    max_joint_step_rad: float = 0.1
    workspace_low_m: tuple[float, ...] = (0.2, -0.5, 0.0)
    workspace_high_m: tuple[float, ...] = (0.85, 0.5, 0.6)
    obs_timeout_s: float = 0.1
    command_timeout_s: float = 0.25
    ramp_in_s: float = 1.0
    fault_recovery_s: float = 0.5  # good inputs needed, without a break, before motion resumes after a fault
    fault_latch_count: int = 5  # this many faults within fault_latch_window_s latch until activated again
    fault_latch_window_s: float = 10.0
    tracking_tolerance_rad: float = 0.05  # measured further than one step plus this from the last command: a fault


def limits_of(config: SafetyLimits) -> dict[str, Any]:
    """The safety limits of ``config`` (a SafetyLimits or a node config derived from it) as keywords."""
    return {f.name: getattr(config, f.name) for f in fields(SafetyLimits)}


@dataclass(frozen=True)
class SafetyConfig(SafetyLimits):
    """The :class:`SafetyLimits` for one arm at one control rate: its joint tuples (in driver joint
    order) come from the robot model. Limits are keyword arguments after the four joint fields."""

    joint_pos_low_rad: tuple[float, ...]
    joint_pos_high_rad: tuple[float, ...]
    joint_vel_limit_rad_s: tuple[float, ...]
    control_rate_hz: float

    def __post_init__(self) -> None:
        n = len(self.joint_pos_low_rad)
        if n == 0 or len(self.joint_pos_high_rad) != n or len(self.joint_vel_limit_rad_s) != n:
            raise ValueError("SafetyConfig joint limits must list one low, high and velocity limit per joint "
                             f"(got {n}, {len(self.joint_pos_high_rad)}, {len(self.joint_vel_limit_rad_s)}).")
        if not np.all(np.asarray(self.joint_pos_low_rad) < np.asarray(self.joint_pos_high_rad)):
            raise ValueError("SafetyConfig joint_pos_low_rad must be below joint_pos_high_rad for every joint.")
        if not np.all(np.asarray(self.joint_vel_limit_rad_s) > 0):
            raise ValueError("SafetyConfig joint_vel_limit_rad_s must be positive for every joint.")
        if len(self.workspace_low_m) != 3 or len(self.workspace_high_m) != 3 or not all(
                lo < hi for lo, hi in zip(self.workspace_low_m, self.workspace_high_m)):
            raise ValueError(f"SafetyConfig workspace box {self.workspace_low_m}..{self.workspace_high_m} must be "
                             "three finite (x, y, z) ranges with low < high.")
        for name in ("control_rate_hz", "max_joint_step_rad", "obs_timeout_s", "command_timeout_s",
                     "fault_latch_window_s", "tracking_tolerance_rad"):
            value = getattr(self, name)
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"SafetyConfig.{name} is {value}; expected a positive finite number.")
        for name in ("ramp_in_s", "fault_recovery_s"):
            value = getattr(self, name)
            if not (value >= 0 and math.isfinite(value)):
                raise ValueError(f"SafetyConfig.{name} is {value}; expected zero or more.")
        if not self.fault_latch_count >= 1:
            raise ValueError(f"SafetyConfig.fault_latch_count is {self.fault_latch_count}; expected 1 or more.")

    @property
    def period_s(self) -> float:
        return 1.0 / self.control_rate_hz

    def step_limits_rad(self) -> np.ndarray:
        """Largest change per control step for each joint: the step limit or velocity x period."""
        velocity_step = np.asarray(self.joint_vel_limit_rad_s) * self.period_s
        return np.minimum(self.max_joint_step_rad, velocity_step)

    @classmethod
    def for_robot(cls, joint_range: np.ndarray, velocity_limits_rad_s: np.ndarray, control_rate_hz: float,
                  **limits: Any) -> SafetyConfig:
        """Limits from the robot model (joint range less a 2% margin, velocity limits) plus ``limits``."""
        check_keys(limits, limits_of(SafetyLimits()), "safety limits", ValueError)
        lo, hi = np.asarray(joint_range, dtype=np.float64).T
        margin = JOINT_MARGIN_FRACTION * (hi - lo)
        limits = {k: tuple(float(x) for x in v) if isinstance(v, (list, tuple, np.ndarray))
                  else int(v) if k == "fault_latch_count" else float(v) for k, v in limits.items()}
        return cls(joint_pos_low_rad=tuple((lo + margin).tolist()), joint_pos_high_rad=tuple((hi - margin).tolist()),
                   joint_vel_limit_rad_s=tuple(np.asarray(velocity_limits_rad_s, dtype=np.float64).tolist()),
                   control_rate_hz=float(control_rate_hz), **limits)
