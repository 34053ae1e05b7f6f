"""A cached virtual environment with zarr 2.x, where diffusion_policy's ReplayBuffer runs.

zarr 2 and zarr 3 cannot share one environment, and diffusion_policy is not on PyPI, so the dp
tests build ``~/.cache/robot_rl/zarr2-venv-<zarr>-py<X.Y>`` once (zarr, numcodecs, numpy from
PyPI; ~10 s) and run ``dp_client.py`` in it. ``ROBOT_RL_CACHE`` moves the cache. The build is
skipped (pytest.skip, with the reason) only when PyPI cannot be reached; any other failure fails.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ZARR2 = "2.18.7"  # the last zarr 2 release; diffusion_policy pins zarr 2.12 on Python 3.9
REQUIREMENTS = (f"zarr=={ZARR2}", "numcodecs<0.16", "numpy")
CLIENT = Path(__file__).with_name("dp_client.py")
_OFFLINE = ("NewConnectionError", "Failed to establish a new connection", "Temporary failure in name resolution",
            "Network is unreachable", "Name or service not known", "ConnectTimeoutError", "ProxyError",
            "Could not fetch URL", "connection broken", "Max retries exceeded",
            "(from versions: none)")  # the index listed no zarr release at all: it was not reached


_unreachable: list[str] = []  # the skip reason, once PyPI was found unreachable in this run


def venv_dir() -> Path:
    cache = Path(os.environ.get("ROBOT_RL_CACHE") or Path.home() / ".cache" / "robot_rl")
    return cache / f"zarr2-venv-{ZARR2}-py{sys.version_info.major}.{sys.version_info.minor}"


def python() -> Path:
    """The cached environment's interpreter, built on first use (atomically: built beside, renamed)."""
    target = venv_dir()
    exe = target / "bin" / "python"
    if (target / "robot_rl_ready").exists() and exe.exists():
        return exe
    if _unreachable:
        pytest.skip(_unreachable[0])
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f"{target.name}.building-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(tmp)], check=True, capture_output=True, text=True)
        done = subprocess.run([str(tmp / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
                               "--no-input", "-q", *REQUIREMENTS], capture_output=True, text=True, timeout=600)
        if done.returncode:
            output = done.stdout + done.stderr
            if any(marker.lower() in output.lower() for marker in _OFFLINE):
                _unreachable.append(f"PyPI is unreachable, so the zarr {ZARR2} environment for diffusion_policy's "
                                    f"ReplayBuffer cannot be built: {output.strip().splitlines()[-1]}")
                pytest.skip(_unreachable[0])
            pytest.fail(f"pip could not install {' '.join(REQUIREMENTS)}:\n{output}")
        (tmp / "robot_rl_ready").write_text(" ".join(REQUIREMENTS) + "\n")
        shutil.rmtree(target, ignore_errors=True)  # a half-built one from an older run
        try:
            os.rename(tmp, target)
        except OSError:  # another process finished first: use theirs
            if not (target / "robot_rl_ready").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return exe


def client(*args: str) -> dict:
    """Run dp_client.py under zarr 2 with ``args``; its JSON answer (fails with its output if it fails)."""
    done = subprocess.run([str(python()), str(CLIENT), *map(str, args)], capture_output=True, text=True,
                          timeout=300, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    if done.returncode:
        pytest.fail(f"dp_client.py {' '.join(map(str, args))} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])
