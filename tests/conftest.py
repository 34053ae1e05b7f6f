"""Test-wide setup: headless EGL rendering, loopback-only ROS 2 discovery, and private folders
for what robot_rl writes outside a run (CLI tracebacks, e-stop latch files), so a test run never
touches the user's ``runs/logs`` or state directory (a latch left there would stop a real node)."""

import os
import tempfile

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
os.environ.setdefault("ROBOT_RL_LOG_DIR", tempfile.mkdtemp(prefix="robot-rl-test-logs-"))
os.environ.setdefault("ROBOT_RL_STATE_DIR", tempfile.mkdtemp(prefix="robot-rl-test-state-"))
