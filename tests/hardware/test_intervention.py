"""Interventions: the intervene level through real device paths, takeover and smooth handback."""

from __future__ import annotations

import os
import struct
import time
from collections.abc import Iterator

import numpy as np
import pytest

from hardware.control.intervention import Intervention, InterventionConfig
from hardware.teleop import (
    CONTROLS,
    EVENTS,
    CommandMapper,
    GamepadTeleop,
    KeyboardTeleop,
    ScriptedTeleop,
    SpaceMouseConfig,
    SpaceMouseTeleop,
    Teleop,
    TeleopCommand,
    TeleopConfig,
)
from hardware.teleop.gamepad import BUTTON_CODES, EV_KEY
from hardware.teleop.keys import TerminalKeySource
from teleop_fakes import FakeClock, FakeEventSource, FakeHidTransport, assert_imports_none_of

RATE_HZ = 20.0
POLICY = np.array([0.5, -0.5, 0.2, 0.0, -1.0], dtype=np.float32)  # gripper open
HUMAN = np.array([-0.4, 0.3, 0.0, 0.6, 1.0], dtype=np.float32)  # gripper closed
IDLE = np.zeros(5, dtype=np.float32)
WAIT_S = 2.0


def held(action: np.ndarray = HUMAN, *events: str) -> TeleopCommand:
    return TeleopCommand(action.copy(), events, intervening=True)


def released(action: np.ndarray = IDLE, *events: str) -> TeleopCommand:
    return TeleopCommand(action.copy(), events)


def run(intervention: Intervention, steps: int, policy: np.ndarray = POLICY) -> list:
    return [intervention.step(policy) for _ in range(steps)]


# --- the intervene level in the teleop layer -------------------------------------------------


def test_intervene_is_a_level_not_an_event() -> None:
    assert "intervene" in CONTROLS and "intervene" not in EVENTS
    mapper = CommandMapper(TeleopConfig())
    assert not mapper.command().intervening
    mapper.set_button("intervene", True)
    first, second = mapper.command(), mapper.command()
    assert first.intervening and second.intervening  # true while held, not once per press
    assert first.events == () and second.events == ()
    mapper.set_button("intervene", False)
    assert not mapper.command().intervening


def test_release_all_ends_an_intervention() -> None:
    mapper = CommandMapper(TeleopConfig())
    mapper.set_button("intervene", True)
    mapper.release_all()  # a lost device hands control back to the policy
    assert not mapper.command().intervening


def test_intervene_on_motion_counts_axes_past_the_deadzone() -> None:
    mapper = CommandMapper(TeleopConfig(deadzone=0.1, intervene_on_motion=True))
    mapper.set_axes([0.05, 0.0, -0.08, 0.0])  # drift inside the deadzone
    assert not mapper.command().intervening
    mapper.set_axes([0.0, 0.0, 0.0, 0.3])
    assert mapper.command().intervening
    mapper.set_axes([0.0] * 4)
    assert not mapper.command().intervening


def test_motion_alone_does_not_intervene_by_default() -> None:
    mapper = CommandMapper(TeleopConfig(deadzone=0.0))
    mapper.set_axes([1.0, 0.0, 0.0, 0.0])
    assert not mapper.command().intervening


def test_gamepad_right_stick_click_intervenes_while_held() -> None:
    source = FakeEventSource()
    device = GamepadTeleop(TeleopConfig(), source=source)
    try:
        code = BUTTON_CODES["right_stick"]
        for value, expected in [(1, True), (2, True), (0, False)]:  # press, auto-repeat, release
            source.feed((EV_KEY, code, value))
            assert source.wait_processed()
            command = device.read()
            assert command.intervening is expected and command.events == ()
    finally:
        device.close()


@pytest.fixture
def keyboard() -> Iterator[tuple[KeyboardTeleop, int, FakeClock]]:
    read_fd, write_fd = os.pipe()
    clock = FakeClock()
    device = KeyboardTeleop(TeleopConfig(), source=TerminalKeySource(read_fd), clock=clock)
    yield device, write_fd, clock
    device.close()
    os.close(read_fd)
    os.close(write_fd)


def read_until(device: Teleop, done) -> TeleopCommand:
    deadline = time.monotonic() + WAIT_S
    while not done(command := device.read()):
        assert time.monotonic() < deadline, f"timed out; last {command}"
        time.sleep(0.002)
    return command


def test_keyboard_i_intervenes_while_auto_repeating(keyboard) -> None:
    device, write_fd, clock = keyboard
    os.write(write_fd, b"i")
    read_until(device, lambda c: c.intervening)
    debounce_s = TeleopConfig().keyboard.debounce_s
    clock.now += debounce_s * 0.9  # the auto-repeat delay: still held
    os.write(write_fd, b"iy")  # a repeat, then a marker to know it was read
    read_until(device, lambda c: "success" in c.events)
    clock.now += debounce_s * 0.9
    assert device.read().intervening
    clock.now += debounce_s * 0.2  # no byte for longer than debounce_s: released
    assert not device.read().intervening


