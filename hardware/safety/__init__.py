"""The safety filter: pure Python, always on, between every policy or teleop target and the robot.

    from hardware.safety import SafetyConfig, SafetyFilter

    safety = SafetyFilter(SafetyConfig.for_robot(joint_range, velocity_limits, rate_hz), ee_position)
    safety.activate(q_measured, now_s)                   # ramp-in starts here
    command = safety.filter(q_target, q_measured, obs_time_s, now_s)
    if command.publish:                                  # within one step of q_measured
        safety.send_if_safe(obs_time_s, lambda: send(command.positions))  # still fresh, not stopped

Every command is limited against the *measured* joint position; a fault sends nothing and
motion resumes only after ``fault_recovery_s`` of good inputs, re-anchored and ramped in.
Every limit is a ``SafetyLimits`` field (declared once; the ROS nodes' parameters derive from it) and every field is checked on every call; there is no
flag that turns a check off.
"""

from hardware.safety.config import SafetyConfig, SafetyLimits, limits_of
from hardware.safety.filter import HoldReason, SafeCommand, SafetyFilter
from hardware.safety.watchdog import CommandWatchdog, EStopLatch, default_latch_path

__all__ = ["CommandWatchdog", "EStopLatch", "HoldReason", "SafeCommand", "SafetyConfig", "SafetyFilter",
           "SafetyLimits", "default_latch_path", "limits_of"]
