"""Shared shape of pick-and-place tasks: grasp the named cube, carry it, let go at a place."""

from __future__ import annotations

import numpy as np

from sim.scene import Scene
from sim.tasks.base import Task, closeness


class PlaceTask(Task):
    """Progress = reach the cube, hold it, carry it over the place; success needs a release."""

    _start_distance = 1.0

    def place_xy(self, scene: Scene) -> np.ndarray:
        raise NotImplementedError

    def placed(self, scene: Scene) -> bool:
        raise NotImplementedError

    def after_reset(self, scene: Scene) -> None:
        self._start_distance = max(self._carry_distance(scene), 1e-3)

    def _carry_distance(self, scene: Scene) -> float:
        return float(np.linalg.norm(scene.object_pos(self.target_cube)[:2] - self.place_xy(scene)))

    def evaluate(self, scene: Scene) -> tuple[bool, float]:
        grasped = scene.is_grasped(self.target_cube)
        if self.placed(scene) and not grasped:
            return True, 1.0
        carried = closeness(self._carry_distance(scene), self._start_distance)
        holding = grasped or carried > 0.9
        reach = self.reach_term(scene, scene.object_pos(self.target_cube))
        return False, min(0.25 * reach + 0.15 * holding + 0.6 * carried * holding, 0.99)