def test_keyboard_motion_keys_keep_an_intervention_going(keyboard) -> None:
    # A terminal repeats only the last key held: after i then w, only w bytes arrive.
    device, write_fd, clock = keyboard
    os.write(write_fd, b"i")
    read_until(device, lambda c: c.intervening)
    debounce_s = TeleopConfig().keyboard.debounce_s
    for marker, event in [(b"y", "success"), (b"n", "failure"), (b"y", "success")]:
        clock.now += debounce_s * 0.8
        os.write(write_fd, b"w" + marker)
        command = read_until(device, lambda c, event=event: event in c.events)
        assert command.intervening and command.action[0] == 1.0
    clock.now += debounce_s * 1.1
    assert not device.read().intervening


def test_keyboard_motion_alone_does_not_intervene(keyboard) -> None:
    device, write_fd, _clock = keyboard
    os.write(write_fd, b"wy")
    command = read_until(device, lambda c: "success" in c.events)
    assert command.action[0] == 1.0 and not command.intervening


def test_spacemouse_can_intervene_on_motion_or_a_bound_button() -> None:
    transport = FakeHidTransport()
    config = TeleopConfig(
        intervene_on_motion=True, spacemouse=SpaceMouseConfig(buttons=("gripper", "intervene"))
    )
    device = SpaceMouseTeleop(config, transport=transport)
    try:
        transport.feed(bytes([1]) + struct.pack("<3h", 0, -200, 0))  # push away
        assert transport.wait_processed() and device.read().intervening
        transport.feed(bytes([1]) + struct.pack("<3h", 0, 0, 0), bytes([3, 0b10, 0]))
        assert transport.wait_processed() and device.read().intervening  # right button held
        transport.feed(bytes([3, 0, 0]))
        assert transport.wait_processed() and not device.read().intervening
    finally:
        device.close()


def test_scripted_teleop_runs_the_real_mapping() -> None:
    script = [held(HUMAN, "start"), released(np.array([0.05, 0, 0, 0, 0], dtype=np.float32))]
    device = ScriptedTeleop(script)
    first = device.read()
    np.testing.assert_array_equal(first.action, HUMAN)  # passes through by default
    assert first.intervening and first.events == ("start",)
    assert not device.read().intervening
    again = device.read()  # after the script: the last input stays held, without events
    assert again.action[0] == pytest.approx(0.05) and again.events == ()

    mapped = ScriptedTeleop(script, TeleopConfig(deadzone=0.1, intervene_on_motion=True))
    assert mapped.read().intervening
    second = mapped.read()  # 0.05 is inside the deadzone: no motion, so no intervention
    assert second.action[0] == 0.0 and not second.intervening


def test_scripted_teleop_takes_a_function_of_the_step() -> None:
    device = ScriptedTeleop(lambda i: held() if i % 2 else released())
    assert [device.read().intervening for _ in range(4)] == [False, True, False, True]
    assert isinstance(device, Teleop)
    with pytest.raises(ValueError, match="script is empty"):
        ScriptedTeleop([])


# --- Intervention: takeover and handback -----------------------------------------------------


def test_policy_acts_until_the_operator_takes_over() -> None:
    intervention = Intervention(ScriptedTeleop([released(), held(), held()]), RATE_HZ)
    free, *taken = run(intervention, 3)
    np.testing.assert_array_equal(free.action, POLICY)
    assert not free.intervened and not free.operator
    for step in taken:
        np.testing.assert_array_equal(step.action, HUMAN)
        assert step.action.dtype == np.float32
        assert step.intervened and step.operator


def test_handback_ramps_monotonically_to_the_policy_action() -> None:
    config = InterventionConfig(handback_s=0.5)
    n = round(config.handback_s * RATE_HZ)
    intervention = Intervention(ScriptedTeleop([held(), released()]), RATE_HZ, config)
    steps = run(intervention, n + 4)
    actions = np.stack([s.action for s in steps])
    motion, diff = actions[:, :4], POLICY[:4] - HUMAN[:4]

    assert steps[0].operator and not any(s.operator for s in steps[1:])
    assert all(s.intervened for s in steps[: n]) and not any(s.intervened for s in steps[n:])
    np.testing.assert_array_equal(actions[n], POLICY)  # exactly the policy, at step n
    np.testing.assert_array_equal(actions[n:], np.tile(POLICY, (4, 1)))
    steps_taken = np.diff(motion[: n + 1], axis=0)
    assert (steps_taken * np.sign(diff) >= -1e-6).all()  # monotone toward the policy
    assert (np.abs(steps_taken) <= np.abs(diff) / n + 1e-6).all()  # no jump
    # The gripper is not blended to a half-closed target: the operator's until the end.
    assert (actions[:n, 4] == HUMAN[4]).all() and actions[n, 4] == POLICY[4]


