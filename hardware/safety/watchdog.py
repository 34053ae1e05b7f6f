"""Two small latches the filter and the nodes share: a command watchdog and the e-stop."""

from __future__ import annotations


class CommandWatchdog:
    """Expires when nothing has fed it for ``timeout_s`` (and before the first feed)."""

    def __init__(self, timeout_s: float) -> None:
        if not timeout_s > 0:
            raise ValueError(f"CommandWatchdog timeout_s is {timeout_s}; expected a positive number.")
        self.timeout_s = timeout_s
        self._last_s: float | None = None

    def feed(self, now_s: float) -> None:
        self._last_s = now_s

    def age_s(self, now_s: float) -> float:
        """Seconds since the last feed (infinite before the first)."""
        return float("inf") if self._last_s is None else now_s - self._last_s

    def expired(self, now_s: float) -> bool:
        return self.age_s(now_s) > self.timeout_s


class EStopLatch:
    """Once tripped it stays tripped, whatever else happens, until ``reset`` is called."""

    def __init__(self) -> None:
        self.reason = ""
        self.trips = 0

    @property
    def tripped(self) -> bool:
        return bool(self.reason)

    def trip(self, reason: str = "e-stop") -> None:
        if not self.tripped:
            self.trips += 1
        self.reason = reason or "e-stop"

    def reset(self) -> bool:
        """Clear the latch; returns whether it was tripped."""
        was = self.tripped
        self.reason = ""
        return was
