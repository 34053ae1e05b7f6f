"""``make_device``: the one entry point that builds a teleop device by name."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from hardware.teleop.base import Teleop
from hardware.teleop.config import TeleopConfig
from hardware.teleop.gamepad import GamepadTeleop
from hardware.teleop.keyboard import KeyboardTeleop
from hardware.teleop.spacemouse import SpaceMouseTeleop

DEVICES: dict[str, Callable[..., Teleop]] = {
    "keyboard": KeyboardTeleop,
    "spacemouse": SpaceMouseTeleop,
    "gamepad": GamepadTeleop,
}
DEVICE_NAMES = tuple(DEVICES)


def make_device(name: str, config: TeleopConfig | None = None, **transport: Any) -> Teleop:
    """Open the teleop device called ``name`` (``keyboard``, ``spacemouse`` or ``gamepad``).

    Args:
        name: device name, case-insensitive.
        config: mapping and device settings; None uses the defaults.
        **transport: passed to the device constructor, e.g. ``source=`` or ``transport=``
            to read a fake or already-open device instead of the real one.

    Raises:
        ValueError: ``name`` is not a known device.
        TeleopDeviceError: the device or the optional package that reads it is missing.
    """
    key = name.strip().lower()
    if key not in DEVICES:
        choices = ", ".join(DEVICE_NAMES)
        raise ValueError(f"Unknown teleop device {name!r}; expected one of: {choices}.")
    return DEVICES[key](config if config is not None else TeleopConfig(), **transport)
