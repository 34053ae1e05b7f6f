"""What every task provides, and the small helpers the tasks share.

A task adds its objects to the arena, places them and draws an instruction at reset, and
reports privileged ground truth from sim state: ``success`` and a dense ``progress`` in [0, 1]
that rises along a correct solution. Learned reward models are graded against these.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from dm_control import mjcf

from robot_rl.contracts import SCENE_COLORS
from sim.arena import CUBE_HALF_M, add_cube
from sim.scene import Scene, norm


def closeness(distance_m: float, scale_m: float) -> float:
    """1 at distance 0, falling linearly to 0 at ``scale_m``: a bounded shaping term."""
    return float(min(max(1.0 - distance_m / scale_m, 0.0), 1.0))  # np.clip's value, without its dispatch


@dataclass
class TaskConfig:
    """Fields shared by every task; each task's YAML fills them."""

    templates: list[str]
    colors: list[str] = field(default_factory=lambda: list(SCENE_COLORS))
    episode_steps: int = 100
    spawn_low_m: tuple[float, float] = (0.4, -0.18)
    spawn_high_m: tuple[float, float] = (0.62, 0.18)
    min_separation_m: float = 0.09
    max_yaw_rad: float = 0.6
    reach_scale_m: float = 0.35


class Task:
    """Base for the tabletop tasks: one cube per colour, a target colour drawn per episode."""

    name = "task"
    config_class = TaskConfig

    def __init__(self, config: TaskConfig) -> None:
        if not config.templates:
            raise ValueError(f"task {self.name!r} needs at least one instruction template.")
        self.config = config
        self.target = config.colors[0]
        self.instruction = ""
        self._others: list[str] = []
        self._others_of: str | None = None

    @staticmethod
    def cube(color: str) -> str:
        return f"{color}_cube"

    @property
    def target_cube(self) -> str:
        return self.cube(self.target)

    def build(self, arena: mjcf.RootElement) -> None:
        """Add this task's objects to the arena."""
        for color in self.config.colors:
            add_cube(arena, self.cube(color), color)

    def reset(self, scene: Scene, rng: np.random.Generator) -> str:
        """Choose the target, place objects, and return the episode's instruction."""
        self.choose_targets(rng)
        self.place_objects(scene, rng)
        self.instruction = self.format_instruction(str(rng.choice(self.config.templates)))
        return self.instruction

    def choose_targets(self, rng: np.random.Generator) -> None:
        self.target = str(rng.choice(self.config.colors))

    def place_objects(self, scene: Scene, rng: np.random.Generator, extra_places: int = 0) -> list[np.ndarray]:
        """Scatter the cubes; returns ``extra_places`` more free spots for other objects."""
        places = self.sample_positions(rng, len(self.config.colors) + extra_places)
        for color, xy in zip(self.config.colors, places):
            yaw = rng.uniform(-self.config.max_yaw_rad, self.config.max_yaw_rad)
            scene.set_object_pose(self.cube(color), np.array([*xy, CUBE_HALF_M]), yaw)
        return places[len(self.config.colors):]

    def format_instruction(self, template: str) -> str:
        return template.format(color=self.target)

    def sample_positions(self, rng: np.random.Generator, count: int) -> list[np.ndarray]:
        """``count`` xy positions in the spawn box, pairwise at least ``min_separation_m`` apart."""
        cfg = self.config
        for _ in range(1000):
            points = rng.uniform(cfg.spawn_low_m, cfg.spawn_high_m, size=(count, 2))
            gaps = np.linalg.norm(points[:, None] - points[None], axis=-1) + np.eye(count)
            if gaps.min() >= cfg.min_separation_m:
                return list(points)
        raise RuntimeError(f"task {self.name!r}: cannot place {count} objects with the spawn box given.")

    def after_reset(self, scene: Scene) -> None:
        """Hook run once physics has settled after placement (record initial distances)."""

    def evaluate(self, scene: Scene) -> tuple[bool, float]:
        """(success, progress in [0, 1]) from privileged sim state."""
        raise NotImplementedError

    def goal_pos(self, scene: Scene) -> np.ndarray:
        """Where the target object should end up; zeros when the task has no goal place."""
        return np.zeros(3)

    def object_features(self, scene: Scene) -> np.ndarray:
        """Privileged object state: the target first (so a state policy knows the instruction)."""
        target = scene.object_pos(self.target_cube)
        features = np.empty(self.object_feature_dim(), np.float32)  # each value cast once, as astype would
        features[:3], features[3:7] = target, scene.object_quat(self.target_cube)
        features[7:10], features[10:13] = target - scene.ee_pos(), self.goal_pos(scene)
        for i, name in enumerate(self._other_cubes()):
            features[13 + 3 * i:16 + 3 * i] = scene.object_pos(name)
        return features

    def _other_cubes(self) -> list[str]:
        """The cubes other than the target, in colour order; kept per target, as it is asked every step."""
        if self._others_of != self.target:
            self._others, self._others_of = [self.cube(c) for c in self.config.colors if c != self.target], self.target
        return self._others

    def object_feature_dim(self) -> int:
        return 3 + 4 + 3 + 3 + 3 * (len(self.config.colors) - 1)

    def reach_term(self, scene: Scene, point: np.ndarray) -> float:
        return closeness(norm(scene.ee_pos() - point), self.config.reach_scale_m)
