"""The safety filter, one test per guarantee, on a 3-joint arm with a linear forward kinematics."""

from __future__ import annotations

import numpy as np
import pytest

from hardware.safety import CommandWatchdog, EStopLatch, SafetyConfig, SafetyFilter, default_latch_path

RATE_HZ = 100.0
DT = 1.0 / RATE_HZ


def ee_position(q: np.ndarray) -> np.ndarray:
    """End effector 0.1 m per radian along x, y, z from (0.5, 0, 0.3)."""
    return np.array([0.5, 0.0, 0.3]) + 0.1 * np.asarray(q)


def make_filter(**limits) -> SafetyFilter:
    base = dict(joint_pos_low_rad=(-1.0, -1.0, -1.0), joint_pos_high_rad=(1.0, 1.0, 1.0),
                joint_vel_limit_rad_s=(10.0, 10.0, 10.0), control_rate_hz=RATE_HZ, max_joint_step_rad=0.05,
                workspace_low_m=(0.0, -1.0, 0.0), workspace_high_m=(1.0, 1.0, 1.0), obs_timeout_s=0.05,
                command_timeout_s=0.1, ramp_in_s=0.0, fault_recovery_s=0.0)
    base.update(limits)
    safety = SafetyFilter(SafetyConfig(**base), ee_position)
    safety.activate(np.zeros(3), now_s=0.0)
    return safety


