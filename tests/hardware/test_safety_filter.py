"""The safety filter, one test per guarantee, on a 3-joint arm with a linear forward kinematics."""

from __future__ import annotations

import numpy as np
import pytest

from hardware.safety import CommandWatchdog, SafetyConfig, SafetyFilter

RATE_HZ = 100.0
DT = 1.0 / RATE_HZ


def ee_position(q: np.ndarray) -> np.ndarray:
    """End effector 0.1 m per radian along x, y, z from (0.5, 0, 0.3)."""
    return np.array([0.5, 0.0, 0.3]) + 0.1 * np.asarray(q)


def make_filter(**limits) -> SafetyFilter:
    base = dict(joint_pos_low_rad=(-1.0, -1.0, -1.0), joint_pos_high_rad=(1.0, 1.0, 1.0),
                joint_vel_limit_rad_s=(10.0, 10.0, 10.0), control_rate_hz=RATE_HZ, max_joint_step_rad=0.05,
                workspace_low_m=(0.0, -1.0, 0.0), workspace_high_m=(1.0, 1.0, 1.0), obs_timeout_s=0.05,
                command_timeout_s=0.1, ramp_in_s=0.0)
    base.update(limits)
    safety = SafetyFilter(SafetyConfig(**base), ee_position)
    safety.activate(np.zeros(3), now_s=0.0)
    return safety


def step(safety: SafetyFilter, target, now_s: float = 1.0, q=None, obs_time_s=None):
    q = safety.last_command if q is None else np.asarray(q, dtype=float)
    return safety.filter(None if target is None else np.asarray(target, dtype=float), q,
                         now_s if obs_time_s is None else obs_time_s, now_s)


def test_joint_position_limits_clip_every_joint():
    safety = make_filter(max_joint_step_rad=10.0, joint_vel_limit_rad_s=(1e4,) * 3)
    command = step(safety, [5.0, -5.0, 0.5])
    np.testing.assert_allclose(command.positions, [1.0, -1.0, 0.5])
    assert "joint_limit" in command.limits and not command.held


def test_per_step_change_limit_bounds_each_joint_and_keeps_the_direction():
    safety = make_filter()
    command = step(safety, [0.5, -0.25, 0.01])
    np.testing.assert_allclose(command.positions, [0.05, -0.025, 0.001])  # scaled as a whole, not clipped apart
    assert command.limits == ("step_limit",)
    np.testing.assert_allclose(step(safety, [0.5, -0.25, 0.01], now_s=1.01).positions, [0.1, -0.05, 0.002])
    np.testing.assert_allclose(step(safety, [0.12, -0.05, 0.002], now_s=1.02).positions, [0.12, -0.05, 0.002])


def test_velocity_limit_tightens_the_step_at_this_rate():
    safety = make_filter(joint_vel_limit_rad_s=(1.0, 2.0, 100.0))  # 0.01, 0.02 and (step) 0.05 rad per step
    np.testing.assert_allclose(step(safety, [0.0, 0.0, 1.0]).positions, [0.0, 0.0, 0.05])
    np.testing.assert_allclose(step(safety, [0.0, 1.0, 0.05], now_s=1.01).positions, [0.0, 0.02, 0.05])
    np.testing.assert_allclose(step(safety, [1.0, 0.02, 0.05], now_s=1.02).positions, [0.01, 0.02, 0.05])


def test_workspace_box_stops_the_end_effector_at_the_boundary():
    # z <= 0.35 means q2 <= 0.5
    safety = make_filter(max_joint_step_rad=10.0, joint_vel_limit_rad_s=(1e4,) * 3, workspace_high_m=(1.0, 1.0, 0.35))
    command = step(safety, [0.0, 0.0, 0.9])
    assert "workspace" in command.limits
    assert ee_position(command.positions)[2] <= 0.35 + 1e-9
    assert command.positions[2] > 0.45  # went most of the way, not nowhere


def test_workspace_from_outside_allows_only_steps_back_towards_the_box():
    safety = make_filter(max_joint_step_rad=10.0, joint_vel_limit_rad_s=(1e4,) * 3, workspace_high_m=(1.0, 1.0, 0.35))
    safety.activate(np.array([0.0, 0.0, 0.8]), now_s=0.0)  # z = 0.38: outside
    held = step(safety, [0.0, 0.0, 0.9])
    assert held.held and held.reason == "workspace"
    back = step(safety, [0.0, 0.0, 0.6], now_s=1.01)
    np.testing.assert_allclose(back.positions, [0.0, 0.0, 0.6])


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_target_or_observation_never_reaches_the_command(bad):
    safety = make_filter()
    good = step(safety, [0.02, 0.0, 0.0])
    target = step(safety, [bad, 0.0, 0.0], now_s=1.01)
    assert target.held and target.reason == "non_finite_target"
    np.testing.assert_array_equal(target.positions, good.positions)
    observation = step(safety, [0.02, 0.0, 0.0], now_s=1.02, q=[0.0, bad, 0.0])
    assert observation.held and observation.reason == "non_finite_observation"
    assert np.all(np.isfinite(observation.positions))


