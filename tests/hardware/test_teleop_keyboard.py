"""Keyboard teleop: key bytes over a pipe (and a pty) through the real reading loop."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from hardware.teleop import (
    GRIPPER_CLOSED,
    GRIPPER_OPEN,
    TeleopCommand,
    TeleopConfig,
    TeleopDeviceError,
)
from hardware.teleop.config import KeyboardConfig
from hardware.teleop.keyboard import KeyboardTeleop
from hardware.teleop.keys import KeyDecoder, TerminalKeySource
from teleop_fakes import FakeClock

WAIT_S = 2.0


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    read_fd, write_fd = os.pipe()
    yield read_fd, write_fd
    for fd in (read_fd, write_fd):
        try:
            os.close(fd)
        except OSError:
            pass


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def keyboard(pipe: tuple[int, int], clock: FakeClock) -> Iterator[Callable[..., KeyboardTeleop]]:
    devices: list[KeyboardTeleop] = []

    def make(**config: object) -> KeyboardTeleop:
        source = TerminalKeySource(pipe[0])
        device = KeyboardTeleop(TeleopConfig(**config), source=source, clock=clock)
        devices.append(device)
        return device

    yield make
    for device in devices:
        device.close()


def read_until(
    device: KeyboardTeleop, done: Callable[[TeleopCommand, list[str]], bool]
) -> tuple[TeleopCommand, list[str]]:
    """Read until ``done(command, events so far)``; the reader thread works meanwhile."""
    events: list[str] = []
    deadline = time.monotonic() + WAIT_S
    while True:
        command = device.read()
        events.extend(command.events)
        if done(command, events):
            return command, events
        assert time.monotonic() < deadline, f"timed out; last {command}, events {events}"
        time.sleep(0.002)


def until_event(event: str) -> Callable[[TeleopCommand, list[str]], bool]:
    return lambda _command, events: event in events


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (b"w", [1, 0, 0, 0]), (b"s", [-1, 0, 0, 0]),
        (b"a", [0, 1, 0, 0]), (b"d", [0, -1, 0, 0]),
        (b"r", [0, 0, 1, 0]), (b"f", [0, 0, -1, 0]),
        (b"q", [0, 0, 0, 1]), (b"e", [0, 0, 0, -1]),
        (b"\x1b[A", [1, 0, 0, 0]), (b"\x1b[B", [-1, 0, 0, 0]),
        (b"\x1b[D", [0, 1, 0, 0]), (b"\x1bOC", [0, -1, 0, 0]),
        (b"W", [1, 0, 0, 0]),
    ],
)
def test_each_key_drives_its_axis_with_the_right_sign(keyboard, pipe, key: bytes, expected) -> None:
    device = keyboard()
    os.write(pipe[1], key)
    command, events = read_until(device, lambda c, _e: c.action[:4].any())
    assert command.action[:4].tolist() == expected
    assert events == []  # an arrow key's ESC is not read as quit


def test_translation_and_rotation_scale_apply_to_keys(keyboard, pipe) -> None:
    device = keyboard(translation_scale=0.5, rotation_scale=0.25)
    os.write(pipe[1], b"wq")
    command, _ = read_until(device, lambda c, _e: c.action[3] != 0 and c.action[0] != 0)
    np.testing.assert_allclose(command.action[:4], [0.5, 0, 0, 0.25])


def test_opposite_keys_cancel(keyboard, pipe) -> None:
    device = keyboard()
    os.write(pipe[1], b"wsy")
    command, _ = read_until(device, until_event("success"))
    assert command.action[0] == 0.0


def test_hold_window_expires_after_the_last_repeat(keyboard, pipe, clock) -> None:
    device = keyboard()
    os.write(pipe[1], b"w")
    read_until(device, lambda c, _e: c.action[0] == 1.0)
    clock.now += 0.1
    os.write(pipe[1], b"wy")  # an auto-repeat byte, then a marker to know it was read
    read_until(device, until_event("success"))
    clock.now += 0.1  # 0.2 s after the first byte but 0.1 s after the repeat: still held
    assert device.read().action[0] == 1.0
    clock.now += 0.1
    assert device.read().action[0] == 0.0


def test_held_button_fires_one_event_and_next_press_fires_again(keyboard, pipe, clock) -> None:
    device = keyboard()
    os.write(pipe[1], b"\r\r\r\ry")  # Enter auto-repeating, then a marker
    _, events = read_until(device, until_event("success"))
    assert events == ["start", "success"]
    clock.now += 1.0  # past the debounce window: released
    os.write(pipe[1], b"\n")
    _, events = read_until(device, until_event("keep"))
    assert events == ["keep"]


@pytest.mark.parametrize(
    ("key", "event"),
    [(b"\x7f", "discard"), (b"\x08", "discard"), (b"x", "discard"), (b"y", "success"),
     (b"n", "failure"), (b"\x1b", "quit"), (b"\x03", "quit")],
)
def test_event_keys(keyboard, pipe, key: bytes, event: str) -> None:
    device = keyboard()
    os.write(pipe[1], key)
    _, events = read_until(device, until_event(event))
    assert events == [event]


def test_space_toggles_gripper_once_per_press(keyboard, pipe, clock) -> None:
    device = keyboard()
    assert device.read().action[4] == GRIPPER_OPEN
    os.write(pipe[1], b"   y")  # auto-repeat while held
    command, _ = read_until(device, until_event("success"))
    assert command.action[4] == GRIPPER_CLOSED
    clock.now += 1.0
    os.write(pipe[1], b" ")
    read_until(device, lambda c, _e: c.action[4] == GRIPPER_OPEN)


def test_gripper_hold_mode_releases_after_debounce(keyboard, pipe, clock) -> None:
    device = keyboard(gripper_mode="hold", keyboard=KeyboardConfig(debounce_s=0.5))
    os.write(pipe[1], b" ")
    read_until(device, lambda c, _e: c.action[4] == GRIPPER_CLOSED)
    clock.now += 0.6
    assert device.read().action[4] == GRIPPER_OPEN


def test_second_ctrl_c_from_a_pipe_is_just_another_quit(keyboard, pipe, clock) -> None:
    device = keyboard()
    os.write(pipe[1], b"\x03")
    read_until(device, until_event("quit"))
    clock.now += 1.0
    os.write(pipe[1], b"\x03")  # not a terminal: no SIGINT is raised at the test process
    _, events = read_until(device, until_event("quit"))
    assert events == ["quit"]


def test_close_stops_the_thread_and_leaves_the_fd_open(keyboard, pipe) -> None:
    device = keyboard()
    assert device.alive
    device.close()
    assert not device.alive
    os.fstat(pipe[0])  # still open: the caller owns it
    device.close()  # twice is fine


def test_closed_input_stops_motion(keyboard, pipe) -> None:
    device = keyboard()
    os.write(pipe[1], b"w")
    read_until(device, lambda c, _e: c.action[0] == 1.0)
    os.close(pipe[1])
    deadline = time.monotonic() + WAIT_S
    while device.alive and time.monotonic() < deadline:
        time.sleep(0.005)
    assert not device.alive
    assert device.read().action[:4].tolist() == [0.0] * 4  # the held w is forgotten


def test_terminal_mode_is_set_and_restored_on_close() -> None:
    master, slave = pty.openpty()
    try:
        original = termios.tcgetattr(slave)
        device = KeyboardTeleop(TeleopConfig(), source=TerminalKeySource(slave))
        lflag = termios.tcgetattr(slave)[3]
        assert not lflag & (termios.ECHO | termios.ICANON | termios.ISIG)
        os.write(master, b"d")
        read_until(device, lambda c, _e: c.action[1] == -1.0)
        device.close()
        assert termios.tcgetattr(slave) == original
    finally:
        os.close(master)
        os.close(slave)


def test_keyboard_without_a_terminal_gets_a_clear_error(monkeypatch) -> None:
    with open(os.devnull) as devnull:
        monkeypatch.setattr(sys, "stdin", devnull)
        with pytest.raises(TeleopDeviceError, match="interactive terminal.*not a TTY"):
            KeyboardTeleop(TeleopConfig())


@pytest.mark.parametrize(
    ("chunks", "keys"),
    [
        ([b"wasd"], ["w", "a", "s", "d"]),
        ([b"\r\n\x7f\x08 \x03"], ["enter", "enter", "backspace", "backspace", "space", "ctrl-c"]),
        ([b"\x1b[A\x1b[B\x1bOC\x1b[D"], ["up", "down", "right", "left"]),
        ([b"\x1b[1;5A"], ["up"]),  # Ctrl+Up: parameters before the final byte
        ([b"\x1b", b"[A"], ["up"]),  # a sequence split across reads
        ([b"\x1b[15~"], []),  # F5: unbound
        ([b"\x1bw"], []),  # Alt+w is not Esc
        ([b"\x1b\x1b"], ["esc"]),  # second ESC still pending
        ([b"\xc3\xa9"], []),  # non-ASCII ignored
    ],
)
def test_decoder(chunks: list[bytes], keys: list[str]) -> None:
    decoder = KeyDecoder()
    decoded = [key for chunk in chunks for key in decoder.feed(chunk)]
    assert decoded == keys


def test_decoder_flushes_a_lone_esc_but_not_a_partial_sequence() -> None:
    decoder = KeyDecoder()
    assert decoder.feed(b"\x1b") == [] and decoder.pending
    assert decoder.flush() == ["esc"] and not decoder.pending
    assert decoder.feed(b"\x1b[1;") == [] and decoder.pending
    assert decoder.flush() == []


CHILD = """
import time
from hardware.teleop import make_device
device = make_device("keyboard")
print("ready", flush=True)
deadline, events = time.monotonic() + 3.0, []
while "quit" not in events and time.monotonic() < deadline:
    events.extend(device.read().events)
    time.sleep(0.005)
print(events, flush=True)
"""  # exits without close(): the atexit hook must restore the terminal


def test_stdin_terminal_is_restored_at_exit() -> None:
    master, slave = pty.openpty()
    try:
        original = termios.tcgetattr(slave)
        repo_root = Path(__file__).resolve().parents[2]
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD], stdin=slave, stdout=subprocess.PIPE, cwd=repo_root
        )
        assert child.stdout.readline().strip() == b"ready"
        os.write(master, b"\ry\x03")
        out, _ = child.communicate(timeout=10)
        assert out.decode().strip() == "['start', 'success', 'quit']"
        assert termios.tcgetattr(slave) == original
    finally:
        os.close(master)
        os.close(slave)
