"""SpaceMouse: fake HID report bytes through the real parser, mapper and reader thread."""

from __future__ import annotations

import struct
import sys
import types
from collections.abc import Callable, Iterator

import numpy as np
import pytest

from hardware.teleop import (
    GRIPPER_CLOSED,
    GRIPPER_OPEN,
    SpaceMouseConfig,
    TeleopConfig,
    TeleopDeviceError,
)
from teleop_fakes import FakeHidTransport
from hardware.teleop.spacemouse import SpaceMouseReport, SpaceMouseTeleop, parse_report
from hardware.teleop.spacemouse_hid import HidapiTransport, find_spacemice, open_spacemouse

FULL = 350


def translation(x: int = 0, y: int = 0, z: int = 0) -> bytes:
    return bytes([1]) + struct.pack("<3h", x, y, z)


def rotation(rx: int = 0, ry: int = 0, rz: int = 0) -> bytes:
    return bytes([2]) + struct.pack("<3h", rx, ry, rz)


def combined(x: int = 0, y: int = 0, z: int = 0, rx: int = 0, ry: int = 0, rz: int = 0) -> bytes:
    return bytes([1]) + struct.pack("<6h", x, y, z, rx, ry, rz)


def buttons(mask: int) -> bytes:
    return bytes([3]) + mask.to_bytes(2, "little")


@pytest.fixture
def spacemouse() -> Iterator[Callable[..., tuple[SpaceMouseTeleop, FakeHidTransport]]]:
    devices: list[SpaceMouseTeleop] = []

    def make(**config: object) -> tuple[SpaceMouseTeleop, FakeHidTransport]:
        transport = FakeHidTransport()
        device = SpaceMouseTeleop(TeleopConfig(**config), transport=transport)
        devices.append(device)
        return device, transport

    yield make
    for device in devices:
        device.close()


def send(transport: FakeHidTransport, *reports: bytes) -> None:
    transport.feed(*reports)
    assert transport.wait_processed()


def test_parse_translation_report() -> None:
    assert parse_report(translation(1, -2, 300)) == SpaceMouseReport(translation=(1, -2, 300))


def test_parse_rotation_report() -> None:
    assert parse_report(rotation(-350, 0, 7)) == SpaceMouseReport(rotation=(-350, 0, 7))


def test_parse_combined_thirteen_byte_report() -> None:
    data = combined(1, 2, 3, 4, 5, -6)
    assert len(data) == 13
    assert parse_report(data) == SpaceMouseReport(translation=(1, 2, 3), rotation=(4, 5, -6))


def test_parse_button_report_and_padding() -> None:
    assert parse_report(buttons(0b10)).buttons == 2
    assert parse_report(bytes([3, 1]) + bytes(11)).buttons == 1  # padded to the longest report


@pytest.mark.parametrize("data", [b"", bytes([0x17, 100]), bytes([4, 1]), bytes([1, 0, 0])])
def test_parse_ignores_reports_we_do_not_use(data: bytes) -> None:
    assert parse_report(data) is None


AXIS_CASES = [  # (HID x, y, z, rz) pushed to full scale -> expected [dx, dy, dz, dyaw]
    ((0, -FULL, 0, 0), [1, 0, 0, 0]),  # push away from the operator
    ((0, FULL, 0, 0), [-1, 0, 0, 0]),  # pull toward the operator
    ((-FULL, 0, 0, 0), [0, 1, 0, 0]),  # push left
    ((FULL, 0, 0, 0), [0, -1, 0, 0]),  # push right
    ((0, 0, -FULL, 0), [0, 0, 1, 0]),  # lift
    ((0, 0, FULL, 0), [0, 0, -1, 0]),  # press down
    ((0, 0, 0, -FULL), [0, 0, 0, 1]),  # twist counter-clockwise seen from above
    ((0, 0, 0, FULL), [0, 0, 0, -1]),  # twist clockwise
]


@pytest.mark.parametrize(("hid", "expected"), AXIS_CASES)
def test_axis_signs_with_separate_reports(spacemouse, hid: tuple, expected: list) -> None:
    device, transport = spacemouse()
    x, y, z, rz = hid
    send(transport, translation(x, y, z), rotation(0, 0, rz))
    assert device.read().action[:4].tolist() == expected


