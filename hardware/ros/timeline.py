"""Time-stamped buffers for aligning streams that arrive at different rates (ROS-free)."""

from __future__ import annotations

import bisect
import threading
from collections import deque
from typing import Any


class Timeline:
    """The recent ``(stamp_s, value)`` samples of one stream, in stamp order."""

    def __init__(self, horizon_s: float = 5.0) -> None:
        self.horizon_s = horizon_s
        self._stamps: deque[float] = deque()
        self._values: deque[Any] = deque()
        self._lock = threading.Lock()

    def add(self, stamp_s: float, value: Any) -> None:
        with self._lock:
            if self._stamps and stamp_s < self._stamps[-1]:
                return  # out of order (a restarted publisher): keep the timeline monotonic
            self._stamps.append(stamp_s)
            self._values.append(value)
            while self._stamps and self._stamps[0] < stamp_s - self.horizon_s:
                self._stamps.popleft()
                self._values.popleft()

    def latest(self, at_s: float | None = None) -> tuple[float, Any] | None:
        """The last sample stamped at or before ``at_s`` (the last sample when None)."""
        with self._lock:
            if not self._stamps:
                return None
            if at_s is None:
                return self._stamps[-1], self._values[-1]
            i = bisect.bisect_right(self._stamps, at_s)
            return (self._stamps[i - 1], self._values[i - 1]) if i else None

    def nearest(self, at_s: float, tolerance_s: float) -> tuple[float, Any] | None:
        """The sample closest to ``at_s`` within ``tolerance_s``."""
        with self._lock:
            i = bisect.bisect_left(self._stamps, at_s)
            best = None
            for j in (i - 1, i):
                if 0 <= j < len(self._stamps) and abs(self._stamps[j] - at_s) <= tolerance_s:
                    if best is None or abs(self._stamps[j] - at_s) < abs(self._stamps[best] - at_s):
                        best = j
            return None if best is None else (self._stamps[best], self._values[best])

    def between(self, after_s: float, until_s: float) -> tuple[float, Any] | None:
        """The last sample with ``after_s < stamp <= until_s``."""
        sample = self.latest(until_s)
        return sample if sample is not None and sample[0] > after_s else None

    def all_between(self, after_s: float, until_s: float) -> list[tuple[float, Any]]:
        """Every sample with ``after_s < stamp <= until_s``, oldest first."""
        with self._lock:
            lo, hi = bisect.bisect_right(self._stamps, after_s), bisect.bisect_right(self._stamps, until_s)
            return [(self._stamps[i], self._values[i]) for i in range(lo, hi)]
