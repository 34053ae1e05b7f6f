"""Gymnasium ids for every task × robot and the dm_control suite tasks, and vectorised envs.

Ids: ``RobotRL/<task>-<robot>-v0`` (e.g. ``RobotRL/lift-panda-v0``) and
``RobotRL/dmc-<domain_task>-v0`` (e.g. ``RobotRL/dmc-cartpole_swingup-v0``, kwargs
``obs_type="pixels"``). The config files are the registry: a new task YAML is a new id.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import gymnasium as gym

from sim.registry import names

NAMESPACE = "RobotRL"


def env_id(task: str, robot: str = "panda") -> str:
    return f"{NAMESPACE}/{task}-{robot}-v0"


def dmc_id(task: str) -> str:
    return f"{NAMESPACE}/dmc-{task}-v0"


def _make_dmc(task: str, **kwargs: Any):
    from sim.dmc import DMCEnv

    return DMCEnv.from_id(task, **kwargs)


def register_envs() -> list[str]:
    """Register (once) and return every id."""
    from sim.dmc import DMC_TASKS

    ids = []
    for task in names("task"):
        for robot in names("robot"):
            ids.append(env_id(task, robot))
            if ids[-1] not in gym.registry:
                gym.register(ids[-1], entry_point="sim.loading:load", kwargs={"task": task, "robot": robot},
                             disable_env_checker=True)
    for task in DMC_TASKS:
        ids.append(dmc_id(task))
        if ids[-1] not in gym.registry:
            gym.register(ids[-1], entry_point=partial(_make_dmc, task), disable_env_checker=True)
    return ids


def make_vec(task: str, robot: str = "panda", num_envs: int = 2, asynchronous: bool = True,
             randomize: str = "none", **env: Any) -> gym.vector.VectorEnv:
    """``num_envs`` copies of one task, in subprocesses when ``asynchronous`` (one renderer each)."""
    from sim.loading import load

    factories = [partial(load, task, robot, randomize, **env) for _ in range(num_envs)]
    if asynchronous:
        return gym.vector.AsyncVectorEnv(factories, context="spawn")
    return gym.vector.SyncVectorEnv(factories)
