"""A fixed-rate loop with absolute deadlines, and rolling latency statistics."""

from __future__ import annotations

import time
from typing import Callable

import numpy as np


class RateLoop:
    """Wakes at ``t0 + k * period``; sleeps coarsely, then spins the last ``spin_s`` for accuracy.

    ``wait()`` returns how late this wake-up is (the tick jitter, seconds). A loop that falls
    behind by more than a period skips the missed ticks instead of bursting to catch up.
    """

    def __init__(self, rate_hz: float, spin_s: float = 2e-4, clock: Callable[[], float] = time.perf_counter) -> None:
        if not rate_hz > 0:
            raise ValueError(f"rate_hz is {rate_hz}; expected a positive number.")
        self.period_s, self.spin_s, self.clock = 1.0 / rate_hz, spin_s, clock
        self.overruns = 0
        self.reset()

    def reset(self) -> None:
        self._next = self.clock() + self.period_s

    @property
    def next_tick_s(self) -> float:
        return self._next

    def shift(self, offset_s: float) -> None:
        """Move the schedule's phase by ``offset_s`` (negative: earlier); the rate is unchanged."""
        self._next += offset_s

    def wait(self) -> float:
        """Sleep until the next tick; returns the lateness of this wake-up in seconds."""
        remaining = self._next - self.clock()
        if remaining > self.spin_s:
            time.sleep(remaining - self.spin_s)
        while self.clock() < self._next:
            pass
        now = self.clock()
        late = now - self._next
        self._next += self.period_s
        if now > self._next:  # the next deadline has passed already: drop the missed ticks
            missed = int((now - self._next) / self.period_s) + 1
            self.overruns += missed
            self._next += missed * self.period_s
        return late


class PhaseLock:
    """Keeps a fixed-rate tick just after the observation it waits for.

    With a driver publishing at the control rate, an unsynchronised tick reads an observation
    that is on average half a period old. Every ``window`` ticks this takes the waits (tick
    wake-up minus arrival of the newest observation) as phases on a circle of one period, finds
    where arrivals cluster, and returns the shift that puts the tick ``margin_s`` after nine in
    ten of them. A driver much faster than the control rate gives small waits and no shift.

    ``lead``: for a tick that waits for the observation once it wakes (the policy node's
    ``tick_on_joint_state``), put the wake-up ``margin_s`` *before* every arrival instead, so it
    waits for them and acts on each as it comes (waking early costs nothing; waking after an
    arrival costs up to a period). Its waits (wake-up minus the arrival it acted on) are then
    negative, and it shifts only when one is over ``late_ok_s`` (it woke after the arrival and
    acted late) or the earliest tenth waited over
    ``max_wait_s``. A driver faster than the control rate gives waits within one of its periods
    and no shift. Its first decision comes after 10 ticks (the unlocked ticks act late).
    """

    def __init__(self, period_s: float, margin_s: float = 3e-4, window: int = 50, lead: bool = False,
                 max_wait_s: float | None = None, late_ok_s: float = 0.0) -> None:
        self.period_s, self.margin_s, self.window, self.lead = period_s, margin_s, window, lead
        self.max_wait_s = 0.4 * period_s if max_wait_s is None else max_wait_s
        self.late_ok_s = late_ok_s
        self._waits: list[float] = []
        self._locked = False  # lead: the first decision comes after a few ticks, not a whole window

    def update(self, waited_s: float) -> float:
        """Record one tick's wait; returns the phase shift to apply now (seconds, usually 0)."""
        if self.lead:
            return self._update_lead(waited_s)
        if np.isfinite(waited_s) and waited_s >= 0.0:
            self._waits.append(waited_s % self.period_s)
        if len(self._waits) < self.window:
            return 0.0
        period = self.period_s
        angles = 2 * np.pi * np.asarray(self._waits) / period
        self._waits.clear()
        center = (np.arctan2(np.sin(angles).mean(), np.cos(angles).mean()) % (2 * np.pi)) * period / (2 * np.pi)
        deviations = (angles * period / (2 * np.pi) - center + period / 2) % period - period / 2
        target = self.margin_s - float(np.percentile(deviations, 10))
        shift = (target - center + period / 2) % period - period / 2
        return shift if abs(shift) > self.margin_s else 0.0

    def _update_lead(self, waited_s: float) -> float:
        if np.isfinite(waited_s) and abs(waited_s) < self.period_s:  # not a stale observation
            self._waits.append(waited_s)
        if len(self._waits) < (self.window if self._locked else min(10, self.window)):
            return 0.0
        late, early = float(np.max(self._waits)), float(np.percentile(self._waits, 10))
        self._waits.clear()
        self._locked = True
        if late <= self.late_ok_s and early >= -self.max_wait_s:
            return 0.0
        period = self.period_s
        return float((-self.margin_s - late + period / 2) % period - period / 2)


