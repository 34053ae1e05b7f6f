"""Test-wide setup: headless EGL rendering and loopback-only ROS 2 discovery."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