@pytest.mark.parametrize(("hid", "expected"), AXIS_CASES)
def test_axis_signs_with_combined_reports(spacemouse, hid: tuple, expected: list) -> None:
    device, transport = spacemouse()
    x, y, z, rz = hid
    send(transport, combined(x, y, z, 0, 0, rz))
    assert device.read().action[:4].tolist() == expected


def test_tilts_are_ignored(spacemouse) -> None:
    device, transport = spacemouse()
    send(transport, rotation(FULL, FULL, 0))
    assert device.read().action[:4].tolist() == [0, 0, 0, 0]


def test_rotation_report_keeps_the_latest_translation(spacemouse) -> None:
    device, transport = spacemouse(deadzone=0.0)
    send(transport, translation(0, -175, 0), rotation(0, 0, -350))
    np.testing.assert_allclose(device.read().action[:4], [0.5, 0, 0, 1])


def test_deadzone_and_scale_on_device_counts(spacemouse) -> None:
    device, transport = spacemouse(deadzone=0.1, translation_scale=0.5)
    send(transport, translation(0, -35, 0))  # 10 % deflection: inside the deadzone
    assert device.read().action[0] == 0.0
    send(transport, translation(0, -39, 0))  # just above: small and continuous
    expected = 0.5 * (39 / FULL - 0.1) / 0.9
    assert device.read().action[0] == pytest.approx(expected, rel=1e-5)
    assert 0 < expected < 0.01


def test_overrange_counts_are_clipped(spacemouse) -> None:
    device, transport = spacemouse(translation_scale=2.0)
    send(transport, translation(-500, 0, 0), rotation(0, 0, 400))
    assert device.read().action[:4].tolist() == [0, 1, 0, -1]


def test_full_scale_is_configurable(spacemouse) -> None:
    device, transport = spacemouse(deadzone=0.0, spacemouse=SpaceMouseConfig(full_scale=500))
    send(transport, translation(0, -250, 0))
    assert device.read().action[0] == pytest.approx(0.5)


def test_left_button_toggles_gripper_once_per_press(spacemouse) -> None:
    device, transport = spacemouse()
    send(transport, buttons(0b01), buttons(0b01), buttons(0b01))  # held
    assert device.read().action[4] == GRIPPER_CLOSED
    send(transport, buttons(0), buttons(0b01))
    assert device.read().action[4] == GRIPPER_OPEN


def test_right_button_starts_then_keeps_once_per_press(spacemouse) -> None:
    device, transport = spacemouse()
    send(transport, buttons(0b10), buttons(0b10))
    assert device.read().events == ("start",)
    send(transport, buttons(0b10))
    assert device.read().events == ()  # still held: nothing new
    send(transport, buttons(0), buttons(0b10), buttons(0))
    assert device.read().events == ("keep",)


def test_press_and_release_between_reads_is_not_lost(spacemouse) -> None:
    device, transport = spacemouse(spacemouse=SpaceMouseConfig(buttons=("success", "failure")))
    send(transport, buttons(0b01), buttons(0), buttons(0b10), buttons(0), buttons(0b01), buttons(0))
    assert device.read().events == ("success", "failure", "success")


def test_buttons_are_configurable(spacemouse) -> None:
    device, transport = spacemouse(spacemouse=SpaceMouseConfig(buttons=("", "gripper", "quit")))
    send(transport, buttons(0b001))
    command = device.read()
    assert command.action[4] == GRIPPER_OPEN and command.events == ()
    send(transport, buttons(0b110))
    command = device.read()
    assert command.action[4] == GRIPPER_CLOSED and command.events == ("quit",)


def test_lost_device_commands_zero_motion(spacemouse, caplog) -> None:
    device, transport = spacemouse()
    send(transport, translation(0, -FULL, 0))
    assert device.read().action[0] == 1.0
    transport.fail(OSError("read error"))
    device._thread.join(2.0)
    assert not device.alive
    assert device.read().action[:4].tolist() == [0, 0, 0, 0]
    assert "Lost the SpaceMouse" in caplog.text


