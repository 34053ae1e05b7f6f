"""The policy node's per-tick accounting, without ROS: timings, holds and their reason, and a
fault logged once per change."""

from __future__ import annotations

import math

import numpy as np

from hardware.control.accounting import TickAccount
from hardware.control.tick import TickResult
from hardware.safety.filter import SafeCommand


def test_a_tick_with_inference_times_every_stage():
    account = TickAccount()
    result = TickResult(SafeCommand(np.zeros(7)), action=np.zeros(5), infer_s=0.002)
    timing = account.record(result, obs_time_s=9.990, start=10.0, end=10.004, late_s=0.0005, joint_arrival=9.995,
                            fault_reason="")
    np.testing.assert_allclose(timing, [9.0, 4.0, 2.0, 10.0], atol=1e-9)  # latency, compute, infer, obs age (ms)
    assert account.ticks == 1 and account.holds == 0 and account.hold_reason == ""
    assert account.stats["jitter"].count == account.stats["infer"].count == 1


def test_a_hold_without_an_observation_counts_and_says_why():
    account = TickAccount()
    held = TickResult(SafeCommand(None, held=True, reason="stale_observation"))
    timing = account.record(held, None, start=1.0, end=1.001, late_s=0.0, joint_arrival=0.5, fault_reason="x")
    assert math.isnan(timing[0]) and math.isnan(timing[2]) and math.isnan(timing[3])
    assert account.holds == 1 and account.hold_reason == "stale_observation"
    assert account.stats["latency"].count == 0 and account.stats["compute"].count == 1
    # a sent tick takes the safety filter's fault (empty once recovered) as the reason
    account.record(TickResult(SafeCommand(np.zeros(7))), 1.0, 1.05, 1.051, 0.0, 1.04, fault_reason="")
    assert account.hold_reason == "" and account.ticks == 2


def test_a_fault_is_reported_once_per_change():
    account = TickAccount()
    assert [account.fault_changed(f) for f in ("", "joint_jump", "joint_jump", "", "")] == [False, True, False, True,
                                                                                             False]
