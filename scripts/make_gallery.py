"""Render docs/tasks.png: every task on every robot, front and wrist views mid-demonstration.

    .venv/bin/python scripts/make_gallery.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

import sim
from robot_rl import media
from sim.experts import make_expert
from sim.registry import names

SIZE = 192
FRACTION = 0.45  # how far into the episode the picture is taken


def snapshot(task: str, robot: str) -> list[np.ndarray]:
    env = sim.load(task, robot, image_size=SIZE, render_profile="pretty")
    try:
        obs, info = env.reset(seed=1)
        expert = make_expert(env)
        expert.reset()
        for _ in range(int(env.episode_steps * FRACTION)):
            obs, _, _, _, info = env.step(expert.act())
        front = media.annotate(obs["obs/images/front"], [f"{robot}: {info['instruction']}"])
        return [front, obs["obs/images/wrist"]]
    finally:
        env.close()


def main() -> None:
    rows = [[im for robot in names("robot") for im in snapshot(task, robot)] for task in names("task")]
    out = media.write_png(Path("docs/tasks.png"), media.grid(rows))
    print(out)


if __name__ == "__main__":
    main()
