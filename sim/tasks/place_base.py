"""The base of tasks that grasp the named cube, carry it and let go at a place (pick_place,
stack), and of their scripted experts."""

from __future__ import annotations

import numpy as np

from sim.arena import CUBE_HALF_M
from sim.experts import CARRY_HEIGHT_M, CLOSED, OPEN, FeedbackPickExpert
from sim.scene import Scene, norm
from sim.tasks.base import Task, closeness


class PlaceTaskBase(Task):
    """Progress = reach the cube, hold it, carry it over the place; success needs a release."""

    _start_distance = 1.0

    def place_xy(self, scene: Scene) -> np.ndarray:
        raise NotImplementedError

    def over_place(self, scene: Scene, cube_pos: np.ndarray) -> bool:
        """Whether the target cube, at ``cube_pos``, is over the place (at any height)."""
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


class PlaceExpertBase(FeedbackPickExpert):
    """A feedback expert (see ``FeedbackPickExpert``): pick the cube, carry it over the place
    down a funnel (up first, then over, then down as the cube comes over the place), open there,
    and back off upwards once the cube is at the place. Each action is a function of the scene
    as it is now: a cube dropped on the way is picked again, one released at the place is left."""

    release_height_m = 0.0  # the TCP's height at release
    release_box_m = 0.02  # lateral tolerance of the cube over the place, to let go
    release_tolerance_m = 0.015  # vertical tolerance of the TCP at the release height

    def act(self) -> np.ndarray:
        scene, task = self.scene, self.task
        cube_pos, tcp = scene.object_pos(task.target_cube), scene.ee_pos()
        if self.holding(cube_pos, tcp):
            return self.carry(cube_pos, tcp)
        if task.over_place(scene, cube_pos):
            return self.command(np.array([0.0, 0.0, CARRY_HEIGHT_M - tcp[2]]), OPEN)  # back off
        return self.pick(cube_pos, tcp)

    def carry(self, cube_pos: np.ndarray, tcp: np.ndarray) -> np.ndarray:
        """Over the place down a funnel; open at the release pose."""
        offset = self.task.place_xy(self.scene) - cube_pos[:2]
        lateral = float(np.hypot(*offset))
        rise = float(np.clip(self.funnel * (lateral - self.release_box_m / 2), 0.0, CARRY_HEIGHT_M - self.release_height_m))
        height = self.release_height_m + rise
        if lateral < self.release_box_m and abs(tcp[2] - self.release_height_m) < self.release_tolerance_m:
            return self.command(np.array([*offset, height - tcp[2]]), OPEN)
        speed = 1.0 if cube_pos[2] > CUBE_HALF_M + 0.01 else self.first_lift_speed  # off the table slowly
        if tcp[2] < height - 0.02:  # well below the funnel: straight up first, clear of the other cubes
            offset = np.zeros(2)
        return self.command(np.array([*offset, height - tcp[2]]), CLOSED, max_speed=speed)
