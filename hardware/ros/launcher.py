"""Run a parsed launch description: one process per node, supervised.

Each node runs in its own process (and process group) with its parameters in a params file
and its remaps on the command line, output prefixed ``[name]``. Ctrl-C or SIGTERM shuts every
node down (SIGINT, then SIGTERM, then SIGKILL after timeouts) and exits 0. When any node exits
on its own, the launcher says which, with its exit code, shuts the others down and exits 1: a
robot stack with a missing piece must not keep running. Children also get SIGTERM if the
launcher itself is killed (Linux PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import TextIO

import yaml

from hardware.ros.launch_file import PACKAGE, LaunchDescription, LaunchError, ProcessSpec

# exec name (as on a ROS 2 install, lib/robot_rl/<exec>) -> module run with ``python -m``.
EXECUTABLES = {
    "policy_node": "hardware.ros.policy_node",
    "sim_bridge": "hardware.ros.sim_bridge_node",
    "teleop_node": "hardware.ros.teleop_node",
    "recorder_node": "hardware.ros.recorder_node",
    "camera_node": "hardware.ros.camera_node",
}


def command_line(spec: ProcessSpec, params_dir: Path) -> list[str]:
    """The argv that starts ``spec``, with ROS arguments for its name, parameters and remaps."""
    if spec.cmd:
        return list(spec.cmd)
    argv = [*_executable(spec.package, spec.executable), *spec.args, "--ros-args", "-r", f"__node:={spec.name}"]
    if spec.namespace:
        argv += ["-r", f"__ns:={'/' + spec.namespace.lstrip('/')}"]
    for params_file in spec.param_files:
        argv += ["--params-file", params_file]
    # rcl's params-file parser cannot type an empty list; such a parameter keeps its declared default.
    parameters = {k: v for k, v in spec.parameters.items() if v != []}
    if parameters:
        path = params_dir / f"{spec.name}.yaml"
        path.write_text(yaml.safe_dump({"/**": {"ros__parameters": parameters}}, sort_keys=False))
        argv += ["--params-file", str(path)]
    for source, target in spec.remaps:
        argv += ["-r", f"{source}:={target}"]
    return argv


def _executable(package: str, name: str) -> list[str]:
    if package == PACKAGE:
        if name not in EXECUTABLES:
            raise LaunchError(f"package {PACKAGE} has no executable {name!r}; it has {', '.join(EXECUTABLES)}.")
        return [sys.executable, "-m", EXECUTABLES[name]]
    try:
        from ament_index_python.packages import get_package_prefix

        path = Path(get_package_prefix(package)) / "lib" / package / name
    except Exception:  # noqa: BLE001 - PackageNotFoundError and friends
        raise LaunchError(f"package {package!r} is not installed (not in the ament index).") from None
    if not os.access(path, os.X_OK):
        raise LaunchError(f"package {package!r} has no executable {name!r} (looked for {path}).")
    return [str(path)]


class Launcher:
    """Starts the processes of ``description`` and supervises them until shutdown."""

    def __init__(self, description: LaunchDescription, out: TextIO | None = None, sigint_timeout_s: float = 10.0,
                 sigterm_timeout_s: float = 5.0) -> None:
        self.description = description
        self.out = out or sys.stdout
        self.sigint_timeout_s, self.sigterm_timeout_s = sigint_timeout_s, sigterm_timeout_s
        self.processes: dict[str, subprocess.Popen] = {}
        self._shutdown = threading.Event()
        self._print_lock = threading.Lock()
        self._readers: list[threading.Thread] = []

    def say(self, text: str, name: str = "launch") -> None:
        with self._print_lock:
            self.out.write(f"[{name}] {text}\n")
            self.out.flush()

    def request_shutdown(self, *_: object) -> None:
        """Ask for a clean shutdown (signal handler safe)."""
        self._shutdown.set()

    def run(self) -> int:
        """Start everything, wait for Ctrl-C or a dying node; returns the exit code."""
        names = [p.name for p in self.description.processes]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise LaunchError(f"{self.description.path.name} starts two processes named {duplicates[0]!r}; "
                              "names must be unique.")
        with tempfile.TemporaryDirectory(prefix="robot_rl_launch_") as params_dir:
            try:
                self._start_all(Path(params_dir))
                died = self._supervise()
            finally:
                self._stop_all()
        return 1 if died else 0

    def _start_all(self, params_dir: Path) -> None:
        commands = [(spec.name, command_line(spec, params_dir)) for spec in self.description.processes]
        # Nodes import the same robot_rl/hardware as this process, installed or run from a checkout.
        root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (root, os.environ.get("PYTHONPATH")) if p),
               "PYTHONUNBUFFERED": "1"}
        for name, argv in commands:  # every process first: preexec_fn must not race reader threads
            self.processes[name] = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                                    stdin=subprocess.DEVNULL, start_new_session=True, env=env,
                                                    preexec_fn=_die_with_parent, text=True, bufsize=1)
        for name, argv in commands:
            self.say(f"started {name} (pid {self.processes[name].pid}): {' '.join(argv[:3])} ...")
            reader = threading.Thread(target=self._forward, args=(name, self.processes[name]), daemon=True)
            reader.start()
            self._readers.append(reader)

    def _forward(self, name: str, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self.say(line.rstrip("\n"), name)

    def _supervise(self) -> str:
        """Wait until shutdown is requested ('') or a process exits (its name)."""
        while not self._shutdown.is_set():
            for name, process in self.processes.items():
                code = process.poll()
                if code is not None:
                    for reader in self._readers:
                        reader.join(timeout=1.0)  # its last words first
                    self.say(f"node {name!r} (pid {process.pid}) died with exit code {_describe(code)}; "
                             f"shutting down the other nodes.")
                    return name
            self._shutdown.wait(0.1)
        self.say("shutdown requested; stopping all nodes.")
        return ""

    def _stop_all(self) -> None:
        running = {n: p for n, p in self.processes.items() if p.poll() is None}
        for sig, timeout_s in ((signal.SIGINT, self.sigint_timeout_s), (signal.SIGTERM, self.sigterm_timeout_s),
                               (signal.SIGKILL, 5.0)):
            for process in running.values():
                _signal_group(process, sig)
            deadline = time.monotonic() + timeout_s
            while running and time.monotonic() < deadline:
                running = {n: p for n, p in running.items() if p.poll() is None}
                time.sleep(0.05)
            if not running:
                break
            self.say(f"{', '.join(running)} still running after {signal.Signals(sig).name}; escalating.")
        for name, process in self.processes.items():
            if process.poll() is None:
                process.wait()
            _signal_group(process, signal.SIGKILL)  # anything the node itself left in its group
        for reader in self._readers:
            reader.join(timeout=2.0)
        codes = ", ".join(f"{n} ({_describe(p.returncode)})" for n, p in self.processes.items())
        self.say(f"all nodes stopped: {codes}")


def _signal_group(process: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(process.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _describe(code: int | None) -> str:
    if code is None:
        return "running"
    if code < 0:
        return f"{code} ({signal.Signals(-code).name})"
    return str(code)


def _die_with_parent() -> None:
    try:
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def launch(path: str, arguments: dict[str, str], out: TextIO | None = None) -> int:
    """Load and run a launch file until Ctrl-C (0) or a node dies (1); LaunchError for user mistakes."""
    from hardware.ros.launch_file import load_launch_file, resolve_launch_file

    description = load_launch_file(resolve_launch_file(path), arguments)
    launcher = Launcher(description, out)
    previous = {sig: signal.signal(sig, launcher.request_shutdown) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return launcher.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
