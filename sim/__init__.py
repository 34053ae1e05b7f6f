"""MuJoCo robot models, tasks, controllers, randomisation, experts and rendering.

``sim.load(task, robot, randomize, **env)`` is the one entry point; imports stay lazy so that
``import sim`` costs nothing until an environment is built.
"""

from __future__ import annotations

from typing import Any


def load(task: str = "lift", robot: str = "panda", randomize: str = "none", **env: Any):
    """A ready ``RobotEnv``; see ``sim.loading.load``."""
    from sim.loading import load as _load

    return _load(task, robot, randomize, **env)


def make_vec(task: str = "lift", robot: str = "panda", num_envs: int = 2, **kwargs: Any):
    """A gymnasium vector env of one task; see ``sim.registration.make_vec``."""
    from sim.registration import make_vec as _make_vec

    return _make_vec(task, robot, num_envs, **kwargs)
