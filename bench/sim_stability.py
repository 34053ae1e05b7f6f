"""Physics stability under domain randomisation: episodes in which the simulation blew up.

Usage: ``python bench/sim_stability.py [--episodes 200] [--presets train,hard] [--robots panda,jaco]
[--tasks lift,stack] [--policy expert|random]``.

Episode ``i`` of every (preset, robot, task) is reset with seed ``i`` and runs its full length
with the task's scripted expert (which grasps, so it loads the fingers and the objects) or
with uniform random actions, state observations only. "Diverged" counts episodes in which
MuJoCo flagged a NaN, Inf or huge qacc, qvel or qpos (it then resets the physics) or the state
was not finite at the end; "other warnings" names any other MuJoCo warning and in how many
episodes it fired. The aim is zero diverged episodes for every preset; the last lines are
``RESULT sim_stability_diverged_<preset> <episodes> 0``.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("MUJOCO_GL", "egl")

import argparse  # noqa: E402
import logging  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
from results import print_result  # noqa: E402  (bench/results.py: the closing RESULT <name> <value> <aim> lines)

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
from robot_rl.config import ConfigError, choices  # noqa: E402
from sim.env import RobotEnv  # noqa: E402
from sim.experts import make_expert  # noqa: E402
from sim.loading import load  # noqa: E402
from sim.registry import names  # noqa: E402
from sim.scene import DIVERGENCE_WARNINGS  # noqa: E402

SHOWN_SEEDS = 8
_DIVERGENCE_NAMES = {w.name.removeprefix("mjWARN_").lower() for w in DIVERGENCE_WARNINGS}


@dataclass
class Sweep:
    """Outcomes of one (preset, robot, task)'s episodes."""

    episodes: int = 0
    diverged_seeds: list[int] = field(default_factory=list)
    other_warnings: Counter = field(default_factory=Counter)
    wall_s: float = 0.0


def run_episode(env: RobotEnv, seed: int, policy: str) -> tuple[bool, set[str]]:
    """(diverged, names of the other warnings raised) of one full-length episode."""
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    expert = make_expert(env) if policy == "expert" else None
    if expert is not None:
        expert.reset()
    for _ in range(env.episode_steps):
        action = expert.act() if expert is not None else rng.uniform(-1, 1, env.action_space.shape)
        env.step(action)
    other = set(env.scene.warning_counts()) - _DIVERGENCE_NAMES
    return env.scene.diverged(), other


def sweep(task: str, robot: str, preset: str, episodes: int, policy: str) -> Sweep:
    env = load(task, robot, preset, cameras=())
    result = Sweep(episodes=episodes)
    start = time.perf_counter()
    try:
        for seed in range(episodes):
            diverged, other = run_episode(env, seed, policy)
            if diverged:
                result.diverged_seeds.append(seed)
            result.other_warnings.update(other)
    finally:
        env.close()
    result.wall_s = time.perf_counter() - start
    return result


def print_row(preset: str, robot: str, task: str, r: Sweep) -> None:
    other = ", ".join(f"{k} {v}" for k, v in sorted(r.other_warnings.items())) or "-"
    seeds = r.diverged_seeds[:SHOWN_SEEDS]
    more = f" +{len(r.diverged_seeds) - SHOWN_SEEDS}" if len(r.diverged_seeds) > SHOWN_SEEDS else ""
    shown = f"  seeds {seeds}{more}" if seeds else ""
    print(f"{preset:<7} {robot:<6} {task:<11} {r.episodes:>8} {len(r.diverged_seeds):>8} {other:>16} "
          f"{r.wall_s:>7.1f}{shown}", flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=200, help="episodes per row, seeds 0..N-1")
    parser.add_argument("--presets", default=",".join(choices("randomize")))
    parser.add_argument("--robots", default="panda,jaco")
    parser.add_argument("--tasks", default=",".join(names("task")))
    parser.add_argument("--policy", choices=("expert", "random"), default="expert")
    args = parser.parse_args()
    for name, valid in (("presets", choices("randomize")), ("robots", names("robot")), ("tasks", names("task"))):
        values = [v for v in getattr(args, name).split(",") if v]
        unknown = sorted(set(values) - set(valid))
        if unknown:
            parser.error(f"--{name} has unknown values {unknown}; choose from {valid}.")
        setattr(args, name, values)
    if args.episodes < 1:
        parser.error(f"--episodes must be at least 1, got {args.episodes}.")
    return args


def main() -> None:
    """Sweep every selected preset, robot and task and print a table and RESULT lines."""
    args = parse_args()
    logging.getLogger("absl").setLevel(logging.ERROR)  # one warning line per blow-up otherwise
    print(f"policy {args.policy}, seeds 0..{args.episodes - 1}, full-length episodes, aim 0 diverged")
    print(f"{'preset':<7} {'robot':<6} {'task':<11} {'episodes':>8} {'diverged':>8} {'other warnings':>16} "
          f"{'wall s':>7}")
    totals: Counter = Counter()
    try:
        for preset in args.presets:
            totals[preset] += 0
            for robot in args.robots:
                for task in args.tasks:
                    result = sweep(task, robot, preset, args.episodes, args.policy)
                    print_row(preset, robot, task, result)
                    totals[preset] += len(result.diverged_seeds)
    except ConfigError as error:
        sys.exit(f"error: {error}")
    for preset, diverged in totals.items():
        print_result(f"sim_stability_diverged_{preset}", diverged, "0")


if __name__ == "__main__":
    main()