def test_stale_observation_holds_the_last_command():
    safety = make_filter()
    fresh = step(safety, [0.02, 0.0, 0.0], now_s=1.0, obs_time_s=0.99)
    stale = step(safety, [0.04, 0.0, 0.0], now_s=1.1, obs_time_s=0.99)
    assert stale.held and stale.reason == "stale_observation"
    np.testing.assert_array_equal(stale.positions, fresh.positions)
    assert not step(safety, [0.04, 0.0, 0.0], now_s=1.2, obs_time_s=1.19).held  # fresh again: moves


def test_missing_target_holds():
    safety = make_filter()
    assert step(safety, None).reason == "no_target"


def test_command_watchdog_holds_an_expired_target():
    safety = make_filter()
    q = safety.last_command
    expired = safety.filter(np.array([0.02, 0, 0]), q, obs_time_s=1.0, now_s=1.0, target_time_s=0.85)
    assert expired.held and expired.reason == "command_timeout"
    fresh = safety.filter(np.array([0.02, 0, 0]), q, obs_time_s=1.0, now_s=1.0, target_time_s=0.95)
    assert not fresh.held


def test_command_watchdog_expires_without_feeding():
    watchdog = CommandWatchdog(timeout_s=0.1)
    assert watchdog.expired(0.0)  # nothing fed yet
    watchdog.feed(1.0)
    assert not watchdog.expired(1.05) and watchdog.expired(1.2)


def test_estop_latches_until_an_explicit_reset():
    safety = make_filter()
    step(safety, [0.02, 0.0, 0.0])
    safety.trip_estop("operator")
    for t in (1.01, 1.02, 1.03):  # good targets and fresh observations do not clear it
        command = step(safety, [0.02, 0.0, 0.0], now_s=t)
        assert not command.publish and command.reason == "estop"
    assert safety.reset_estop(np.array([0.02, 0.0, 0.0]), now_s=1.04)
    assert step(safety, [0.03, 0.0, 0.0], now_s=1.05).publish


def test_ramp_in_grows_the_step_limit_from_zero_after_activation():
    safety = make_filter(ramp_in_s=1.0)
    safety.activate(np.zeros(3), now_s=10.0)
    first = step(safety, [1.0, 0.0, 0.0], now_s=10.0)
    np.testing.assert_allclose(first.positions, [0.0, 0.0, 0.0])
    half = step(safety, [1.0, 0.0, 0.0], now_s=10.5)
    np.testing.assert_allclose(half.positions, [0.025, 0.0, 0.0])
    full = step(safety, [1.0, 0.0, 0.0], now_s=11.5)
    np.testing.assert_allclose(full.positions, [0.075, 0.0, 0.0])


def test_reset_after_estop_ramps_in_again():
    safety = make_filter(ramp_in_s=1.0)
    safety.activate(np.zeros(3), now_s=0.0)
    safety.trip_estop()
    safety.reset_estop(np.zeros(3), now_s=5.0)
    np.testing.assert_allclose(step(safety, [1.0, 0.0, 0.0], now_s=5.0).positions, [0.0, 0.0, 0.0])


def test_inactive_filter_sends_nothing():
    safety = make_filter()
    safety.deactivate()
    assert not step(safety, [0.0, 0.0, 0.0]).publish


def test_config_refuses_nonsense_limits():
    with pytest.raises(ValueError, match="workspace"):
        SafetyConfig((-1,), (1,), (1,), 100.0, workspace_low_m=(1, 0, 0), workspace_high_m=(0, 1, 1))
    with pytest.raises(ValueError, match="max_joint_step_rad"):
        SafetyConfig((-1,), (1,), (1,), 100.0, max_joint_step_rad=0.0)
    with pytest.raises(ValueError, match="unknown safety limits"):
        SafetyConfig.for_robot(np.array([[-1.0, 1.0]]), np.array([1.0]), 100.0, max_step=1.0)


def test_for_robot_keeps_off_the_hard_stops():
    config = SafetyConfig.for_robot(np.array([[-1.0, 1.0], [0.0, 2.0]]), np.array([1.0, 2.0]), 50.0,
                                    max_joint_step_rad=0.2)
    np.testing.assert_allclose(config.joint_pos_low_rad, [-0.96, 0.04])
    np.testing.assert_allclose(config.step_limits_rad(), [0.02, 0.04])