def step(safety: SafetyFilter, target, now_s: float = 1.0, q=None, obs_time_s=None):
    """Filter ``target`` with the arm measured at ``q`` (default: where the last command sent it)."""
    if q is None:
        q = safety.last_command if safety.last_command is not None else np.zeros(3)
    return safety.filter(None if target is None else np.asarray(target, dtype=float), np.asarray(q, dtype=float),
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
    step(safety, [0.02, 0.0, 0.0])
    target = step(safety, [bad, 0.0, 0.0], now_s=1.01, q=[0.02, 0.0, 0.0])
    assert not target.publish and target.reason == "non_finite_target" and safety.fault_reason == "non_finite_target"
    observation = step(safety, [0.02, 0.0, 0.0], now_s=1.02, q=[0.0, bad, 0.0])
    assert not observation.publish and observation.reason == "non_finite_observation"


def test_stale_observation_sends_nothing_and_resumes_only_after_the_recovery_time():
    safety = make_filter(fault_recovery_s=0.5, ramp_in_s=1.0)
    step(safety, [0.02, 0.0, 0.0], now_s=0.5, obs_time_s=0.49)
    fresh = step(safety, [0.02, 0.0, 0.0], now_s=1.0, obs_time_s=0.99)
    assert fresh.publish
    stale = step(safety, [0.04, 0.0, 0.0], now_s=1.1, obs_time_s=0.99)
    assert not stale.publish and stale.reason == "stale_observation"
    for t in (1.2, 1.4, 1.69):  # fresh again, but not for long enough
        waiting = step(safety, [0.04, 0.0, 0.0], now_s=t, obs_time_s=t, q=fresh.positions)
        assert not waiting.publish and waiting.reason.startswith("recovering from stale_observation")
    resumed = step(safety, [0.5, 0.0, 0.0], now_s=1.7, obs_time_s=1.7, q=[0.03, 0.0, 0.0])
    np.testing.assert_allclose(resumed.positions, [0.03, 0.0, 0.0])  # re-anchored at the arm, ramp at zero
    ramping = step(safety, [0.5, 0.0, 0.0], now_s=2.2, obs_time_s=2.2, q=[0.03, 0.0, 0.0])
    np.testing.assert_allclose(ramping.positions, [0.055, 0.0, 0.0])  # half the step, half-way through the ramp


def test_missing_target_sends_nothing():
    safety = make_filter()
    command = step(safety, None)
    assert command.reason == "no_target" and not command.publish


def test_command_watchdog_refuses_an_expired_target():
    q = np.zeros(3)
    expired = make_filter().filter(np.array([0.02, 0, 0]), q, obs_time_s=1.0, now_s=1.0, target_time_s=0.85)
    assert not expired.publish and expired.reason == "command_timeout"
    fresh = make_filter().filter(np.array([0.02, 0, 0]), q, obs_time_s=1.0, now_s=1.0, target_time_s=0.95)
    assert fresh.publish and not fresh.held


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
        command = step(safety, [0.02, 0.0, 0.0], now_s=t, q=[0.02, 0.0, 0.0])
        assert not command.publish and command.reason == "estop"
        assert not safety.may_publish(t, t)
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
    with pytest.raises(ValueError, match="safety limits has unknown field max_step"):
        SafetyConfig.for_robot(np.array([[-1.0, 1.0]]), np.array([1.0]), 100.0, max_step=1.0)


def test_for_robot_keeps_off_the_hard_stops():
    config = SafetyConfig.for_robot(np.array([[-1.0, 1.0], [0.0, 2.0]]), np.array([1.0, 2.0]), 50.0,
                                    max_joint_step_rad=0.2)
    np.testing.assert_allclose(config.joint_pos_low_rad, [-0.96, 0.04])
    np.testing.assert_allclose(config.step_limits_rad(), [0.02, 0.04])


def test_every_command_is_within_one_step_of_the_measured_position():
    safety = make_filter()
    for t in np.arange(1.0, 1.1, 0.01):  # the arm lags: it stays at zero while the policy pushes on
        command = step(safety, [1.0, 0.0, 0.0], now_s=t, q=[0.0, 0.0, 0.0])
        assert command.publish and abs(command.positions[0]) <= 0.05 + 1e-12


def test_an_arm_trailing_its_commands_within_tolerance_is_commanded_back_towards_it_without_a_fault():
    """A slow or heavily loaded arm (the hard preset's doubled link masses and damping) can trail
    the last command by more than a step, and early in a ramp-in the step allowed near the arm is
    small: no command can be near both, and the filter comes back towards the arm, not a fault."""
    safety = make_filter(tracking_tolerance_rad=0.1, ramp_in_s=1.0)
    safety.activate(np.zeros(3), now_s=0.0)
    for t in np.arange(1.0, 1.5, 0.05):  # past the ramp: the last command runs ahead of a stuck arm
        command = step(safety, [1.0, 0.0, 0.0], now_s=t, q=[0.0, 0.0, 0.0])
    assert command.publish and command.positions[0] == pytest.approx(0.05)  # one full step from the arm
    for trailing, t in ((0.12, 1.5), (0.14, 1.55)):  # the last command 0.05 ahead; the arm falls back further
        before = safety.last_command
        command = step(safety, [1.0, 0.0, 0.0], now_s=t, q=before - [trailing, 0.0, 0.0])
        assert command.publish and not safety.faulted, command.reason
        assert abs(command.positions[0] - (before[0] - trailing)) <= 0.05 + 1e-12  # within a step of the arm
    safety.activate(np.zeros(3), now_s=2.0)  # re-anchored: the ramp starts at nothing allowed
    step(safety, [1.0, 0.0, 0.0], now_s=2.5, q=[0.0, 0.0, 0.0])  # half a step out, the arm still at zero
    command = step(safety, [1.0, 0.0, 0.0], now_s=2.52, q=[-0.07, 0.0, 0.0])  # it sagged back
    assert command.publish and not safety.faulted and -0.07 <= command.positions[0] <= -0.07 + 0.026 + 1e-12
    jumped = step(safety, [1.0, 0.0, 0.0], now_s=2.55, q=command.positions - [0.2, 0.0, 0.0])  # past the tolerance
    assert not jumped.publish and jumped.reason.startswith("joint_jump")


def test_a_jump_of_the_measured_position_is_a_fault_then_re_anchors_and_ramps_in():
    safety = make_filter(fault_recovery_s=0.2, ramp_in_s=1.0)
    safety.activate(np.zeros(3), now_s=0.0)
    for t in np.arange(1.0, 1.5, 0.01):  # past the ramp: full steps
        command = step(safety, [1.0, 0.0, 0.0], now_s=t)
    moved = command.positions
    jumped = step(safety, [1.0, 0.0, 0.0], now_s=1.5, q=moved + [0.0, 0.5, 0.0])  # a restart, a push by hand
    assert not jumped.publish and jumped.reason.startswith("joint_jump") and safety.faulted
    for t in (1.51, 1.6, 1.7):
        assert not step(safety, [1.0, 0.0, 0.0], now_s=t, q=moved + [0.0, 0.5, 0.0]).publish
    resumed = step(safety, [1.0, 0.0, 0.0], now_s=1.72, q=moved + [0.0, 0.5, 0.0])
    np.testing.assert_allclose(resumed.positions, moved + [0.0, 0.5, 0.0])  # where the arm is, not where it was


def test_a_glitching_measurement_never_becomes_the_anchor():
    safety = make_filter(fault_recovery_s=0.1)
    assert not step(safety, [0.0, 0.0, 0.0], now_s=1.0, q=[0.5, 0.0, 0.0]).publish
    for i, t in enumerate(np.arange(1.01, 1.5, 0.01)):  # alternates between two readings 0.5 rad apart
        assert not step(safety, [0.0, 0.0, 0.0], now_s=t, q=[0.5 * (i % 2), 0.0, 0.0]).publish
    # steady at 0 from the last reading (t = 1.49) on: resumes 0.1 s later, not before
    assert not step(safety, [0.0, 0.0, 0.0], now_s=1.55, q=[0.0, 0.0, 0.0]).publish
    assert step(safety, [0.0, 0.0, 0.0], now_s=1.6, q=[0.0, 0.0, 0.0]).publish


def test_a_fault_during_recovery_starts_the_wait_again():
    safety = make_filter(fault_recovery_s=0.5)
    safety.fault("stale_observation", 1.0)
    assert not step(safety, [0.0, 0.0, 0.0], now_s=1.1, q=np.zeros(3)).publish
    safety.fault("non_finite_observation", 1.4)
    assert not step(safety, [0.0, 0.0, 0.0], now_s=1.7, q=np.zeros(3)).publish  # good since 1.7, not 1.1
    assert not step(safety, [0.0, 0.0, 0.0], now_s=2.1, q=np.zeros(3)).publish
    assert step(safety, [0.0, 0.0, 0.0], now_s=2.2, q=np.zeros(3)).publish


def test_repeated_faults_latch_until_activated_again():
    safety = make_filter(fault_latch_count=3, fault_latch_window_s=10.0)
    for t in (1.0, 2.0, 3.0):
        safety.fault("stale_observation", t)
        assert step(safety, [0.0, 0.0, 0.0], now_s=t + 0.01, q=np.zeros(3)).publish == (t < 3.0)
    assert safety.latched_reason.startswith("3 faults within 10 s")
    assert not step(safety, [0.0, 0.0, 0.0], now_s=60.0, q=np.zeros(3)).publish  # time alone does not clear it
    safety.activate(np.zeros(3), now_s=61.0)
    assert step(safety, [0.0, 0.0, 0.0], now_s=61.0, q=np.zeros(3)).publish


def test_an_observation_too_old_at_publish_time_is_not_sent():
    safety = make_filter(fault_recovery_s=0.5)
    assert step(safety, [0.01, 0.0, 0.0], now_s=1.0).publish
    assert safety.may_publish(obs_time_s=1.0, now_s=1.04)
    assert not safety.may_publish(obs_time_s=1.0, now_s=1.3)  # inference took 0.3 s
    assert safety.fault_reason == "stale_at_publish"


def test_implausible_measurement_is_a_fault():
    safety = make_filter()
    command = step(safety, [0.0, 0.0, 0.0], q=[1e6, 0.0, 0.0])
    assert not command.publish and command.reason == "implausible_observation"


def test_a_joint_measured_outside_its_limits_may_only_come_back():
    safety = make_filter(max_joint_step_rad=0.05)
    safety.activate(np.array([1.05, 0.0, 0.0]), now_s=0.0)  # past the 1.0 limit, within the plausible band
    out = step(safety, [2.0, 0.0, 0.0], now_s=1.0, q=[1.05, 0.0, 0.0])
    np.testing.assert_allclose(out.positions, [1.05, 0.0, 0.0])
    back = step(safety, [0.0, 0.0, 0.0], now_s=1.01, q=[1.05, 0.0, 0.0])
    np.testing.assert_allclose(back.positions, [1.0, 0.0, 0.0])


def test_invariants_hold_for_random_arms_and_targets():
    rng = np.random.default_rng(0)
    safety = make_filter(ramp_in_s=0.3, max_joint_step_rad=0.05, joint_vel_limit_rad_s=(3.0, 4.0, 10.0),
                         fault_latch_count=1000)
    limit = safety.config.step_limits_rad()
    q, last, anchored_s, sent = np.zeros(3), None, 0.0, 0
    for k in range(3000):
        t = 1.0 + 0.01 * k
        if rng.random() < 0.02:
            q = np.clip(q + rng.normal(0.0, 0.3, 3), -1.05, 1.05)  # pushed, restarted or reset
        command = step(safety, rng.uniform(-1.5, 1.5, 3), now_s=t, q=q)
        if not command.publish:
            last = None
            continue
        sent += 1
        ramp = safety.ramp(t)
        assert np.all(np.abs(command.positions - q) <= limit * ramp + 1e-12)  # (a) from the measured arm
        if last is not None:
            assert np.all(np.abs(command.positions - last) <= limit + 1e-12)  # (b) from the last command
        assert np.all(command.positions <= np.maximum(1.0, q) + 1e-12)  # (c) limits, or no further out
        assert np.all(command.positions >= np.minimum(-1.0, q) - 1e-12)
        last = command.positions
        q = q + 0.7 * (command.positions - q)  # a lagging arm
    assert sent > 1000


def test_the_estop_latch_file_survives_a_restart(tmp_path):
    path = tmp_path / "state" / "estop-policy.latch"
    latch = EStopLatch(path)
    assert not latch.tripped and not path.exists()
    latch.trip("estop topic")
    assert EStopLatch(path).tripped and "estop topic" in EStopLatch(path).reason  # a new process
    assert EStopLatch(path).reset() and not path.exists() and not EStopLatch(path).tripped
    path.write_text("{not json")
    assert EStopLatch(path).tripped  # unreadable: stay stopped


def test_the_default_latch_file_is_per_domain_and_node_under_the_state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("ROBOT_RL_STATE_DIR", str(tmp_path))
    assert default_latch_path("/robot/policy", 3) == tmp_path / "estop-d3-robot-policy.latch"
    monkeypatch.delenv("ROBOT_RL_STATE_DIR")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_latch_path("/policy") == tmp_path / "xdg" / "robot_rl" / "estop-d0-policy.latch"


def test_the_nodes_take_their_safety_parameters_from_the_one_declaration():
    from dataclasses import fields

    from hardware.ros.policy_node import PolicyNodeConfig
    from hardware.ros.teleop_node import TeleopNodeConfig
    from hardware.safety import SafetyLimits, limits_of

    policy = PolicyNodeConfig(policy_path="p")
    assert limits_of(policy) == limits_of(SafetyLimits())
    teleop = limits_of(TeleopNodeConfig())
    assert teleop == {**limits_of(SafetyLimits()), "command_timeout_s": 0.3, "ramp_in_s": 0.5}
    assert {f.name for f in fields(SafetyLimits)} <= {f.name for f in fields(TeleopNodeConfig)}
    config = SafetyConfig.for_robot(np.array([[-1.0, 1.0]]), np.array([1.0]), 50.0, **teleop)
    assert config.command_timeout_s == 0.3 and config.fault_latch_count == 5
