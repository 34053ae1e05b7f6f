"""Push: slide the named cube onto the goal marker without lifting it."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from dm_control import mjcf

from sim.arena import add_marker
from sim.scene import Scene
from sim.tasks.base import Task, TaskConfig, closeness


@dataclass
class PushConfig(TaskConfig):
    tolerance_m: float = 0.04
    goal_distance_m: tuple[float, float] = (0.12, 0.2)


class Push(Task):
    name = "push"
    config_class = PushConfig

    def __init__(self, config: PushConfig) -> None:
        super().__init__(config)
        self.config: PushConfig = config
        self._start_distance = 1.0

    def build(self, arena: mjcf.RootElement) -> None:
        super().build(arena)
        add_marker(arena, "goal")

    def place_objects(self, scene: Scene, rng: np.random.Generator, extra_places: int = 0) -> list[np.ndarray]:
        places = super().place_objects(scene, rng, extra_places)
        cube = scene.object_pos(self.target_cube)
        for _ in range(100):
            angle = rng.uniform(-np.pi, np.pi)
            goal = cube[:2] + rng.uniform(*self.config.goal_distance_m) * np.array([np.cos(angle), np.sin(angle)])
            if np.all(goal >= self.config.spawn_low_m) and np.all(goal <= self.config.spawn_high_m):
                break
        scene.set_mocap_pos("goal", np.array([*goal, 0.0]))
        return places

    def after_reset(self, scene: Scene) -> None:
        self._start_distance = max(self._goal_distance(scene), 1e-3)

    def goal_pos(self, scene: Scene) -> np.ndarray:
        return scene.mocap_pos("goal")

    def _goal_distance(self, scene: Scene) -> float:
        return float(np.linalg.norm(scene.object_pos(self.target_cube)[:2] - self.goal_pos(scene)[:2]))

    def evaluate(self, scene: Scene) -> tuple[bool, float]:
        distance = self._goal_distance(scene)
        if distance < self.config.tolerance_m:
            return True, 1.0
        moved = closeness(distance, self._start_distance)
        progress = 0.3 * self.reach_term(scene, scene.object_pos(self.target_cube)) + 0.7 * moved
        return False, min(progress, 0.99)
