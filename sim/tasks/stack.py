"""Stack: put the named cube on top of another named cube; its scripted expert."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sim.arena import CUBE_HALF_M
from sim.scene import Scene, norm
from sim.tasks.base import TaskConfig
from sim.tasks.place_base import PlaceExpertBase, PlaceTaskBase


@dataclass
class StackConfig(TaskConfig):
    xy_tolerance_m: float = 0.02


class Stack(PlaceTaskBase):
    name = "stack"
    config_class = StackConfig

    def __init__(self, config: StackConfig) -> None:
        super().__init__(config)
        self.config: StackConfig = config
        self.base = config.colors[1]

    @property
    def base_cube(self) -> str:
        return self.cube(self.base)

    def choose_targets(self, rng: np.random.Generator) -> None:
        super().choose_targets(rng)
        self.base = str(rng.choice([c for c in self.config.colors if c != self.target]))

    def format_instruction(self, template: str) -> str:
        return template.format(color=self.target, base=self.base)

    def place_xy(self, scene: Scene) -> np.ndarray:
        return scene.object_pos(self.base_cube)[:2]

    def goal_pos(self, scene: Scene) -> np.ndarray:
        return scene.object_pos(self.base_cube) + [0, 0, 2 * CUBE_HALF_M]

    def over_place(self, scene: Scene, cube_pos: np.ndarray) -> bool:
        return bool(norm(cube_pos[:2] - self.place_xy(scene)) < self.config.xy_tolerance_m)

    def placed(self, scene: Scene, cube_pos: np.ndarray) -> bool:
        base = scene.object_pos(self.base_cube)
        on_top = abs(cube_pos[2] - base[2] - 2 * CUBE_HALF_M) < 0.01
        return self.over_place(scene, cube_pos) and bool(on_top and base[2] < CUBE_HALF_M + 0.005)


class StackExpert(PlaceExpertBase):
    release_height_m = 3 * CUBE_HALF_M + 0.004
    release_box_m = 0.012  # inside the task's 2 cm alignment
    release_tolerance_m = 0.008  # the cube drops at most 1.6 cm onto the base
