"""Teleop configuration: the shared mapping settings plus each device's own settings."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from hardware.teleop.base import CONTROLS

GRIPPER_MODES = ("toggle", "hold")
Z_SOURCES = ("triggers", "right_stick")


@dataclass
class KeyboardConfig:
    """Terminal keyboard timing.

    Terminals report a held key as a burst of auto-repeat bytes, never as a release, so a key
    counts as held for a window after its last byte.
    """

    hold_s: float = 0.15  # an axis key drives its axis this long after its last byte
    # A button key repeated within this window is one press. It is longer than the usual
    # auto-repeat delay (250-660 ms) so that a held Enter or Space fires once.
    debounce_s: float = 0.7

    def __post_init__(self) -> None:
        _check_positive("KeyboardConfig.hold_s", self.hold_s)
        _check_positive("KeyboardConfig.debounce_s", self.debounce_s)


@dataclass
class SpaceMouseConfig:
    """SpaceMouse scaling and button bindings."""

    full_scale: float = 350.0  # raw HID count at full deflection (3Dconnexion: about 350)
    buttons: tuple[str, ...] = ("gripper", "start_keep")  # button bit i -> control; "" unbound
    product_ids: tuple[int, ...] = ()  # restrict to these USB product ids; empty: all known

    def __post_init__(self) -> None:
        self.buttons = tuple(self.buttons)
        self.product_ids = tuple(int(pid) for pid in self.product_ids)
        _check_controls("SpaceMouseConfig.buttons", [b for b in self.buttons if b])
        _check_positive("SpaceMouseConfig.full_scale", self.full_scale)


def _default_gamepad_buttons() -> dict[str, str]:
    # LB/RB drive yaw and the triggers z, so intervene goes on the right-stick click, which
    # is otherwise idle with the default z_source="triggers" (with "right_stick", a push can
    # click it: rebind, or use TeleopConfig.intervene_on_motion).
    return {
        "right_stick": "intervene",
        "a": "gripper",
        "b": "discard",
        "x": "failure",
        "y": "success",
        "start": "start_keep",
        "back": "quit",
        "guide": "quit",
    }


@dataclass
class GamepadConfig:
    """Gamepad device selection, z-axis source and button bindings."""

    device_path: str | None = None  # e.g. /dev/input/event5; None: the first gamepad found
    z_source: str = "triggers"  # "triggers" (right up, left down) or "right_stick" (vertical)
    buttons: dict[str, str] = field(default_factory=_default_gamepad_buttons)

    def __post_init__(self) -> None:
        if self.z_source not in Z_SOURCES:
            raise ValueError(
                f"GamepadConfig.z_source is {self.z_source!r}; expected one of {Z_SOURCES}."
            )
        self.buttons = dict(self.buttons)
        _check_controls("GamepadConfig.buttons", list(self.buttons.values()))


@dataclass
class TeleopConfig:
    """How raw device axes and buttons become a ``[dx, dy, dz, dyaw, gripper]`` command.

    Axis pipeline, the same for every device: device axes in the robot frame, each in
    [-1, 1] -> deadzone (rescaled, so output is continuous) -> reorder by ``axis_order``
    -> multiply by ``axis_signs`` and scale -> clip to [-1, 1].
    """

    translation_scale: float = 1.0  # gain on dx, dy, dz
    rotation_scale: float = 1.0  # gain on dyaw
    axis_scales: tuple[float, float, float, float] | None = None  # per axis; overrides both
    deadzone: float = 0.1  # fraction of full deflection read as zero
    axis_signs: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)
    axis_order: tuple[int, int, int, int] = (0, 1, 2, 3)  # output axis i reads device axis [i]
    gripper_mode: str = "toggle"  # "toggle": each press flips; "hold": closed while held
    # Any axis moved past the deadzone also counts as intervening, as if intervene were held
    # (the usual way with a SpaceMouse, whose two buttons are taken by default).
    intervene_on_motion: bool = False
    poll_timeout_s: float = 0.05  # longest a reader thread blocks, so close() is prompt
    keyboard: KeyboardConfig = field(default_factory=KeyboardConfig)
    spacemouse: SpaceMouseConfig = field(default_factory=SpaceMouseConfig)
    gamepad: GamepadConfig = field(default_factory=GamepadConfig)

    def __post_init__(self) -> None:
        if not 0.0 <= self.deadzone < 1.0:
            raise ValueError(
                f"TeleopConfig.deadzone is {self.deadzone}; expected a value in [0, 1)."
            )
        if self.gripper_mode not in GRIPPER_MODES:
            raise ValueError(
                f"TeleopConfig.gripper_mode is {self.gripper_mode!r}; "
                f"expected one of {GRIPPER_MODES}."
            )
        self.axis_signs = _four("axis_signs", self.axis_signs, float)
        if any(sign not in (-1.0, 1.0) for sign in self.axis_signs):
            raise ValueError(
                f"TeleopConfig.axis_signs is {self.axis_signs}; expected each to be 1 or -1."
            )
        self.axis_order = _four("axis_order", self.axis_order, int)
        if sorted(self.axis_order) != [0, 1, 2, 3]:
            raise ValueError(
                f"TeleopConfig.axis_order is {self.axis_order}; "
                "expected a permutation of (0, 1, 2, 3)."
            )
        if self.axis_scales is not None:
            self.axis_scales = _four("axis_scales", self.axis_scales, float)
        _check_positive("TeleopConfig.poll_timeout_s", self.poll_timeout_s)

    def gains(self) -> np.ndarray:
        """Signed per-axis gain for ``[dx, dy, dz, dyaw]``."""
        if self.axis_scales is not None:
            scales = np.asarray(self.axis_scales, dtype=np.float64)
        else:
            t, r = self.translation_scale, self.rotation_scale
            scales = np.array([t, t, t, r], dtype=np.float64)
        return scales * np.asarray(self.axis_signs, dtype=np.float64)


def _four(name: str, values: Sequence, kind: type) -> tuple:
    if len(values) != 4:
        raise ValueError(
            f"TeleopConfig.{name} is {tuple(values)}; expected 4 values (dx, dy, dz, dyaw)."
        )
    return tuple(kind(v) for v in values)


def _check_controls(name: str, controls: Sequence[str]) -> None:
    unknown = [c for c in controls if c not in CONTROLS]
    if unknown:
        raise ValueError(f"{name} binds {unknown}; expected controls from {CONTROLS}.")


def _check_positive(name: str, value: float) -> None:
    if not value > 0:
        raise ValueError(f"{name} is {value}; expected a positive number.")
