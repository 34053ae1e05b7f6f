"""``ros.sim=true``: the MuJoCo sim bridge as the robot, in a process of its own on a private DDS
domain (``launch/sim_robot.launch.yaml``), so learning on the robot can be tried and tested with
no hardware and never reaches a real arm's driver."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from hardware.ros.isolation import LaunchLog, isolated_environment, private_domain
from hardware.ros.launch_file import load_launch_file, resolve_launch_file
from hardware.ros.launcher import Launcher


class SimRobot:
    """The sim bridge under a Launcher thread; ``domain_id`` is where it publishes."""

    def __init__(self, arguments: dict[str, str], log_path: Path | None = None) -> None:
        self.description = load_launch_file(resolve_launch_file("sim_robot.launch.yaml"), arguments)
        self.claim = private_domain()  # held until close(): no other robot_rl process takes it meanwhile
        self.domain_id = self.claim.domain_id
        self.log = LaunchLog(log_path)
        self.launcher = Launcher(self.description, self.log)
        self._thread: threading.Thread | None = None

    def start(self, timeout_s: float = 30.0) -> None:
        """Start the bridge's process (it then takes seconds to load the sim and publish)."""
        with isolated_environment(self.domain_id):  # the child reads os.environ as it starts: wait for it
            self._thread = threading.Thread(target=self.launcher.run, name="sim-robot", daemon=True)
            self._thread.start()
            deadline = time.monotonic() + timeout_s
            while len(self.launcher.processes) < len(self.description.processes):
                if not self._thread.is_alive() or time.monotonic() > deadline:
                    raise RuntimeError(f"the sim bridge did not start; see {self.log.path or 'its log'}: "
                                       f"{' / '.join(self.log.lines)}")
                time.sleep(0.01)

    @contextmanager
    def environment(self) -> Iterator[None]:
        """The bridge's domain and loopback-only discovery, for an rclpy context started inside."""
        with isolated_environment(self.domain_id):
            yield

    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and all(
            p.poll() is None for p in self.launcher.processes.values())

    def kill(self) -> None:
        """Kill the bridge at once (what a crashed robot driver looks like; tests use it)."""
        for process in self.launcher.processes.values():
            process.kill()

    def close(self) -> None:
        try:
            self.launcher.request_shutdown()
            if self._thread is not None:
                self._thread.join(timeout=30.0)
            self.log.close()
        finally:
            self.claim.release()

    def __enter__(self) -> SimRobot:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
