"""Pick and place: put the named cube in the bowl; its scripted expert."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from dm_control import mjcf

from sim.arena import CUBE_HALF_M, add_bowl
from sim.scene import Scene
from sim.tasks.base import TaskConfig
from sim.tasks.place_base import PlaceExpertBase, PlaceTaskBase


@dataclass
class PickPlaceConfig(TaskConfig):
    bowl_half_m: float = 0.07
    bowl_height_m: float = 0.04


class PickPlace(PlaceTaskBase):
    name = "pick_place"
    config_class = PickPlaceConfig

    def __init__(self, config: PickPlaceConfig) -> None:
        super().__init__(config)
        self.config: PickPlaceConfig = config

    def build(self, arena: mjcf.RootElement) -> None:
        super().build(arena)
        add_bowl(arena, radius_m=self.config.bowl_half_m, height_m=self.config.bowl_height_m)

    def place_objects(self, scene: Scene, rng: np.random.Generator, extra_places: int = 0) -> list[np.ndarray]:
        # The bowl takes a sampled spot of its own so it never lands on a cube.
        bowl, *rest = super().place_objects(scene, rng, extra_places + 1)
        scene.set_mocap_pos("bowl", np.array([*bowl, 0.0]))
        return rest

    def place_xy(self, scene: Scene) -> np.ndarray:
        return scene.mocap_pos("bowl")[:2]

    def goal_pos(self, scene: Scene) -> np.ndarray:
        return scene.mocap_pos("bowl")

    def over_place(self, scene: Scene, cube_pos: np.ndarray) -> bool:
        return bool((np.abs(cube_pos[:2] - self.place_xy(scene)) < self.config.bowl_half_m - 0.01).all())

    def placed(self, scene: Scene, cube_pos: np.ndarray) -> bool:
        return self.over_place(scene, cube_pos) and bool(cube_pos[2] < self.config.bowl_height_m + 0.01)


class PickPlaceExpert(PlaceExpertBase):
    release_height_m = CUBE_HALF_M + 0.03
    release_box_m = 0.03  # the bowl is wide: anywhere within 3 cm of its centre drops in
