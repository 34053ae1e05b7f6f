"""Two small latches the filter and the nodes share: a command watchdog and the e-stop."""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import time
from pathlib import Path

log = logging.getLogger(__name__)


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


def default_latch_path(node_name: str, domain_id: int = 0) -> Path:
    """``$ROBOT_RL_STATE_DIR`` (else ``$XDG_STATE_HOME/robot_rl``, else ``~/.local/state/robot_rl``)
    ``/estop-d<domain>-<node name>.latch``; the node name's slashes become dashes.

    Keyed by the DDS domain too: nodes on one domain command the same arm and share its latch,
    while a simulation on a domain of its own can neither set nor clear the robot's.
    """
    state_dir = os.environ.get("ROBOT_RL_STATE_DIR")
    if not state_dir:
        xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        state_dir = str(Path(xdg) / "robot_rl")
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", node_name.strip("/")) or "node"
    return Path(state_dir) / f"estop-d{int(domain_id)}-{safe}.latch"


class EStopLatch:
    """Once tripped it stays tripped, whatever else happens, until ``reset`` is called.

    With a ``path`` the latch survives restarts: tripping writes the file (atomically), reset
    removes it, and a latch built while the file exists starts tripped. A file that cannot be
    read counts as tripped: when in doubt, stay stopped.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else None
        self.reason = ""
        self.trips = 0
        if self.path is not None and self.path.exists():
            self.reason = f"latched before this start: {self._read()}"

    @property
    def tripped(self) -> bool:
        return bool(self.reason)

    def trip(self, reason: str = "e-stop") -> None:
        if not self.tripped:
            self.trips += 1
        self.reason = reason or "e-stop"
        self._write()

    def reset(self) -> bool:
        """Clear the latch (and its file); returns whether it was tripped."""
        was = self.tripped
        if self.path is not None:
            self.path.unlink(missing_ok=True)  # an error here keeps the latch: reset fails loudly
        self.reason = ""
        return was

    def _read(self) -> str:
        try:
            return str(json.loads(self.path.read_text()).get("reason", "e-stop"))
        except (OSError, ValueError, AttributeError):
            return f"e-stop (unreadable latch file {self.path})"

    def _write(self) -> None:
        if self.path is None:
            return
        record = {"reason": self.reason, "time": time.time(), "pid": os.getpid()}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=self.path.name, suffix=".tmp")
            with os.fdopen(fd, "w") as f:
                json.dump(record, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except OSError as error:  # the e-stop still holds in this process
            log.error("cannot write the e-stop latch file %s (%s); the e-stop will not survive a restart",
                      self.path, error)
