"""Build environments from the config files: the one place names become objects."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from robot_rl.config import ConfigError, locate
from robot_rl.schema import build, check_keys
from sim.controllers import ControllerConfig
from sim.env import EnvConfig, RobotEnv
from sim.robots.base import robot_config_from_dict
from sim.randomize import RandomizeConfig
from sim.registry import read, task_spec
from sim.tasks.base import Task

_CONTROLLER_FIELDS = {f.name for f in fields(ControllerConfig)}
_ENV_FIELDS = {f.name for f in fields(EnvConfig)}


def make_task(name: str) -> Task:
    """The task named ``name`` from ``sim/conf/task/<name>.yaml``."""
    spec = task_spec(name)
    cls = locate(spec.target, f"task {spec.name}'s _target_")
    try:
        task = cls(build(cls.config_class, spec.params, f"task {name!r}"))
    except TypeError as error:
        raise ConfigError(f"task {name!r} config is invalid: {error}.") from None
    task.name = name  # the file names the task: one class may serve several files
    return task


def env_config(values: dict[str, Any]) -> EnvConfig:
    """An EnvConfig from a flat dict (the ``env`` block of the root config)."""
    check_keys(values, (_ENV_FIELDS | _CONTROLLER_FIELDS) - {"controller"}, "env")
    controller = build(ControllerConfig, {k: v for k, v in values.items() if k in _CONTROLLER_FIELDS}, "env")
    return build(EnvConfig, {**{k: v for k, v in values.items() if k in _ENV_FIELDS}, "controller": controller}, "env")


def load(task: str = "lift", robot: str = "panda", randomize: str = "none", **env: Any) -> RobotEnv:
    """A ready environment, e.g. ``load("stack", "jaco", "hard", cameras=("front",))``."""
    try:
        task_obj = make_task(task)
        robot_cfg = robot_config_from_dict(read("robot", robot))
        randomize_cfg = RandomizeConfig.from_dict(read("randomize", randomize))
        return RobotEnv(task_obj, robot_cfg, env_config(env), randomize_cfg)
    except (TypeError, ValueError) as error:
        if isinstance(error, ConfigError):
            raise
        raise ConfigError(f"cannot build {task}/{robot}: {error}") from None

