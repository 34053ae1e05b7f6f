"""The base of tasks that grasp the named cube, carry it and let go at a place (pick_place,
stack), and of their scripted experts."""

from __future__ import annotations

from typing import Callable

import numpy as np

from sim.experts import CARRY_HEIGHT_M, CLOSED, OPEN, Phase, WaypointExpert
from sim.scene import Scene, norm
from sim.tasks.base import Task, closeness


class PlaceTaskBase(Task):
    """Progress = reach the cube, hold it, carry it over the place; success needs a release."""

    _start_distance = 1.0

    def place_xy(self, scene: Scene) -> np.ndarray:
        raise NotImplementedError

    def placed(self, scene: Scene, cube_pos: np.ndarray) -> bool:
        """Whether the target cube, at ``cube_pos``, rests at the place."""
        raise NotImplementedError

    def after_reset(self, scene: Scene) -> None:
        self._start_distance = max(self._carry_distance(scene, scene.object_pos(self.target_cube)), 1e-3)

    def _carry_distance(self, scene: Scene, cube_pos: np.ndarray) -> float:
        return norm(cube_pos[:2] - self.place_xy(scene))

    def evaluate(self, scene: Scene) -> tuple[bool, float]:
        cube = scene.object_pos(self.target_cube)  # read once: evaluate runs every control step
        grasped = scene.is_grasped(self.target_cube)
        if self.placed(scene, cube) and not grasped:
            return True, 1.0
        carried = closeness(self._carry_distance(scene, cube), self._start_distance)
        holding = grasped or carried > 0.9
        reach = self.reach_term(scene, cube)
        return False, min(0.25 * reach + 0.15 * holding + 0.6 * carried * holding, 0.99)


class PlaceExpertBase(WaypointExpert):
    """Pick, carry above the place, lower, release, back off upwards."""

    release_height_m = 0.0

    def plan(self) -> list[Phase]:
        def over(height_m: float) -> Callable[[], np.ndarray]:
            return lambda: np.array([*self.task.place_xy(self.scene), height_m])

        carry_z = CARRY_HEIGHT_M
        start = self.scene.object_pos(self.task.target_cube)
        return [
            *self.pick_phases(),
            Phase(lambda: start + [0, 0, carry_z], CLOSED, tolerance_m=0.03, align_yaw=False),
            Phase(over(carry_z), CLOSED, tolerance_m=0.015, align_yaw=False),
            Phase(over(self.release_height_m), CLOSED, tolerance_m=0.008, align_yaw=False),
            Phase(over(self.release_height_m), OPEN, tolerance_m=0.03, hold_steps=4, align_yaw=False),
            Phase(over(carry_z), OPEN, align_yaw=False),
        ]
