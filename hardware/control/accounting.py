"""What the policy node counts per tick: rolling timing windows, ticks, holds and why, and fault
changes worth one log line. Plain Python (no ROS), so the node stays a thin shell around it."""

from __future__ import annotations

import math

from hardware.control.tick import TickResult
from hardware.control.timing import RollingStats

# obs_age: the oldest input the policy read; infer: the policy alone; latency: joint state in ->
# command out; compute: the whole tick; jitter: how late the tick woke up
WINDOWS = ("obs_age", "infer", "latency", "compute", "jitter")


class TickAccount:
    """Per-tick figures of one control loop, read by its diagnostics."""

    def __init__(self) -> None:
        self.stats = {name: RollingStats() for name in WINDOWS}
        self.ticks = self.holds = self.phase_shifts = 0
        self.hold_reason = ""
        self._fault_logged = ""

    def record(self, result: TickResult, obs_time_s: float | None, start: float, end: float, late_s: float,
               joint_arrival: float, fault_reason: str) -> list[float]:
        """Count one tick; returns ``[latency_ms, compute_ms, infer_ms, obs_age_ms]`` (NaN where the
        tick had none: no observation, or a hold without inference)."""
        self.ticks += 1
        latency_s = obs_age_s = infer_s = math.nan
        self.stats["jitter"].add(late_s)
        self.stats["compute"].add(end - start)
        if obs_time_s is not None:
            obs_age_s, latency_s = start - obs_time_s, end - joint_arrival
            self.stats["obs_age"].add(obs_age_s)
            self.stats["latency"].add(latency_s)
        if result.action is not None:
            infer_s = result.infer_s
            self.stats["infer"].add(infer_s)
        if result.command.held:
            self.holds += 1
            self.hold_reason = result.command.reason
        else:
            self.hold_reason = fault_reason
        return [1e3 * latency_s, 1e3 * (end - start), 1e3 * infer_s, 1e3 * obs_age_s]

    def fault_changed(self, fault: str) -> bool:
        """True once per change of the fault (to log it once, not every tick)."""
        if fault == self._fault_logged:
            return False
        self._fault_logged = fault
        return True
