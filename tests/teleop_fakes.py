"""Test doubles of the teleop devices: in-memory transports that stand in for a SpaceMouse's HID
reports and a gamepad's evdev events, a hand-driven clock and an import check (the scripted
device is the library's own: hardware.teleop.scripted). Tests only (``from teleop_fakes
import ...``; tests/ is on the path through tests/conftest.py); no library code imports them.

Only the byte/event source is fake: parsing, mapping and the reader thread run for real.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from hardware.teleop.gamepad import InputEvent

_WAIT_S = 2.0


class _FeedQueue:
    """A queue that also knows when the reader has finished with what it was handed."""

    def __init__(self) -> None:
        self._items: deque = deque()
        self._cond = threading.Condition()
        self._fed = self._handed = self._processed = 0
        self._error: BaseException | None = None
        self.closed = False

    def push(self, item: object) -> None:
        with self._cond:
            self._items.append(item)
            self._fed += 1
            self._cond.notify_all()

    def fail(self, error: BaseException) -> None:
        with self._cond:
            self._error = error
            self._cond.notify_all()

    def pop(self, timeout_s: float) -> object | None:
        with self._cond:
            # The reader came back for more, so everything handed out before is processed.
            self._processed = self._handed
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._items or self._error, timeout_s)
            if self._error is not None:
                raise self._error
            if not self._items:
                return None
            self._handed += 1
            return self._items.popleft()

    def wait_processed(self, timeout_s: float = _WAIT_S) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self._processed == self._fed, timeout_s)


class FakeHidTransport:
    """A SpaceMouse transport fed with raw HID report bytes."""

    def __init__(self) -> None:
        self._queue = _FeedQueue()

    @property
    def closed(self) -> bool:
        """Whether the device closed this transport."""
        return self._queue.closed

    def feed(self, *reports: bytes) -> None:
        """Queue HID input reports (report id first) for the reader."""
        for report in reports:
            self._queue.push(bytes(report))

    def fail(self, error: BaseException) -> None:
        """Make the next read raise ``error``, like an unplugged device."""
        self._queue.fail(error)

    def wait_processed(self, timeout_s: float = _WAIT_S) -> bool:
        """Block until the reader has applied every fed report."""
        return self._queue.wait_processed(timeout_s)

    def read(self, timeout_s: float) -> bytes:
        """See :class:`hardware.teleop.spacemouse.HidTransport`."""
        report = self._queue.pop(timeout_s)
        return report if report is not None else b""

    def close(self) -> None:
        """Mark closed."""
        self._queue.closed = True


class FakeEventSource:
    """A gamepad event source fed with evdev-style (type, code, value) events."""

    def __init__(self, ranges: dict[int, tuple[int, int]] | None = None) -> None:
        self._queue = _FeedQueue()
        self._ranges = dict(ranges or {})

    @property
    def closed(self) -> bool:
        """Whether the device closed this source."""
        return self._queue.closed

    def feed(self, *events: tuple[int, int, int] | InputEvent) -> None:
        """Queue one batch of events (delivered together, like one evdev read)."""
        self._queue.push([InputEvent(*e) if isinstance(e, tuple) else e for e in events])

    def fail(self, error: BaseException) -> None:
        """Make the next read raise ``error``, like an unplugged device."""
        self._queue.fail(error)

    def wait_processed(self, timeout_s: float = _WAIT_S) -> bool:
        """Block until the reader has applied every fed batch."""
        return self._queue.wait_processed(timeout_s)

    def read(self, timeout_s: float) -> list[InputEvent]:
        """See :class:`hardware.teleop.gamepad.EventSource`."""
        batch = self._queue.pop(timeout_s)
        return list(batch) if batch is not None else []

    def abs_range(self, code: int) -> tuple[int, int] | None:
        """The range given at construction, or None."""
        return self._ranges.get(code)

    def close(self) -> None:
        """Mark closed."""
        self._queue.closed = True


class FakeClock:
    """A clock the test advances by hand, so hold windows expire deterministically."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def assert_imports_none_of(module: str, forbidden: Sequence[str]) -> None:
    """Importing ``module`` in a fresh interpreter loads none of ``forbidden`` (the test process
    has them all loaded already)."""
    code = (f"import sys, {module}; bad = [m for m in {tuple(forbidden)!r} if m in sys.modules]; "
            "print(bad); sys.exit(bool(bad))")
    result = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
