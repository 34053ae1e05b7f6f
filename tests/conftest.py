"""Test-wide setup: headless EGL rendering, loopback-only ROS 2 discovery, and private folders
for what robot_rl writes outside a run (CLI tracebacks, e-stop latch files), so a test run never
touches the user's ``runs/logs`` or state directory (a latch left there would stop a real node)."""

import os
import tempfile

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROBOT_RL_LOG_DIR", tempfile.mkdtemp(prefix="robot-rl-test-logs-"))
os.environ.setdefault("ROBOT_RL_STATE_DIR", tempfile.mkdtemp(prefix="robot-rl-test-state-"))


import pytest  # noqa: E402


@pytest.fixture(scope="module")
def ray_local():
    """A real local Ray instance (2 CPUs) for one test module, shut down after it; commands run in
    the module join it instead of starting their own."""
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING", configure_logging=False)
    yield ray
    ray.shutdown()