def test_zero_handback_returns_control_at_once() -> None:
    device = ScriptedTeleop([held(), released()])
    intervention = Intervention(device, RATE_HZ, InterventionConfig(handback_s=0.0))
    taken, back = run(intervention, 2)
    assert taken.intervened and not back.intervened and not back.operator
    np.testing.assert_array_equal(back.action, POLICY)


def test_taking_over_again_during_a_handback_is_the_operator_at_once() -> None:
    again = np.array([0.1, 0.2, 0.3, 0.4, -1.0], dtype=np.float32)
    script = [held(), released(), released(), held(again)]
    intervention = Intervention(ScriptedTeleop(script), RATE_HZ)
    steps = run(intervention, 4)
    assert steps[2].intervened and not steps[2].operator
    np.testing.assert_array_equal(steps[3].action, again)
    assert steps[3].operator


def test_reset_drops_a_handback_in_progress() -> None:
    intervention = Intervention(ScriptedTeleop([held(), released()]), RATE_HZ)
    run(intervention, 2)
    intervention.reset()
    step = intervention.step(POLICY)
    assert not step.intervened
    np.testing.assert_array_equal(step.action, POLICY)


def test_rate_counts_intervened_steps_since_the_last_pop() -> None:
    config = InterventionConfig(handback_s=0.1)  # 2 steps: one blended, then the policy
    script = [released(), held(), held(), released(), released(), released()]
    intervention = Intervention(ScriptedTeleop(script), RATE_HZ, config)
    assert intervention.rate == 0.0  # no steps yet
    run(intervention, 6)
    assert intervention.rate == pytest.approx(3 / 6)  # two held, one blended
    assert intervention.pop_rate() == pytest.approx(0.5)
    assert intervention.rate == 0.0
    run(intervention, 2)
    assert intervention.pop_rate() == 0.0


def test_events_pass_through_once() -> None:
    script = [held(HUMAN, "start"), released(IDLE, "success", "keep")]
    intervention = Intervention(ScriptedTeleop(script), RATE_HZ)
    assert [s.events for s in run(intervention, 3)] == [("start",), ("success", "keep"), ()]


def test_close_closes_the_device() -> None:
    device = ScriptedTeleop([released()])
    Intervention(device, RATE_HZ).close()
    assert device.closed


def test_intervene_on_motion_drives_a_takeover() -> None:
    push = TeleopCommand(np.array([0.8, 0, 0, 0, -1], dtype=np.float32))
    device = ScriptedTeleop([push, released()], TeleopConfig(intervene_on_motion=True))
    taken, handing_back = run(Intervention(device, RATE_HZ), 2)
    assert taken.operator and taken.action[0] == pytest.approx((0.8 - 0.1) / 0.9)
    assert handing_back.intervened and not handing_back.operator


@pytest.mark.parametrize(
    ("policy_action", "message"),
    [
        (np.zeros(4), r"has shape \(4,\)"),
        (np.zeros((1, 5)), r"has shape \(1, 5\)"),
        (np.array([0, 0, np.nan, 0, 0]), r"is \[0.0, 0.0, nan, 0.0, 0.0\]"),
        (np.array([0, 0, 0, np.inf, 0]), "inf"),
        ("left", "not numeric"),
    ],
)
def test_bad_policy_action_is_one_sentence(policy_action, message: str) -> None:
    intervention = Intervention(ScriptedTeleop([released()]), RATE_HZ)
    with pytest.raises(ValueError, match=message) as error:
        intervention.step(policy_action)
    assert str(error.value).endswith("expected 5 finite numbers [dx, dy, dz, dyaw, gripper].")
    assert str(error.value).count(". ") == 0


@pytest.mark.parametrize("handback_s", [-0.1, float("nan"), float("inf")])
def test_bad_handback_is_one_sentence(handback_s: float) -> None:
    with pytest.raises(ValueError, match=r"^InterventionConfig.handback_s is .*; expected"):
        InterventionConfig(handback_s=handback_s)


@pytest.mark.parametrize("rate_hz", [0.0, -5.0, float("nan")])
def test_bad_rate_is_one_sentence(rate_hz: float) -> None:
    with pytest.raises(ValueError, match=r"^Intervention rate_hz is .*; expected a positive"):
        Intervention(ScriptedTeleop([released()]), rate_hz)


def test_intervention_module_is_ros_free() -> None:
    assert_imports_none_of("hardware.control.intervention", ("rclpy", "mujoco", "torch"))
