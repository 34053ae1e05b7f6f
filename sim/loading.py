"""Build environments from the config files: the one place names become objects."""

from __future__ import annotations

import importlib
from dataclasses import fields
from typing import Any

from robot_rl.config import ConfigError, choices, load_group
from sim.controllers import ControllerConfig
from sim.env import EnvConfig, RobotEnv, robot_config_from_dict
from sim.randomize import RandomizeConfig
from sim.tasks.base import Task

_CONTROLLER_FIELDS = {f.name for f in fields(ControllerConfig)}
_ENV_FIELDS = {f.name for f in fields(EnvConfig)}


def make_task(name: str) -> Task:
    """The task named ``name`` from ``conf/task/<name>.yaml``."""
    spec = load_group("task", name)
    spec.pop("name", None)  # the file's own name; the task class knows it too
    module_name, _, class_name = spec.pop("_target_").rpartition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    try:
        return cls(cls.config_class(**_tuples(spec)))
    except TypeError as error:
        raise ConfigError(f"task {name!r} config is invalid: {error}.") from None


def env_config(values: dict[str, Any]) -> EnvConfig:
    """An EnvConfig from a flat dict (the ``env`` block of the root config)."""
    unknown = set(values) - _ENV_FIELDS - _CONTROLLER_FIELDS
    if unknown:
        raise ConfigError(f"env has unknown fields {sorted(unknown)}; valid: {sorted(_ENV_FIELDS | _CONTROLLER_FIELDS)}.")
    controller = ControllerConfig(**_tuples({k: v for k, v in values.items() if k in _CONTROLLER_FIELDS}))
    env_values = _tuples({k: v for k, v in values.items() if k in _ENV_FIELDS and k != "controller"})
    return EnvConfig(controller=controller, **env_values)


def load(task: str = "lift", robot: str = "panda", randomize: str = "none", **env: Any) -> RobotEnv:
    """A ready environment, e.g. ``load("stack", "jaco", "hard", cameras=("front",))``."""
    try:
        task_obj = make_task(task)
        robot_cfg = robot_config_from_dict(load_group("robot", robot))
        randomize_cfg = RandomizeConfig.from_dict(load_group("randomize", randomize))
        return RobotEnv(task_obj, robot_cfg, env_config(env), randomize_cfg)
    except (TypeError, ValueError) as error:
        if isinstance(error, ConfigError):
            raise
        raise ConfigError(f"cannot build {task}/{robot}: {error}") from None


def task_names() -> list[str]:
    return choices("task")


def robot_names() -> list[str]:
    return choices("robot")


def _tuples(values: dict[str, Any]) -> dict[str, Any]:
    return {k: tuple(v) if isinstance(v, list) else v for k, v in values.items()}
