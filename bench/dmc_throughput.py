"""Agent steps per second of the dm_control suite tasks (sim/dmc.py) on one CPU core.

Usage: ``python bench/dmc_throughput.py [--steps 3000] [--core 0]``. Prints one row per task
and observation type: state, and pixels at 84x84 with the fast render profile. The process is
pinned to one core, and BLAS and Mesa's llvmpipe rasteriser are kept to one thread, so the
figure is what one environment worker gets.
"""

from __future__ import annotations

import os

# Before numpy and GL load: their thread pools are sized at import.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("LP_NUM_THREADS", "0")  # llvmpipe draws on the calling thread

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
from sim.dmc import DMC_TASKS, DMCEnv  # noqa: E402
from results import print_result  # noqa: E402  (bench/results.py: the closing RESULT <name> <value> <aim> lines)


def steps_per_s(task_id: str, obs_type: str, steps: int, action_repeat: int) -> float:
    """Agent steps per second over ``steps`` random-action steps, resetting at truncation."""
    env = DMCEnv.from_id(task_id, obs_type=obs_type, action_repeat=action_repeat, seed=0)
    try:
        actions = np.random.default_rng(0).uniform(-1, 1, (steps, *env.action_space.shape))
        env.reset(seed=0)
        env.step(actions[0].astype(np.float32))  # warm up: GL context, first frame
        start = time.perf_counter()
        for action in actions.astype(np.float32):
            _, _, terminated, truncated, _ = env.step(action)
            if terminated or truncated:
                env.reset()
        return steps / (time.perf_counter() - start)
    finally:
        env.close()


def main() -> None:
    """Pin to one core, time every task for state and pixel observations, print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000, help="agent steps timed per row")
    parser.add_argument("--core", type=int, default=0, help="CPU core to pin to")
    parser.add_argument("--action-repeat", type=int, default=2)
    args = parser.parse_args()
    os.sched_setaffinity(0, {args.core})
    print(f"one core (cpu {args.core}), action repeat {args.action_repeat}, "
          f"{args.steps} agent steps per row, MUJOCO_GL={os.environ['MUJOCO_GL']}")
    print(f"{'task':<18} {'obs':<10} {'agent steps/s':>14} {'ms/step':>8}")
    rates = {}
    for task_id in DMC_TASKS:
        for obs_type, label in (("state", "state"), ("pixels", "pixels84")):
            rate = steps_per_s(task_id, obs_type, args.steps, args.action_repeat)
            print(f"{task_id:<18} {label:<10} {rate:>14.0f} {1000 / rate:>8.2f}")
            rates[f"{task_id}_{label}"] = rate
    for key, rate in rates.items():
        print_result(f"dmc_steps_per_s_{key}", rate)


if __name__ == "__main__":
    main()
