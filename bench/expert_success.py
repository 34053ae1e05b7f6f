"""Success rate of the scripted experts (sim/experts.py) per task over seeded episodes.

Usage: ``python bench/expert_success.py [--episodes 100] [--tasks lift,stack] [--randomize train]``.

Episode ``i`` is reset with seed ``i`` and runs its full length (no termination on success).
An episode succeeds when the task reports success at any step; "held at end" counts those
still successful at the last step; "diverged" counts episodes in which MuJoCo flagged a NaN
or huge state and reset the physics. Steps to success is the mean control step of first
success over successful episodes. The target is at least 90% per task; failing seeds are
listed so they can be replayed.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("MUJOCO_GL", "egl")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
from robot_rl.config import ConfigError, choices  # noqa: E402
from sim.env import RobotEnv  # noqa: E402
from sim.experts import WaypointExpert, make_expert  # noqa: E402
from sim.loading import load  # noqa: E402
from sim.registry import names  # noqa: E402
from results import print_result  # noqa: E402  (bench/results.py: the closing RESULT <name> <value> <aim> lines)

SUCCESS_TARGET = 0.9
SHOWN_FAILURES = 10


@dataclass
class TaskResult:
    """Outcomes of one task's episodes."""

    episodes: int = 0
    episode_steps: int = 0
    first_success_steps: list[int] = field(default_factory=list)
    held_at_end: int = 0
    diverged: int = 0
    failed_seeds: list[int] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def success_rate(self) -> float:
        return len(self.first_success_steps) / max(self.episodes, 1)


def run_episode(env: RobotEnv, expert: WaypointExpert, seed: int) -> tuple[int | None, bool, bool]:
    """(first success step or None, success at the last step, diverged) of one expert episode."""
    env.reset(seed=seed)
    expert.reset()
    first, success, done, step = None, False, False, 0
    while not done:
        _, _, terminated, truncated, info = env.step(expert.act())
        step += 1
        success, done = info["success"], terminated or truncated
        if success and first is None:
            first = step
    diverged = env.scene.diverged()  # MuJoCo resets a diverged state, so the episode is spoilt
    return first, success, diverged


def evaluate_task(task: str, robot: str, randomize: str, episodes: int) -> TaskResult:
    """Run seeds 0..episodes-1 of ``task`` with its scripted expert."""
    env = load(task, robot, randomize, cameras=())
    result = TaskResult(episodes=episodes, episode_steps=env.episode_steps)
    start = time.perf_counter()
    try:
        expert = make_expert(env)
        for seed in range(episodes):
            first, held, diverged = run_episode(env, expert, seed)
            if first is None:
                result.failed_seeds.append(seed)
            else:
                result.first_success_steps.append(first)
            result.held_at_end += held
            result.diverged += diverged
    finally:
        env.close()
    result.wall_s = time.perf_counter() - start
    return result


def print_row(task: str, r: TaskResult) -> None:
    mean_steps = sum(r.first_success_steps) / len(r.first_success_steps) if r.first_success_steps else float("nan")
    flag = "" if r.success_rate >= SUCCESS_TARGET else "  < target"
    print(f"{task:<11} {r.episodes:>8} {100 * r.success_rate:>8.0f}% {100 * r.held_at_end / r.episodes:>11.0f}% "
          f"{mean_steps:>9.1f} / {r.episode_steps:<4} {r.diverged:>8} {r.wall_s:>7.1f}{flag}", flush=True)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--episodes", type=int, default=100, help="episodes per task, seeds 0..N-1")
    parser.add_argument("--tasks", default=",".join(names("task")), help="comma-separated task names")
    parser.add_argument("--robot", default="panda")
    parser.add_argument("--randomize", default="none", help=f"preset, one of {choices('randomize')}")
    args = parser.parse_args()
    args.tasks = [t for t in args.tasks.split(",") if t]
    unknown = sorted(set(args.tasks) - set(names("task")))
    if unknown:
        parser.error(f"--tasks has unknown tasks {unknown}; choose from {names('task')}.")
    if args.randomize not in choices("randomize"):
        parser.error(f"--randomize {args.randomize!r} is unknown; choose from {choices('randomize')}.")
    if args.episodes < 1:
        parser.error(f"--episodes must be at least 1, got {args.episodes}.")
    return args


def main() -> None:
    """Run every selected task's expert over seeded episodes and print a table."""
    args = parse_args()
    print(f"robot {args.robot}, randomize {args.randomize}, seeds 0..{args.episodes - 1}, "
          f"full-length episodes, target >= {SUCCESS_TARGET:.0%} per task")
    print(f"{'task':<11} {'episodes':>8} {'success':>9} {'held at end':>12} {'steps to success':>16} "
          f"{'diverged':>8} {'wall s':>7}")
    failures, rates = {}, {}
    try:
        for task in args.tasks:
            result = evaluate_task(task, args.robot, args.randomize, args.episodes)
            print_row(task, result)
            rates[task] = result.success_rate
            if result.failed_seeds:
                failures[task] = result.failed_seeds
    except ConfigError as error:
        sys.exit(f"error: {error}")
    for task, seeds in failures.items():
        more = f" (+{len(seeds) - SHOWN_FAILURES} more)" if len(seeds) > SHOWN_FAILURES else ""
        print(f"failed seeds, {task}: {seeds[:SHOWN_FAILURES]}{more}")
    for task, rate in rates.items():
        print_result(f"expert_success_{args.robot}_{args.randomize}_{task}", rate, f">={SUCCESS_TARGET:g}")


if __name__ == "__main__":
    main()