# A tick that waits for its observation acts at once on one that arrived this recently before it
# woke; an older one is waited past (the next comes within a period of the driver).
FRESH_S = 2e-3


class TickSchedule:
    """When a control thread ticks: a ``RateLoop`` at ``rate_hz``, optionally phase-locked to the
    observations' arrivals, and with ``wait_for`` (``(newer_than_s, timeout_s) -> arrival``, e.g.
    ``ObservationCache.wait_for_joint_state``) waiting at each tick, up to half a period, for the
    next observation so the tick acts on it as it arrives (the lock then wakes it just before them).
    """

    def __init__(self, rate_hz: float, spin_s: float = 2e-4, phase_lock: bool = True,
                 wait_for: Callable[[float, float], float] | None = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.loop, self.wait_for, self.clock = RateLoop(rate_hz, spin_s, clock), wait_for, clock
        self.phase = (PhaseLock(self.loop.period_s, lead=wait_for is not None, late_ok_s=FRESH_S)
                      if phase_lock else None)
        self.woke_s = float("nan")

    @property
    def overruns(self) -> int:
        return self.loop.overruns

    def wait(self) -> float:
        """Sleep until the next tick (and its observation, when waiting for one); returns the
        lateness of the wake-up in seconds (the tick jitter)."""
        late_s = self.loop.wait()
        self.woke_s = self.clock()
        if self.wait_for is not None:  # under FRESH_S old does; else the next (none by the timeout: the last)
            self.wait_for(self.woke_s - FRESH_S, 0.5 * self.loop.period_s)
        return late_s

    def observed(self, arrival_s: float) -> bool:
        """Tell the lock when the observation this tick read arrived; True when it shifted the phase."""
        if self.phase is None:
            return False
        shift = self.phase.update(self.woke_s - arrival_s)
        self.loop.shift(shift)
        return shift != 0.0


class RollingStats:
    """The last ``size`` samples of one quantity, for p50/p99 in diagnostics and benchmarks."""

    def __init__(self, size: int = 2000) -> None:
        self._values = np.zeros(size, np.float64)
        self._count = 0

    def add(self, value: float) -> None:
        self._values[self._count % len(self._values)] = value
        self._count += 1

    @property
    def count(self) -> int:
        return self._count

    def values(self) -> np.ndarray:
        return self._values[: min(self._count, len(self._values))].copy()

    def percentiles(self, *qs: float) -> list[float]:
        """Percentiles of the window (NaN while empty)."""
        return percentiles(self.values(), *qs)


def percentiles(values, *qs: float) -> list[float]:
    """Percentiles ``qs`` of ``values`` (NaN for no samples): the one p50/p99 of node diagnostics,
    the sim-over-ROS evaluation, the pipeline report and the benchmarks."""
    values = np.asarray(values, np.float64)
    if values.size == 0:
        return [float("nan")] * len(qs)
    return [float(v) for v in np.percentile(values, qs)]


def sleep_until(deadline_s: float) -> None:
    """Sleep until ``deadline_s`` (perf_counter), spinning the last fraction of a millisecond."""
    while True:
        remaining = deadline_s - time.perf_counter()
        if remaining <= 0:
            return
        time.sleep(remaining - 2e-4 if remaining > 5e-4 else 0)


class StepTiming:
    """When commands went out against their ticks: the jitter of the command stream, i.e. how far
    each interval between the commands of two consecutive ticks strayed from the period."""

    def __init__(self) -> None:
        self.intervals_off_ms: list[float] = []  # |interval - period| per pair of consecutive ticks
        self.late_ms: list[float] = []  # how late each tick woke up
        self.offsets_ms: list[float] = []  # each command's publish time after its tick
        self._last: tuple[int, float] | None = None  # (tick index, offset of its command from the tick)

    def sent(self, tick: int, offset_s: float) -> None:
        self.offsets_ms.append(offset_s * 1e3)
        if self._last is not None and self._last[0] == tick - 1:
            self.intervals_off_ms.append(abs(offset_s - self._last[1]) * 1e3)
        self._last = (tick, offset_s)

    def jitter_ms(self) -> np.ndarray:
        return np.asarray(self.intervals_off_ms)
