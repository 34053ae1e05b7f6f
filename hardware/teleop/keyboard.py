"""Keyboard teleop in a terminal: works locally and over SSH, no display server needed."""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Protocol

import numpy as np

from hardware.teleop.base import TeleopCommand
from hardware.teleop.config import TeleopConfig
from hardware.teleop.keys import KeyDecoder, TerminalKeySource
from hardware.teleop.threaded import ThreadedTeleop

logger = logging.getLogger(__name__)

ESC_WAIT_S = 0.03  # how long a lone ESC waits for the rest of an arrow-key sequence

# key -> (axis index in [dx, dy, dz, dyaw], sign)
AXIS_KEYS: dict[str, tuple[int, float]] = {
    "w": (0, 1.0), "s": (0, -1.0), "up": (0, 1.0), "down": (0, -1.0),
    "a": (1, 1.0), "d": (1, -1.0), "left": (1, 1.0), "right": (1, -1.0),
    "r": (2, 1.0), "f": (2, -1.0),
    "q": (3, 1.0), "e": (3, -1.0),
}
BUTTON_KEYS: dict[str, str] = {
    "space": "gripper",
    "i": "intervene",
    "enter": "start_keep",
    "backspace": "discard",
    "x": "discard",
    "y": "success",
    "n": "failure",
    "esc": "quit",
    "ctrl-c": "quit",
}

KEYBOARD_HELP = """\
Keyboard teleop (robot base frame; hold a key to keep moving)
  w / s  or  Up / Down       +x forward / -x back
  a / d  or  Left / Right    +y left    / -y right
  r / f                      +z up      / -z down
  q / e                      +yaw (turn left) / -yaw (turn right)
  Space                      gripper: toggle open/closed (or close while held)
  i (hold, then motion keys) intervene: take over from the policy while held
  Enter                      start recording; while recording: stop and keep
  Backspace or x             discard the episode and re-record
  y / n                      mark success / failure
  Esc or Ctrl-C              quit (Ctrl-C twice interrupts the program)"""


class KeySource(Protocol):
    """Where key bytes come from: a terminal, or a pipe in tests."""

    is_terminal: bool

    def read(self, timeout_s: float) -> bytes:
        """Bytes available within ``timeout_s``; ``b""`` on timeout; EOFError when closed."""
        ...

    def close(self) -> None:
        """Restore whatever the source changed."""
        ...


class KeyboardTeleop(ThreadedTeleop):
    """Teleop from terminal key presses; see :data:`KEYBOARD_HELP` for the bindings.

    Terminals send a held key as auto-repeated bytes and never send a release, so an axis
    key stays held for ``config.keyboard.hold_s`` after its last byte, and a button key
    repeated within ``config.keyboard.debounce_s`` counts as one press.

    Button keys are levels the same way: held until ``debounce_s`` after their last byte.
    A terminal auto-repeats only the last key pressed, so holding ``i`` and then a motion
    key would stop the ``i`` bytes; a motion key therefore keeps an intervention going.

    Args:
        config: shared teleop settings.
        source: key byte source; None opens standard input (which must be a terminal).
        clock: monotonic time in seconds; injectable so tests control the hold window.
    """

    help = KEYBOARD_HELP

    def __init__(
        self,
        config: TeleopConfig,
        source: KeySource | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(config, "keyboard")
        self._source = source if source is not None else TerminalKeySource()
        self._clock = clock
        self._decoder = KeyDecoder()
        self._lock = threading.Lock()
        self._axis_seen: dict[str, float] = {}  # axis key -> time of its last byte
        self._button_seen: dict[str, float] = {}  # control -> time of its last key byte
        self._interrupts = 0
        self._start()

    def read(self) -> TeleopCommand:
        """Return the keys held now and the button presses since the previous read."""
        now = self._clock()
        with self._lock:
            self._release_expired(now)
            self._mapper.set_axes(self._held_axes(now))
            return self._mapper.command()

    def _poll(self) -> None:
        timeout_s = ESC_WAIT_S if self._decoder.pending else self._config.poll_timeout_s
        data = self._source.read(timeout_s)
        keys = self._decoder.feed(data) if data else self._decoder.flush()
        if not keys:
            return
        now = self._clock()
        with self._lock:
            for key in keys:
                self._press(key, now)

    def _press(self, key: str, now: float) -> None:
        if key in AXIS_KEYS:
            self._axis_seen[key] = now
            self._release_expired(now)
            if "intervene" in self._button_seen:
                self._button_seen["intervene"] = now
            return
        control = BUTTON_KEYS.get(key)
        if control is None:
            logger.debug("Unbound key %r ignored.", key)
            return
        self._release_expired(now)
        is_new_press = control not in self._button_seen
        self._button_seen[control] = now
        self._mapper.set_button(control, True)
        if key == "ctrl-c" and is_new_press:
            self._on_ctrl_c()

    def _release_expired(self, now: float) -> None:
        debounce_s = self._config.keyboard.debounce_s
        for control, seen in list(self._button_seen.items()):
            if now - seen > debounce_s:
                del self._button_seen[control]
                self._mapper.set_button(control, False)

    def _held_axes(self, now: float) -> np.ndarray:
        raw = np.zeros(4)
        for key, seen in self._axis_seen.items():
            if now - seen <= self._config.keyboard.hold_s:
                axis, sign = AXIS_KEYS[key]
                raw[axis] += sign
        return raw

    def _on_ctrl_c(self) -> None:
        # The first Ctrl-C is the quit event; a second one means the loop did not stop, so
        # give the user the ordinary interrupt back rather than trap them in a raw terminal.
        self._interrupts += 1
        if self._interrupts >= 2 and self._source.is_terminal:
            self._source.close()
            os.kill(os.getpid(), signal.SIGINT)

    def _on_lost(self) -> None:
        with self._lock:
            self._axis_seen.clear()
            self._button_seen.clear()
            super()._on_lost()

    def _close_transport(self) -> None:
        self._source.close()
