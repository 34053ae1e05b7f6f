"""make_device: names, errors, and that every device satisfies the Teleop protocol."""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from hardware.teleop import (
    DEVICE_NAMES,
    Teleop,
    TeleopCommand,
    TeleopConfig,
    TeleopDeviceError,
    make_device,
)
from hardware.teleop.scripted import ScriptedTeleop
from teleop_fakes import FakeEventSource, FakeHidTransport, assert_imports_none_of
from hardware.teleop.keys import TerminalKeySource


def test_unknown_device_names_the_valid_choices() -> None:
    with pytest.raises(ValueError) as error:
        make_device("joystick", TeleopConfig())
    message = str(error.value)
    expected = "Unknown teleop device 'joystick'; expected one of: keyboard, spacemouse, gamepad."
    assert message == expected


@pytest.mark.parametrize("name", ["spacemouse", " SpaceMouse ", "GAMEPAD", "keyboard"])
def test_known_names_build_devices_that_satisfy_the_protocol(name: str) -> None:
    read_fd, write_fd = os.pipe()
    transports = {
        "spacemouse": {"transport": FakeHidTransport()},
        "gamepad": {"source": FakeEventSource()},
        "keyboard": {"source": TerminalKeySource(read_fd)},
    }
    device = make_device(name, None, **transports[name.strip().lower()])
    try:
        assert isinstance(device, Teleop)
        assert device.help
        command = device.read()
        assert command.action.shape == (5,) and command.events == ()
    finally:
        device.close()
        os.close(read_fd)
        os.close(write_fd)


def test_device_names() -> None:
    assert DEVICE_NAMES == ("keyboard", "spacemouse", "gamepad")


def test_missing_package_is_one_clear_sentence(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "hid", None)
    expected = "^No SpaceMouse found: the optional package `hidapi`"
    with pytest.raises(TeleopDeviceError, match=expected):
        make_device("spacemouse", TeleopConfig())


def test_scripted_teleop_satisfies_the_protocol() -> None:
    idle = TeleopCommand(np.zeros(5, dtype=np.float32))
    assert isinstance(ScriptedTeleop([idle]), Teleop)


def test_importing_the_package_pulls_in_no_device_library_or_ros() -> None:
    assert_imports_none_of("hardware.teleop", ("hid", "evdev", "rclpy", "mujoco"))
