"""Gymnasium ids for every task × robot and the dm_control suite tasks, and vectorised envs.

Ids: ``RobotRL/<task>-<robot>-v0`` (e.g. ``RobotRL/lift-panda-v0``) and
``RobotRL/dmc-<domain_task>-v0`` (e.g. ``RobotRL/dmc-cartpole_swingup-v0``, kwargs
``obs_type="pixels"``). The config files are the registry: a new task YAML is a new id.

``import sim`` registers them all (once gymnasium is imported: see ``sim/__init__.py``), so
``import sim; gymnasium.make("RobotRL/lift-panda-v0")`` works, and so does
``gymnasium.make("sim:RobotRL/lift-panda-v0")`` without importing ``sim`` first. Registering
reads file names only: it imports neither mujoco, dm_control nor torch.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

from sim.registry import names

if TYPE_CHECKING:
    import gymnasium as gym

NAMESPACE = "RobotRL"
# The dm_control suite tasks with an id (``sim.dmc.DMCEnv`` builds any suite task).
DMC_TASKS = ("cartpole_swingup", "reacher_easy", "walker_walk")
RENDER_MODES = (None, "rgb_array")


def env_id(task: str, robot: str = "panda") -> str:
    return f"{NAMESPACE}/{task}-{robot}-v0"


def dmc_id(task: str) -> str:
    return f"{NAMESPACE}/dmc-{task}-v0"


def all_ids() -> list[str]:
    """Every id, task × robot first, then the dm_control tasks (reads file names only)."""
    return [env_id(t, r) for t in names("task") for r in names("robot")] + [dmc_id(t) for t in DMC_TASKS]


def make_robot_env(task: str, robot: str, randomize: str = "none", render_mode: str | None = None, **env: Any):
    """The entry point of the task × robot ids: ``sim.load`` plus gymnasium's ``render_mode``.

    ``render()`` returns the front camera's frame (uint8 H×W×3) whatever ``render_mode`` is;
    ``render_mode="rgb_array"`` only declares it, as gymnasium's wrappers (e.g. RecordVideo) expect.
    """
    from sim.loading import load

    _check_render_mode(render_mode)
    made = load(task, robot, randomize, **env)
    made.render_mode = render_mode
    return made


def make_dmc_env(task_id: str, **kwargs: Any):
    """The entry point of the ``RobotRL/dmc-*`` ids (``sim.dmc.DMCEnv.from_id``)."""
    from sim.dmc import DMCEnv

    return DMCEnv.from_id(task_id, **kwargs)


def _check_render_mode(render_mode: str | None) -> None:
    if render_mode not in RENDER_MODES:
        raise ValueError(f"render_mode {render_mode!r} is unsupported; expected 'rgb_array' or None.")


def register_envs() -> list[str]:
    """Register (once) and return every id."""
    import gymnasium as gym

    ids = []
    for task in names("task"):
        for robot in names("robot"):
            ids.append(env_id(task, robot))
            if ids[-1] not in gym.registry:
                gym.register(ids[-1], entry_point="sim.registration:make_robot_env",
                             kwargs={"task": task, "robot": robot}, disable_env_checker=True)
    for task in DMC_TASKS:
        ids.append(dmc_id(task))
        if ids[-1] not in gym.registry:
            gym.register(ids[-1], entry_point="sim.registration:make_dmc_env", kwargs={"task_id": task},
                         disable_env_checker=True)
    return ids


def make_vec(task: str, robot: str = "panda", num_envs: int = 2, asynchronous: bool = True,
             randomize: str = "none", **env: Any) -> gym.vector.VectorEnv:
    """``num_envs`` copies of one task, in subprocesses when ``asynchronous`` (one renderer each)."""
    import gymnasium as gym

    from sim.loading import load

    factories = [partial(load, task, robot, randomize, **env) for _ in range(num_envs)]
    if asynchronous:
        return gym.vector.AsyncVectorEnv(factories, context="spawn")
    return gym.vector.SyncVectorEnv(factories)
