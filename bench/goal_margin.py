"""How close a teacher ends to its task's goal, not only whether it succeeds (issue 12).

Usage: ``python bench/goal_margin.py --task reach --policies expert,runs/pipeline/reach-default/train/policy``.

A student distilled from a teacher inherits the teacher's end state plus its own imitation
error, so a teacher that stops just inside the success region leaves the student no room:
reach succeeds within ``tolerance_m`` (3 cm) of its goal point, and a teacher that ends 2.5 cm
away fails its student at about half a centimetre of error. This rolls out each policy (the
task's scripted expert, or a state policy artifact reading ``obs/object``) on the same seeded
episodes (seeds 10000+, the evaluation seeds' range) for the task's full length, and reports
the final distance to the goal as the task itself measures it (reach: the hand to the point
above the cube; push: the cube to the goal disc, in the table's plane) against the task's
tolerance. The other tasks succeed on conditions, not on one distance. Prints a table, then one
``RESULT goal_margin_<task>_<policy>_final_cm_mean <cm> -`` line per policy.
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import argparse  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
from results import print_result  # noqa: E402  (bench/results.py)
from robot_rl.policy.spec import ContractError  # noqa: E402
from robot_rl.train.teachers import check_teacher, resolve_teacher  # noqa: E402
from sim.experts import make_expert  # noqa: E402
from sim.loading import load  # noqa: E402

MOVED = {"reach": "hand", "push": "cube"}  # what the task brings to its goal
SEED = 10_000


def final_distances(task: str, policy: str, episodes: int, randomize: str) -> tuple[np.ndarray, np.ndarray, float]:
    """Per episode: the distance (m) to the goal at the last step, the fraction of steps inside
    the task's tolerance, and the tolerance."""
    env = load(task, "panda", randomize, cameras=(), image_size=32)
    runtime = None
    if policy != "expert":
        from robot_rl.policy.runtime import load_runtime

        runtime = load_runtime(resolve_teacher(policy), "onnxruntime-cpu", warmup_runs=1)
    env_task = env.unwrapped.task
    tolerance = float(env_task.config.tolerance_m)
    finals, inside = [], []
    for episode in range(episodes):
        obs, _ = env.reset(seed=SEED + episode)
        scene = env.unwrapped.scene
        expert = make_expert(env.unwrapped) if runtime is None else None
        if expert is not None:
            expert.reset()
        distances = []
        done = False
        while not done:
            action = expert.act() if expert is not None else runtime.act(obs).copy()
            obs, _, terminated, truncated, _ = env.step(action)
            distances.append(env_task.goal_distance(scene))  # the distance the task's success is judged on
            done = terminated or truncated
        finals.append(distances[-1])
        inside.append(float(np.mean(np.asarray(distances) < tolerance)))
    env.close()
    return np.asarray(finals), np.asarray(inside), tolerance


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="reach", choices=sorted(MOVED))
    parser.add_argument("--policies", default="expert", help="comma-separated: expert and/or policy artifact dirs")
    parser.add_argument("--episodes", type=int, default=30)
    parser.add_argument("--randomize", default="none")
    args = parser.parse_args()
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    env_spec = load(args.task, "panda", args.randomize, cameras=()).env_spec
    for policy in policies:  # what a distillation teacher must be: the expert or a state policy for this env
        try:
            check_teacher(resolve_teacher(policy), [args.task], env_spec)
        except (ValueError, ContractError) as error:
            raise SystemExit(f"--policies: {error}") from None
    print(f"{args.task}, {args.episodes} episodes (seeds {SEED}+), randomize={args.randomize}; final distance of "
          f"the {MOVED[args.task]} to the goal (cm)")
    print(f"{'policy':<48} {'mean':>6} {'p50':>6} {'p90':>6} {'max':>6} {'tol':>5} {'ends inside':>11} {'steps inside':>12}")
    rows = []
    for policy in policies:
        finals, inside, tolerance = final_distances(args.task, policy, args.episodes, args.randomize)
        cm = 100 * finals
        rows.append((policy, cm))
        print(f"{policy[-48:]:<48} {cm.mean():>6.2f} {np.percentile(cm, 50):>6.2f} {np.percentile(cm, 90):>6.2f} "
              f"{cm.max():>6.2f} {100 * tolerance:>5.1f} {np.mean(finals < tolerance):>11.2f} {inside.mean():>12.2f}",
              flush=True)
    for policy, cm in rows:
        name = "expert" if policy == "expert" else "_".join(Path(resolve_teacher(policy)).resolve().parts[-3:-1])
        print_result(f"goal_margin_{args.task}_{name}_final_cm_mean", float(cm.mean()))


if __name__ == "__main__":
    main()