def test_close_stops_thread_and_closes_transport(spacemouse) -> None:
    device, transport = spacemouse()
    device.close()
    assert not device.alive and transport.closed


def test_unknown_button_control_is_refused() -> None:
    with pytest.raises(ValueError, match="SpaceMouseConfig.buttons binds \\['jump'\\]"):
        SpaceMouseConfig(buttons=("gripper", "jump"))


# The real transport, with a stand-in for the `hid` module (no device needed).


class FakeHidDevice:
    def __init__(self, fail_open: bool = False) -> None:
        self.fail_open = fail_open
        self.opened: bytes | None = None
        self.reports = [list(translation(0, -FULL, 0))]

    def open_path(self, path: bytes) -> None:
        if self.fail_open:
            raise OSError("open failed")
        self.opened = path

    def read(self, max_length: int, timeout_ms: int) -> list[int]:
        return self.reports.pop(0) if self.reports else []

    def close(self) -> None:
        pass


def fake_hid(monkeypatch, infos: list[dict], device: FakeHidDevice) -> None:
    module = types.SimpleNamespace(enumerate=lambda *a: infos, device=lambda: device)
    monkeypatch.setitem(sys.modules, "hid", module)


def info(pid: int, path: bytes, usage: tuple[int, int] = (0, 0), vid: int = 0x256F) -> dict:
    page, usage_id = usage
    return {
        "vendor_id": vid, "product_id": pid, "path": path, "usage_page": page, "usage": usage_id
    }


def test_find_spacemice_filters_and_prefers_the_multi_axis_interface() -> None:
    infos = [
        info(0xC52B, b"logitech-receiver", vid=0x046D),
        info(0xC652, b"kbd", (0x01, 0x06)),
        info(0xC652, b"axes", (0x01, 0x08)),
    ]
    assert [i["path"] for i in find_spacemice(infos)] == [b"axes", b"kbd"]
    assert find_spacemice(infos, product_ids=(0xC635,)) == []


def test_explicit_product_ids_admit_a_newer_model(monkeypatch) -> None:
    fake_hid(monkeypatch, [info(0xC6FF, b"new")], FakeHidDevice())
    assert "3Dconnexion device (256f:c6ff)" in open_spacemouse(product_ids=(0xC6FF,)).name
    with pytest.raises(TeleopDeviceError, match="No SpaceMouse found"):
        open_spacemouse()


def test_open_spacemouse_reads_through_hidapi(monkeypatch) -> None:
    device = FakeHidDevice()
    fake_hid(monkeypatch, [info(0xC635, b"/dev/hidraw3")], device)
    transport = open_spacemouse()
    assert device.opened == b"/dev/hidraw3" and "SpaceMouse Compact" in transport.name
    assert isinstance(transport, HidapiTransport)
    assert transport.read(0.01) == translation(0, -FULL, 0)
    assert transport.read(0.01) == b""


def test_no_spacemouse_connected_gets_a_clear_error(monkeypatch) -> None:
    fake_hid(monkeypatch, [], FakeHidDevice())
    with pytest.raises(TeleopDeviceError, match="No SpaceMouse found.*udev permissions"):
        open_spacemouse()


def test_unopenable_spacemouse_names_the_device_and_udev(monkeypatch) -> None:
    fake_hid(monkeypatch, [info(0xC626, b"p", vid=0x046D)], FakeHidDevice(fail_open=True))
    with pytest.raises(TeleopDeviceError, match="SpaceNavigator \\(046d:c626\\).*udev permissions"):
        SpaceMouseTeleop(TeleopConfig())


def test_missing_hidapi_gets_a_clear_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "hid", None)  # makes `import hid` raise ImportError
    with pytest.raises(TeleopDeviceError, match="No SpaceMouse found: .*`hidapi` is not installed"):
        SpaceMouseTeleop(TeleopConfig())


def test_wrong_hid_module_gets_a_clear_error(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "hid", types.SimpleNamespace(Device=object))
    with pytest.raises(TeleopDeviceError, match="not hidapi's"):
        open_spacemouse()
