"""Gamepad teleop from Linux evdev events, read through an injectable event source.

Mapping (Xbox-style names; the operator stands behind the robot, facing its +x):

    left stick up / down        +dx / -dx
    left stick left / right     +dy / -dy
    right trigger / left trigger  +dz / -dz   (z_source="triggers", the default)
    right stick up / down       +dz / -dz     (z_source="right_stick")
    left / right shoulder (LB / RB)  +dyaw (turn left) / -dyaw (turn right)
    right stick click (held)    intervene: override the policy while held
    A gripper toggle, Start start then keep, B discard, Y success, X failure,
    Back or Guide quit  (rebind in GamepadConfig.buttons)

evdev's stick y axes grow downward, hence the sign flips below. Button codes follow the
kernel's gamepad layout (BTN_SOUTH = A, BTN_EAST = B, BTN_NORTH = X, BTN_WEST = Y); a few
drivers swap X and Y, which ``GamepadConfig.buttons`` can undo.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from hardware.teleop.config import TeleopConfig
from hardware.teleop.threaded import ThreadedTeleop

EV_KEY, EV_ABS = 1, 3
ABS_X, ABS_Y, ABS_Z, ABS_RX, ABS_RY, ABS_RZ = 0, 1, 2, 3, 4, 5
TRIGGERS = (ABS_Z, ABS_RZ)
BUTTON_CODES = {
    "a": 304, "b": 305, "x": 307, "y": 308, "lb": 310, "rb": 311,
    "back": 314, "start": 315, "guide": 316, "left_stick": 317, "right_stick": 318,
}
YAW_BUTTONS = ("lb", "rb")
# Ranges of the Linux xpad driver, used when the device does not report its own.
DEFAULT_STICK_RANGE = (-32768, 32767)
DEFAULT_TRIGGER_RANGE = (0, 255)

GAMEPAD_HELP = """\
Gamepad teleop (operator behind the robot, facing +x)
  left stick                 x (up = forward) and y (left = left)
  right / left trigger       +z / -z  (or the right stick vertically)
  LB / RB                    +yaw (turn left) / -yaw (turn right)
  right stick click (hold)   intervene: take over from the policy while held
  A gripper, Start start/keep, B discard, Y success, X failure, Back or Guide quit"""


@dataclass(frozen=True)
class InputEvent:
    """One evdev input event (evdev's own events have the same three fields)."""

    type: int
    code: int
    value: int


class EventSource(Protocol):
    """A source of evdev events (the real one wraps ``evdev.InputDevice``)."""

    def read(self, timeout_s: float) -> list[InputEvent]:
        """Events that arrived within ``timeout_s``; empty on timeout."""
        ...

    def abs_range(self, code: int) -> tuple[int, int] | None:
        """(min, max) of an absolute axis, or None if the device does not say."""
        ...

    def close(self) -> None:
        """Release the device."""
        ...


def normalize(value: int, low: int, high: int, centered: bool) -> float:
    """Raw axis value to [-1, 1] (centred sticks) or [0, 1] (triggers)."""
    unit = (value - low) / max(high - low, 1)
    return float(np.clip(2.0 * unit - 1.0 if centered else unit, -1.0, 1.0))


class GamepadTeleop(ThreadedTeleop):
    """Teleop from an evdev gamepad; see the module docstring for the mapping.

    Args:
        config: shared teleop settings; ``config.gamepad`` holds the device path, the z
            source and the button bindings.
        source: event source; None opens ``config.gamepad.device_path`` or the first gamepad.
    """

    help = GAMEPAD_HELP

    def __init__(self, config: TeleopConfig, source: EventSource | None = None) -> None:
        super().__init__(config, "gamepad")
        self._bindings = _bindings(config.gamepad.buttons)
        if source is None:
            from hardware.teleop.gamepad_evdev import open_gamepad

            source = open_gamepad(config.gamepad.device_path)
        self._source = source
        self._abs: dict[int, float] = {}  # axis code -> normalised value
        self._held: dict[int, bool] = {}  # button code -> pressed
        self._ranges: dict[int, tuple[int, int]] = {}  # asked once: a device query per event
        self._start()

    def _poll(self) -> None:
        events = self._source.read(self._config.poll_timeout_s)
        if events:
            self._apply(events)

    def _apply(self, events: Iterable[InputEvent]) -> None:
        for event in events:
            if event.type == EV_ABS:
                self._abs[event.code] = self._normalize(event.code, event.value)
            elif event.type == EV_KEY:
                # value 2 is auto-repeat: still held, so the mapper sees no new edge
                self._held[event.code] = event.value != 0
                self._mapper.set_buttons(self._control_levels())
        self._mapper.set_axes(self._robot_axes())

    def _control_levels(self) -> dict[str, bool]:
        levels: dict[str, bool] = {}
        for code, control in self._bindings.items():  # two buttons on one control: either
            levels[control] = levels.get(control, False) or self._held.get(code, False)
        return levels

    def _normalize(self, code: int, value: int) -> float:
        centered = code not in TRIGGERS
        if code not in self._ranges:
            default = DEFAULT_STICK_RANGE if centered else DEFAULT_TRIGGER_RANGE
            self._ranges[code] = self._source.abs_range(code) or default
        return normalize(value, *self._ranges[code], centered=centered)

    def _robot_axes(self) -> np.ndarray:
        axis = self._abs.get
        if self._config.gamepad.z_source == "triggers":
            dz = axis(ABS_RZ, 0.0) - axis(ABS_Z, 0.0)
        else:
            dz = -axis(ABS_RY, 0.0)
        lb, rb = (self._held.get(BUTTON_CODES[b], False) for b in YAW_BUTTONS)
        return np.array([-axis(ABS_Y, 0.0), -axis(ABS_X, 0.0), dz, float(lb) - float(rb)])

    def _close_transport(self) -> None:
        self._source.close()


def _bindings(buttons: dict[str, str]) -> dict[int, str]:
    unknown = [name for name in buttons if name not in BUTTON_CODES or name in YAW_BUTTONS]
    if unknown:
        bindable = [name for name in BUTTON_CODES if name not in YAW_BUTTONS]
        raise ValueError(
            f"GamepadConfig.buttons names {unknown}; expected buttons from {bindable}."
        )
    return {BUTTON_CODES[name]: control for name, control in buttons.items()}
