"""Running ROS 2 processes apart from everything else on the machine: a private DDS domain with
loopback-only discovery, and the launcher's output kept in a file with its last lines at hand.

A pipeline or an evaluation may run on a robot's own computer. On the default domain, or with
discovery beyond this host, a sim bridge's joint states and a policy's commands could reach the
real arm's driver; these helpers keep them on a domain of their own.
"""

from __future__ import annotations

import collections
import io
import os
import random
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

TAIL_LINES = 15  # launch output quoted in an error


class LaunchLog(io.TextIOBase):
    """The launcher's output: written to ``path`` (or dropped), its last lines kept for error messages."""

    def __init__(self, path: Path | None) -> None:
        super().__init__()
        self.path = Path(path) if path is not None else None
        self.lines: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = self.path.open("w") if self.path is not None else None

    def write(self, text: str) -> int:
        if self._file is not None and not self._file.closed:
            self._file.write(text)
        self.lines.extend(text.splitlines())
        return len(text)

    def flush(self) -> None:
        if self._file is not None and not self._file.closed:
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        super().close()


def private_domain() -> int:
    # SystemRandom: training code seeds the global generator, and two evaluations on one
    # machine must not pick the same domain because they were seeded alike.
    current = os.environ.get("ROS_DOMAIN_ID", "0")
    return random.SystemRandom().choice([d for d in range(1, 101) if str(d) != current])


@contextmanager
def isolated_environment(domain_id: int) -> Iterator[None]:
    """A private domain and loopback-only discovery for the processes and rclpy contexts started
    inside (children read os.environ); restores the previous values on the way out."""
    wanted = {"ROS_DOMAIN_ID": str(domain_id), "ROS_AUTOMATIC_DISCOVERY_RANGE": "LOCALHOST"}
    previous = {key: os.environ.get(key) for key in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for key, value in previous.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
