"""Fixed-rate timing helpers: the rate loop, the phase lock and rolling percentiles (no timing asserts)."""

from __future__ import annotations

import numpy as np

from hardware.control.timing import PhaseLock, RateLoop, RollingStats


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_rate_loop_keeps_absolute_deadlines_and_skips_missed_ticks(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr("time.sleep", lambda s: setattr(clock, "now", clock.now + s))
    loop = RateLoop(100.0, spin_s=0.0, clock=clock)
    loop.wait()
    assert abs(clock.now - 0.01) < 1e-12
    clock.now += 0.004  # work inside the tick does not push the schedule
    loop.wait()
    assert abs(clock.now - 0.02) < 1e-12
    clock.now += 0.035  # a 35 ms stall: the missed ticks are dropped, not burst through
    late = loop.wait()
    assert abs(late - 0.025) < 1e-9 and loop.overruns == 2
    assert abs(loop.next_tick_s - 0.06) < 1e-9


def _settle(arrival_phase_s: float, jitter_s: float, period_s: float = 0.01) -> float:
    rng, lock, tick_phase = np.random.default_rng(0), PhaseLock(period_s), 0.0
    for _ in range(400):
        arrival = arrival_phase_s + rng.normal(0.0, jitter_s)
        tick_phase += lock.update((tick_phase - arrival) % period_s)
    return (tick_phase - arrival_phase_s) % period_s


def _lead(arrival_phase_s: float, jitter_s: float, period_s: float = 0.01, ticks: int = 400) -> np.ndarray:
    """A tick that wakes, then waits (up to half a period) for the next arrival: the waits it
    reports (wake - the arrival it acted on), over the last 50 ticks."""
    rng, lock, wake, waits = np.random.default_rng(0), PhaseLock(period_s, lead=True), 0.0, []
    for k in range(ticks):
        arrival = k * period_s + arrival_phase_s + rng.normal(0.0, jitter_s)
        wake_k = k * period_s + wake
        previous = arrival - period_s
        used = arrival if arrival - wake_k <= period_s / 2 else previous  # waited for it, or timed out
        waits.append(wake_k - used)
        wake += lock.update(waits[-1])
    return np.asarray(waits[-50:])

def test_phase_lock_leading_wakes_just_before_the_observation():
    """A tick that waits for its observation (the policy node's tick_on_joint_state) wakes just
    before nine in ten arrivals: it then acts on each as it comes instead of on an old one."""
    for arrival in (0.0001, 0.003, 0.0095):  # across the period boundary too
        waits = _lead(arrival, 0.0)
        assert np.all(waits <= 0) and np.all(waits > -0.004)  # woke before each arrival, by under 0.4 period
        waits = _lead(arrival, 0.0005)
        assert np.mean(waits <= 0) >= 0.8 and np.all(waits > -0.005)  # with jitter too, nine in ten


def test_phase_lock_leading_leaves_a_fast_driver_alone():
    lock = PhaseLock(0.05, lead=True, late_ok_s=0.002)  # 20 Hz ticks, a 100 Hz driver: the next arrival is < 10 ms away
    shifts = [lock.update(w) for w in np.random.default_rng(1).uniform(-0.008, 0.002, 200)]  # or one < 2 ms ago
    assert all(s == 0.0 for s in shifts)


def test_phase_lock_moves_the_tick_just_after_the_observation():
    for arrival in (0.0001, 0.003, 0.0095):  # across the period boundary too
        assert _settle(arrival, 0.0) < 0.001
        assert 0.0 < _settle(arrival, 0.0005) < 0.002  # jitter: wait a little longer, not a period


def test_phase_lock_leaves_a_fast_driver_alone():
    lock = PhaseLock(0.01)
    shifts = [lock.update(w) for w in np.random.default_rng(1).uniform(0.0, 0.0002, 200)]
    assert all(s == 0.0 for s in shifts)


def test_rolling_stats_window():
    stats = RollingStats(size=100)
    assert np.isnan(stats.percentiles(50)[0])
    for value in range(1000):
        stats.add(float(value))
    assert stats.count == 1000 and stats.percentiles(0, 100) == [900.0, 999.0]
