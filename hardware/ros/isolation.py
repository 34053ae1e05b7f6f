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


LOCK_DIR_ENV = "ROBOT_RL_DOMAIN_LOCKS"  # where domain claims are kept (default: <tmp>/robot_rl-dds-domains)
DOMAINS = range(1, 101)


class DomainsExhausted(RuntimeError):
    """Every private DDS domain is held by other robot_rl processes on this machine (one sentence)."""


class DomainClaim:
    """A DDS domain held by this process for the ROS 2 processes it starts: an exclusive lock on
    one file per domain, so two robot_rl commands on one machine (two benches, a training run
    beside an evaluation) never share one and read each other's joint states or instructions.
    The kernel drops the lock when the process dies; ``release()`` (or the ``with`` block's end)
    frees it sooner."""

    def __init__(self, domain_id: int, fd: int) -> None:
        self.domain_id, self._fd = domain_id, fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops its lock
            self._fd = None

    def __enter__(self) -> DomainClaim:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def private_domain() -> DomainClaim:
    """A DDS domain in 1..100 that no other robot_rl process on this machine holds (nor the
    environment's own ``ROS_DOMAIN_ID``), claimed; one sentence when every one is taken."""
    import fcntl
    import tempfile

    current = os.environ.get("ROS_DOMAIN_ID", "0")
    # SystemRandom: training code seeds the global generator, and two evaluations started alike
    # should not even try the same domain first.
    candidates = [d for d in DOMAINS if str(d) != current]
    random.SystemRandom().shuffle(candidates)
    directory = Path(os.environ.get(LOCK_DIR_ENV) or Path(tempfile.gettempdir()) / "robot_rl-dds-domains")
    directory.mkdir(parents=True, exist_ok=True)
    try:
        directory.chmod(0o1777)  # every user's robot_rl claims here, none can remove another's
    except OSError:
        pass  # another user's directory: it is already shared
    for domain in candidates:
        try:
            fd = os.open(directory / f"domain-{domain}.lock", os.O_CREAT | os.O_RDWR, 0o666)
        except OSError:  # another user's claim file we may not open: theirs
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            continue
        return DomainClaim(domain, fd)
    raise DomainsExhausted(f"every private DDS domain ({DOMAINS.start}-{DOMAINS.stop - 1}) is held by another robot_rl "
                       f"process on this machine (claims in {directory}); wait for one to finish.")


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
