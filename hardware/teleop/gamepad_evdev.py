"""The real gamepad transport: finds and opens a Linux evdev gamepad.

``evdev`` is optional (and Linux only) and imported only here, when a real device is opened.
"""

from __future__ import annotations

import logging
import select
from typing import Any

from hardware.teleop.base import TeleopDeviceError
from hardware.teleop.gamepad import ABS_X, ABS_Y, BUTTON_CODES, EV_ABS, EV_KEY, InputEvent

logger = logging.getLogger(__name__)

_PERMISSION_HINT = (
    "check it is connected and that your user can read /dev/input/event* (the `input` group)"
)


class EvdevSource:
    """Reads events from an ``evdev.InputDevice`` with a timeout."""

    def __init__(self, device: Any) -> None:
        self._device = device
        self.name = f"{device.name} ({device.path})"

    def read(self, timeout_s: float) -> list[InputEvent]:
        """Events that arrived within ``timeout_s``; empty on timeout."""
        ready, _, _ = select.select([self._device.fd], [], [], timeout_s)
        if not ready:
            return []
        try:
            return [InputEvent(e.type, e.code, e.value) for e in self._device.read()]
        except BlockingIOError:
            return []

    def abs_range(self, code: int) -> tuple[int, int] | None:
        """(min, max) the device reports for an absolute axis, or None."""
        try:
            info = self._device.absinfo(code)
        except (OSError, KeyError):
            return None
        return (info.min, info.max) if info.max > info.min else None

    def close(self) -> None:
        """Close the input device."""
        self._device.close()


def open_gamepad(path: str | None = None) -> EvdevSource:
    """Open the gamepad at ``path``, or the first readable one.

    Raises:
        TeleopDeviceError: ``evdev`` is missing, or no gamepad is found or readable.
    """
    evdev = _import_evdev()
    device = _open_path(evdev, path) if path else _first_gamepad(evdev)
    source = EvdevSource(device)
    logger.info("Opened gamepad %s.", source.name)
    return source


def is_gamepad(capabilities: dict[int, list]) -> bool:
    """Whether evdev capabilities look like a gamepad: two stick axes and the A button."""
    axes = {c[0] if isinstance(c, tuple) else c for c in capabilities.get(EV_ABS, [])}
    return {ABS_X, ABS_Y} <= axes and BUTTON_CODES["a"] in capabilities.get(EV_KEY, [])


def _first_gamepad(evdev: Any) -> Any:
    for device_path in evdev.list_devices():
        try:
            device = evdev.InputDevice(device_path)
        except OSError:
            continue
        if is_gamepad(device.capabilities(absinfo=False)):
            return device
        device.close()
    raise TeleopDeviceError(f"No gamepad found: {_PERMISSION_HINT}.")


def _open_path(evdev: Any, path: str) -> Any:
    try:
        return evdev.InputDevice(path)
    except OSError as exc:
        raise TeleopDeviceError(
            f"Cannot open the gamepad at {path} ({exc}): {_PERMISSION_HINT}."
        ) from exc


def _import_evdev() -> Any:
    try:
        import evdev
    except ImportError as exc:
        raise TeleopDeviceError(
            "No gamepad found: the optional package `evdev` is not installed "
            "(pip install evdev; Linux only)."
        ) from exc
    return evdev
