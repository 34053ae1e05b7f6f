"""3Dconnexion SpaceMouse teleop: HID reports parsed here, read through an injectable transport.

Report formats (little-endian int16 axes, about +-350 at full deflection):

- id 1, 7 bytes: translation x, y, z (SpaceNavigator, SpaceMouse Pro, Compact...)
- id 1, 13 bytes: translation x, y, z then rotation rx, ry, rz (SpaceMouse Wireless,
  Pro Wireless, Enterprise, Universal Receiver)
- id 2, 7 bytes: rotation rx, ry, rz (models with the 7-byte id 1)
- id 3: button bitmask, little-endian over the remaining bytes (bit 0 left, bit 1 right)

Other report ids (LED, battery) are ignored.

Axis mapping. The HID frame is +x right, +y toward the user, +z down, rz clockwise seen
from above. With the operator standing behind the robot, facing its +x:

    push away -> +dx,  push left -> +dy,  lift up -> +dz,  twist counter-clockwise -> +dyaw
    i.e. dx = -y, dy = -x, dz = -z, dyaw = -rz   (tilts rx, ry are unused)

Facing the robot from the front instead, set ``TeleopConfig.axis_signs = (-1, -1, 1, 1)``.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from hardware.teleop.config import TeleopConfig
from hardware.teleop.threaded import ThreadedTeleop

TRANSLATION_REPORT = 1
ROTATION_REPORT = 2
BUTTON_REPORT = 3
_AXES_3 = struct.Struct("<3h")
_AXES_6 = struct.Struct("<6h")
# Robot-frame signs for HID axes: dx = -y, dy = -x, dz = -z, dyaw = -rz.
_TRANSLATION_TO_ROBOT = ((1, -1.0), (0, -1.0), (2, -1.0))  # (hid index, sign) for dx, dy, dz
_YAW_SIGN = -1.0

SPACEMOUSE_HELP = """\
SpaceMouse teleop (operator behind the robot, facing +x)
  push away / pull     +x / -x
  push left / right    +y / -y
  lift / press down    +z / -z
  twist left / right   +yaw / -yaw
  buttons              from SpaceMouseConfig.buttons (default: left = gripper toggle,
                       right = start recording, then stop and keep)
  intervene            TeleopConfig.intervene_on_motion (any motion takes over from the
                       policy), or bind "intervene" to a button in SpaceMouseConfig.buttons"""


@dataclass(frozen=True)
class SpaceMouseReport:
    """One parsed HID report; fields the report did not carry are None."""

    translation: tuple[int, int, int] | None = None  # HID x, y, z counts
    rotation: tuple[int, int, int] | None = None  # HID rx, ry, rz counts
    buttons: int | None = None  # bitmask, bit i = button i


def parse_report(data: bytes) -> SpaceMouseReport | None:
    """Parse one HID input report (report id first); None for reports we do not use."""
    if not data:
        return None
    report_id, body = data[0], bytes(data[1:])
    if report_id == TRANSLATION_REPORT and len(body) >= _AXES_6.size:
        values = _AXES_6.unpack_from(body)
        return SpaceMouseReport(translation=values[:3], rotation=values[3:])
    if report_id == TRANSLATION_REPORT and len(body) >= _AXES_3.size:
        return SpaceMouseReport(translation=_AXES_3.unpack_from(body))
    if report_id == ROTATION_REPORT and len(body) >= _AXES_3.size:
        return SpaceMouseReport(rotation=_AXES_3.unpack_from(body))
    if report_id == BUTTON_REPORT and body:
        return SpaceMouseReport(buttons=int.from_bytes(body, "little"))
    return None


def translation_to_robot(counts: tuple[int, int, int], full_scale: float) -> np.ndarray:
    """HID translation counts to robot-frame ``[dx, dy, dz]``, nominally in [-1, 1]."""
    return np.array([sign * counts[i] / full_scale for i, sign in _TRANSLATION_TO_ROBOT])


def yaw_to_robot(counts: tuple[int, int, int], full_scale: float) -> float:
    """HID rotation counts to robot-frame ``dyaw`` (counter-clockwise from above positive)."""
    return _YAW_SIGN * counts[2] / full_scale


class HidTransport(Protocol):
    """A source of raw HID input reports (the real one wraps ``hidapi``)."""

    def read(self, timeout_s: float) -> bytes:
        """One input report, report id first; ``b""`` if none arrived within ``timeout_s``."""
        ...

    def close(self) -> None:
        """Release the device."""
        ...


class SpaceMouseTeleop(ThreadedTeleop):
    """Teleop from a 3Dconnexion SpaceMouse; see the module docstring for the axis mapping.

    Args:
        config: shared teleop settings; ``config.spacemouse`` holds full scale and buttons.
        transport: HID report source; None opens the first SpaceMouse found through hidapi.
    """

    help = SPACEMOUSE_HELP

    def __init__(self, config: TeleopConfig, transport: HidTransport | None = None) -> None:
        super().__init__(config, "SpaceMouse")
        if transport is None:
            from hardware.teleop.spacemouse_hid import open_spacemouse

            transport = open_spacemouse(config.spacemouse.product_ids)
        self._transport = transport
        self._start()

    def _poll(self) -> None:
        report = parse_report(self._transport.read(self._config.poll_timeout_s))
        if report is not None:
            self._apply(report)

    def _apply(self, report: SpaceMouseReport) -> None:
        full_scale = self._config.spacemouse.full_scale
        if report.translation is not None:
            self._mapper.set_axes(translation_to_robot(report.translation, full_scale), (0, 1, 2))
        if report.rotation is not None:
            self._mapper.set_axes([yaw_to_robot(report.rotation, full_scale)], (3,))
        if report.buttons is not None:
            self._mapper.set_buttons(self._button_levels(report.buttons))

    def _button_levels(self, mask: int) -> dict[str, bool]:
        levels: dict[str, bool] = {}
        for bit, control in enumerate(self._config.spacemouse.buttons):
            if control:  # two buttons bound to one control: pressed if either is
                levels[control] = levels.get(control, False) or bool(mask >> bit & 1)
        return levels

    def _close_transport(self) -> None:
        self._transport.close()
