"""A ``robot-rl train`` in its own process, SIGKILLed once its first checkpoint is on disk: what
the resume tests of the single-process and the distributed trainer both start from."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def kill_after_first_checkpoint(args: list[str], run: Path, timeout_s: float = 240) -> int:
    """Run ``robot-rl train *args`` (its run directory ``run``), SIGKILL it as soon as
    ``checkpoints/latest.safetensors`` exists, and return that checkpoint's step."""
    from robot_rl.train.checkpoint import read_checkpoint

    env = {**os.environ, "PYTHONPATH": os.getcwd()}
    proc = subprocess.Popen([sys.executable, "-m", "robot_rl.cli.main", "train", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    latest = run / "checkpoints" / "latest.safetensors"
    try:
        deadline = time.time() + timeout_s
        while not latest.exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert proc.poll() is None, "run finished before it could be killed"
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    return read_checkpoint(latest)["step"]
