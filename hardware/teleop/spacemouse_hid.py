"""The real SpaceMouse transport: finds and opens a 3Dconnexion device through ``hidapi``.

``hidapi`` is optional and imported only here, when a real device is opened.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from hardware.teleop.base import TeleopDeviceError

logger = logging.getLogger(__name__)

VENDOR_IDS = (0x046D, 0x256F)  # Logitech (older 3Dconnexion devices), 3Dconnexion
PRODUCT_NAMES = {
    0xC603: "SpaceMouse Plus XT",
    0xC605: "CADman",
    0xC606: "SpaceMouse Classic",
    0xC621: "SpaceBall 5000",
    0xC623: "SpaceTraveler",
    0xC625: "SpacePilot",
    0xC626: "SpaceNavigator",
    0xC627: "SpaceExplorer",
    0xC628: "SpaceNavigator for Notebooks",
    0xC629: "SpacePilot Pro",
    0xC62B: "SpaceMouse Pro",
    0xC62E: "SpaceMouse Wireless (cable)",
    0xC62F: "SpaceMouse Wireless (receiver)",
    0xC631: "SpaceMouse Pro Wireless (cable)",
    0xC632: "SpaceMouse Pro Wireless (receiver)",
    0xC633: "SpaceMouse Enterprise",
    0xC635: "SpaceMouse Compact",
    0xC636: "SpaceMouse Module",
    0xC638: "SpaceMouse Pro Wireless (Bluetooth)",
    0xC63A: "SpaceMouse Wireless",
    0xC641: "SpaceMouse USB",
    0xC652: "3Dconnexion Universal Receiver",
}
MULTI_AXIS_USAGE = (0x01, 0x08)  # Generic Desktop / Multi-axis Controller
MAX_REPORT_BYTES = 64
_UDEV_HINT = (
    "check udev permissions for /dev/hidraw* (e.g. a rule "
    'KERNEL=="hidraw*", ATTRS{idVendor}=="256f", MODE="0666"; 046d for older models)'
)


class HidapiTransport:
    """Reads input reports from an opened ``hid.device`` with a timeout."""

    def __init__(self, device: Any, name: str) -> None:
        self._device = device
        self.name = name

    def read(self, timeout_s: float) -> bytes:
        """One input report (report id first), or ``b""`` after ``timeout_s``."""
        return bytes(self._device.read(MAX_REPORT_BYTES, max(1, int(timeout_s * 1000))))

    def close(self) -> None:
        """Close the HID device."""
        self._device.close()


def open_spacemouse(product_ids: Sequence[int] = ()) -> HidapiTransport:
    """Open the first connected SpaceMouse (optionally only the given product ids).

    Raises:
        TeleopDeviceError: ``hidapi`` is missing, no device is connected, or it cannot be opened.
    """
    hid = _import_hidapi()
    candidates = find_spacemice(hid.enumerate(), product_ids)
    if not candidates:
        raise TeleopDeviceError(
            "No SpaceMouse found: no known 3Dconnexion device (vendor 046d or 256f, e.g. "
            f"046d:c626 SpaceNavigator, 256f:c635 SpaceMouse Compact) is connected; check the "
            f"cable or receiver and {_UDEV_HINT}."
        )
    info = candidates[0]
    vid, pid = info["vendor_id"], info["product_id"]
    name = f"{PRODUCT_NAMES.get(pid, '3Dconnexion device')} ({vid:04x}:{pid:04x})"
    device = hid.device()
    try:
        device.open_path(info["path"])
    except OSError as exc:
        raise TeleopDeviceError(
            f"Found {name} but could not open it ({exc}): {_UDEV_HINT}."
        ) from exc
    logger.info("Opened %s.", name)
    return HidapiTransport(device, name)


def find_spacemice(infos: Sequence[dict], product_ids: Sequence[int] = ()) -> list[dict]:
    """Filter ``hid.enumerate()`` entries to SpaceMice, multi-axis interfaces first.

    Args:
        infos: entries from ``hid.enumerate()``.
        product_ids: accept only these product ids (any 3Dconnexion vendor id); empty
            accepts every id in :data:`PRODUCT_NAMES`.
    """
    wanted = set(product_ids) or set(PRODUCT_NAMES)  # explicit ids may name a newer model
    found = [
        info
        for info in infos
        if info.get("vendor_id") in VENDOR_IDS and info.get("product_id") in wanted
    ]
    # Receivers and newer models expose several interfaces; the motion reports come on the
    # multi-axis one. Backends that report no usage keep their enumeration order.
    return sorted(found, key=lambda info: _usage(info) != MULTI_AXIS_USAGE)


def _usage(info: dict) -> tuple[int | None, int | None]:
    return info.get("usage_page"), info.get("usage")


def _import_hidapi() -> Any:
    try:
        import hid
    except ImportError as exc:
        raise TeleopDeviceError(
            "No SpaceMouse found: the optional package `hidapi` is not installed "
            f"(pip install hidapi), and then {_UDEV_HINT}."
        ) from exc
    if not hasattr(hid, "device"):
        raise TeleopDeviceError(
            "The installed `hid` module is not hidapi's; "
            "run `pip uninstall hid` and `pip install hidapi`."
        )
    return hid

