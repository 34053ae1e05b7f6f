"""Gamepad: fake evdev events through the real normalisation, mapper and reader thread."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from hardware.teleop import (
    GRIPPER_CLOSED,
    GRIPPER_OPEN,
    GamepadConfig,
    TeleopConfig,
    TeleopDeviceError,
)
from teleop_fakes import FakeEventSource
from hardware.teleop.gamepad import (
    ABS_RY,
    ABS_RZ,
    ABS_X,
    ABS_Y,
    ABS_Z,
    BUTTON_CODES,
    EV_ABS,
    EV_KEY,
    GamepadTeleop,
    normalize,
)
from hardware.teleop.gamepad_evdev import is_gamepad, open_gamepad

STICK = (-32768, 32767)
TRIGGER = (0, 1023)  # Xbox One range, to check ranges come from the device
RANGES = {ABS_X: STICK, ABS_Y: STICK, ABS_RY: STICK, ABS_Z: TRIGGER, ABS_RZ: TRIGGER}
SYN = (0, 0, 0)


def key(name: str, value: int) -> tuple[int, int, int]:
    return (EV_KEY, BUTTON_CODES[name], value)


@pytest.fixture
def gamepad() -> Iterator[Callable[..., tuple[GamepadTeleop, FakeEventSource]]]:
    devices: list[GamepadTeleop] = []

    def make(**config: object) -> tuple[GamepadTeleop, FakeEventSource]:
        source = FakeEventSource(RANGES)
        device = GamepadTeleop(TeleopConfig(**config), source=source)
        devices.append(device)
        return device, source

    yield make
    for device in devices:
        device.close()


def send(source: FakeEventSource, *events: tuple[int, int, int]) -> None:
    source.feed(*events, SYN)
    assert source.wait_processed()


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ((EV_ABS, ABS_Y, -32768), [1, 0, 0, 0]),  # left stick up
        ((EV_ABS, ABS_Y, 32767), [-1, 0, 0, 0]),  # left stick down
        ((EV_ABS, ABS_X, -32768), [0, 1, 0, 0]),  # left stick left
        ((EV_ABS, ABS_X, 32767), [0, -1, 0, 0]),  # left stick right
        ((EV_ABS, ABS_RZ, 1023), [0, 0, 1, 0]),  # right trigger
        ((EV_ABS, ABS_Z, 1023), [0, 0, -1, 0]),  # left trigger
        (key("lb", 1), [0, 0, 0, 1]),  # left shoulder: turn left
        (key("rb", 1), [0, 0, 0, -1]),  # right shoulder: turn right
    ],
)
def test_each_input_drives_its_axis_with_the_right_sign(gamepad, event, expected) -> None:
    device, source = gamepad()
    send(source, event)
    assert device.read().action[:4].tolist() == expected


def test_right_stick_z_source(gamepad) -> None:
    device, source = gamepad(gamepad=GamepadConfig(z_source="right_stick"))
    send(source, (EV_ABS, ABS_RY, -32768), (EV_ABS, ABS_RZ, 1023))  # trigger now unused
    assert device.read().action[:4].tolist() == [0, 0, 1, 0]


def test_triggers_cancel_and_release(gamepad) -> None:
    device, source = gamepad(deadzone=0.0)
    send(source, (EV_ABS, ABS_RZ, 1023), (EV_ABS, ABS_Z, 1023))
    assert device.read().action[2] == 0.0
    send(source, (EV_ABS, ABS_Z, 0))
    assert device.read().action[2] == 1.0


def test_shoulder_release_stops_yaw(gamepad) -> None:
    device, source = gamepad()
    send(source, key("lb", 1))
    send(source, key("lb", 0))
    assert device.read().action[3] == 0.0


def test_stick_deadzone_scale_and_centre(gamepad) -> None:
    device, source = gamepad(deadzone=0.1, translation_scale=0.5)
    send(source, (EV_ABS, ABS_Y, 0), (EV_ABS, ABS_X, -3000))  # centre and a slight drift
    assert device.read().action[:2].tolist() == [0.0, 0.0]
    send(source, (EV_ABS, ABS_Y, -16384))  # half up
    assert device.read().action[0] == pytest.approx(0.5 * (0.5 - 0.1) / 0.9, rel=1e-3)


def test_normalize() -> None:
    assert normalize(-32768, *STICK, centered=True) == -1.0
    assert normalize(32767, *STICK, centered=True) == 1.0
    assert normalize(0, *STICK, centered=True) == pytest.approx(0.0, abs=1e-4)
    assert normalize(512, *TRIGGER, centered=False) == pytest.approx(0.5, abs=1e-3)
    assert normalize(9999, *TRIGGER, centered=False) == 1.0


def test_default_ranges_when_the_device_gives_none() -> None:
    source = FakeEventSource()
    device = GamepadTeleop(TeleopConfig(), source=source)
    try:
        send(source, (EV_ABS, ABS_RZ, 255), (EV_ABS, ABS_Y, -32768))
        np.testing.assert_allclose(device.read().action[:3], [1, 0, 1])
    finally:
        device.close()


def test_a_toggles_gripper_once_per_press_ignoring_autorepeat(gamepad) -> None:
    device, source = gamepad()
    send(source, key("a", 1), key("a", 2), key("a", 2))
    assert device.read().action[4] == GRIPPER_CLOSED
    send(source, key("a", 0))
    send(source, key("a", 1))
    assert device.read().action[4] == GRIPPER_OPEN


@pytest.mark.parametrize(
    ("button", "event"),
    [("b", "discard"), ("y", "success"), ("x", "failure"), ("back", "quit"), ("guide", "quit")],
)
def test_buttons_fire_their_event_once(gamepad, button: str, event: str) -> None:
    device, source = gamepad()
    send(source, key(button, 1), key(button, 2))
    send(source, key(button, 2))
    assert device.read().events == (event,)
    assert device.read().events == ()


def test_start_starts_then_keeps(gamepad) -> None:
    device, source = gamepad()
    send(source, key("start", 1), key("start", 0), key("start", 1), key("start", 0))
    assert device.read().events == ("start", "keep")


def test_two_buttons_on_one_control_are_one_press_while_either_is_held(gamepad) -> None:
    device, source = gamepad()
    send(source, key("back", 1), key("guide", 1), key("back", 0))
    assert device.read().events == ("quit",)
    send(source, key("guide", 0), key("back", 1))
    assert device.read().events == ("quit",)


def test_buttons_are_configurable(gamepad) -> None:
    buttons = {"right_stick": "gripper", "a": "success"}
    device, source = gamepad(gamepad=GamepadConfig(buttons=buttons))
    send(source, key("a", 1), key("right_stick", 1))
    command = device.read()
    assert command.events == ("success",) and command.action[4] == GRIPPER_CLOSED


def test_unknown_or_yaw_button_binding_is_refused() -> None:
    with pytest.raises(ValueError, match="GamepadConfig.buttons names \\['lb', 'z'\\]"):
        config = TeleopConfig(gamepad=GamepadConfig(buttons={"lb": "quit", "z": "quit"}))
        GamepadTeleop(config, FakeEventSource())
    with pytest.raises(ValueError, match="z_source"):
        GamepadConfig(z_source="dpad")


def test_lost_gamepad_commands_zero_motion(gamepad) -> None:
    device, source = gamepad()
    send(source, (EV_ABS, ABS_Y, -32768), key("lb", 1))
    source.fail(OSError("No such device"))
    device._thread.join(2.0)
    assert not device.alive
    assert device.read().action[:4].tolist() == [0, 0, 0, 0]


def test_close_stops_thread_and_closes_source(gamepad) -> None:
    device, source = gamepad()
    device.close()
    assert not device.alive and source.closed


def test_is_gamepad() -> None:
    pad = {EV_KEY: [304, 305], EV_ABS: [(0, None), (1, None)]}
    keyboard = {EV_KEY: list(range(1, 100))}
    assert is_gamepad(pad) and not is_gamepad(keyboard)


def test_missing_evdev_gets_a_clear_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "evdev", None)
    with pytest.raises(TeleopDeviceError, match="No gamepad found: .*`evdev` is not installed"):
        GamepadTeleop(TeleopConfig())


def test_no_gamepad_connected_gets_a_clear_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "evdev", types.SimpleNamespace(list_devices=lambda: []))
    with pytest.raises(TeleopDeviceError, match="No gamepad found: .*`input` group"):
        open_gamepad()


def test_unreadable_gamepad_path_gets_a_clear_error(monkeypatch) -> None:
    def refuse(path: str) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setitem(sys.modules, "evdev", types.SimpleNamespace(InputDevice=refuse))
    with pytest.raises(TeleopDeviceError, match="Cannot open the gamepad at /dev/input/event9"):
        open_gamepad("/dev/input/event9")
