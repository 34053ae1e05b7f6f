"""MuJoCo robot models, tasks, controllers, randomisation, experts and rendering.

``sim.load(task, robot, randomize, **env)`` is the one entry point; imports stay lazy so that
``import sim`` costs nothing until an environment is built.
"""

from __future__ import annotations

import os
from typing import Any

# Headless EGL unless the user chose otherwise; must be set before mujoco is first imported.
os.environ.setdefault("MUJOCO_GL", "egl")


def load(task: str = "lift", robot: str = "panda", randomize: str = "none", **env: Any):
    """A ready ``RobotEnv``; see ``sim.loading.load``."""
    from sim.loading import load as _load

    return _load(task, robot, randomize, **env)


def make_vec(task: str = "lift", robot: str = "panda", num_envs: int = 2, **kwargs: Any):
    """A gymnasium vector env of one task; see ``sim.registration.make_vec``."""
    from sim.registration import make_vec as _make_vec

    return _make_vec(task, robot, num_envs, **kwargs)
