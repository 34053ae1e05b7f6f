"""MuJoCo robot models, tasks, controllers, randomisation, experts and rendering.

``sim.load(task, robot, randomize, **env)`` is the one entry point; imports stay lazy so that
``import sim`` costs nothing until an environment is built.

``import sim`` also registers the gymnasium ids (``RobotRL/<task>-<robot>-v0``,
``RobotRL/dmc-<domain_task>-v0``; see ``sim.registration``): at once when gymnasium is
already imported, else the moment it is. ``sim`` itself never imports gymnasium, so code that
only needs ``sim.controllers`` or ``sim.kinematics`` (the robot side) stays free of it.
"""

from __future__ import annotations

import os
import sys
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


def _register() -> None:
    from sim.registration import register_envs

    register_envs()


class _RegisterAfterGymnasium:
    """A one-shot import hook: once ``gymnasium`` has been imported, register our ids in it."""

    def find_spec(self, name: str, path: Any = None, target: Any = None):
        if name != "gymnasium":
            return None
        from importlib.util import find_spec

        _remove_hook()  # before searching, so the search below does not come back here
        spec = find_spec(name)
        if spec is not None and spec.loader is not None and hasattr(spec.loader, "exec_module"):
            spec.loader = _Loader(spec.loader)
        return spec


class _Loader:
    """Gymnasium's own loader, then the registration (a failure there must not break gymnasium)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def create_module(self, spec: Any):
        return self._inner.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self._inner.exec_module(module)
        try:
            _register()
        except Exception as exc:  # noqa: BLE001 - e.g. an unreadable sim/conf folder
            import warnings

            warnings.warn(f"sim could not register its gymnasium ids ({exc}); call "
                          "sim.registration.register_envs() to see why.", stacklevel=2)


def _remove_hook() -> None:
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _RegisterAfterGymnasium)]


if "gymnasium" in sys.modules:
    _register()
elif not any(isinstance(f, _RegisterAfterGymnasium) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterAfterGymnasium())
