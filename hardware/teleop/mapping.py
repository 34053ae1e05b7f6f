"""The one place where raw device input becomes a TeleopCommand, shared by every device.

Devices only translate their wire format into robot-frame axes in [-1, 1] and button levels
(pressed or not); deadzone, scaling, clipping, the gripper, the intervene level and
edge-triggered events live here.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping, Sequence

import numpy as np

from hardware.teleop.base import (
    CONTROLS,
    GRIPPER_CLOSED,
    GRIPPER_OPEN,
    TeleopCommand,
)
from hardware.teleop.config import TeleopConfig

N_AXES = 4
MAX_PENDING_EVENTS = 64  # bounded so a caller that never reads cannot grow memory


def apply_deadzone(values: np.ndarray, deadzone: float) -> np.ndarray:
    """Zero inputs with ``|v| <= deadzone`` and rescale the rest onto (0, 1].

    The rescale keeps the output continuous at the deadzone edge (no jump from 0 to
    ``deadzone``) and still reaching +-1 at full deflection. Inputs are clipped to [-1, 1].
    """
    v = np.clip(np.asarray(values, dtype=np.float64), -1.0, 1.0)
    magnitude = np.maximum(np.abs(v) - deadzone, 0.0) / (1.0 - deadzone)
    return np.sign(v) * magnitude


class CommandMapper:
    """Holds one device's latest axes and button levels and turns them into commands.

    Thread-safe: a device's reader thread writes while the caller's loop reads.
    """

    def __init__(self, config: TeleopConfig) -> None:
        self._deadzone = config.deadzone
        self._order = np.asarray(config.axis_order)
        self._gains = config.gains()
        self._hold_gripper = config.gripper_mode == "hold"
        self._intervene_on_motion = config.intervene_on_motion
        self._lock = threading.Lock()
        self._raw = np.zeros(N_AXES)
        self._levels: dict[str, bool] = {}
        self._gripper_closed = False
        self._recording = False
        self._events: deque[str] = deque(maxlen=MAX_PENDING_EVENTS)

    def set_axes(self, values: Sequence[float], indices: Sequence[int] | None = None) -> None:
        """Set raw robot-frame axes (all four, or those at ``indices``), nominally in [-1, 1]."""
        with self._lock:
            if indices is None:
                self._raw[:] = values
            else:
                self._raw[list(indices)] = values

    def set_buttons(self, levels: Mapping[str, bool]) -> None:
        """Set the level of each named control; a rising edge fires its action once."""
        with self._lock:
            for control, pressed in levels.items():
                self._set_level(control, bool(pressed))

    def set_button(self, control: str, pressed: bool) -> None:
        """Set one control's level; see :meth:`set_buttons`."""
        self.set_buttons({control: pressed})

    def release_all(self) -> None:
        """Zero the axes and release every button, e.g. when the device is lost."""
        with self._lock:
            self._raw[:] = 0.0
            for control in list(self._levels):
                self._levels[control] = False

    def axes(self, raw: Sequence[float]) -> np.ndarray:
        """Map raw ``[dx, dy, dz, dyaw]`` through deadzone, order, signs, scale and clip."""
        shaped = apply_deadzone(np.asarray(raw, dtype=np.float64), self._deadzone)
        return np.clip(shaped[self._order] * self._gains, -1.0, 1.0)

    def command(self) -> TeleopCommand:
        """The current command, consuming the events pressed since the previous call."""
        with self._lock:
            action = np.empty(N_AXES + 1, dtype=np.float32)
            action[:N_AXES] = self.axes(self._raw)
            action[N_AXES] = GRIPPER_CLOSED if self._gripper_is_closed() else GRIPPER_OPEN
            events = tuple(self._events)
            self._events.clear()
            intervening = self._levels.get("intervene", False) or (
                self._intervene_on_motion and bool(action[:N_AXES].any())
            )
        return TeleopCommand(action=action, events=events, intervening=intervening)

    def _gripper_is_closed(self) -> bool:
        if self._hold_gripper:
            return self._levels.get("gripper", False)
        return self._gripper_closed

    def _set_level(self, control: str, pressed: bool) -> None:
        if control not in CONTROLS:
            raise ValueError(f"Unknown teleop control {control!r}; expected one of {CONTROLS}.")
        was_pressed = self._levels.get(control, False)
        self._levels[control] = pressed
        if pressed and not was_pressed:
            self._on_press(control)

    def _on_press(self, control: str) -> None:
        if control == "intervene":  # a level, read in command(); its press is no event
            return
        if control == "gripper":
            self._gripper_closed = not self._gripper_closed
            return
        if control == "start_keep":
            control = "keep" if self._recording else "start"
        # Track recording only to resolve start_keep; the recorder owns the real state.
        if control == "start":
            self._recording = True
        elif control in ("keep", "discard", "quit"):
            self._recording = False
        self._events.append(control)
