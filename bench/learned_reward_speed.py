"""SAC on the learned reward against SAC on ground truth: env steps per second (issue 18, point 5).

  python bench/learned_reward_speed.py --model runs/pipeline/reach-default/reward

Runs ``robot-rl train task=reach algo=sac`` three ways with everything else equal (UTD 2, batch
256, 3000 env steps of which 2000 random, no evaluation until the end, state policy):
- ``gt``: the sim's ground-truth reward (no camera is rendered);
- ``vlm (each step)``: the learned reward scored as each step is collected
  (``reward.score.background_every=0``, what the trainer did before);
- ``vlm``: the default, steps scored 16 at a time beside the learner.
The learned reward renders its cameras (front and wrist at the model's 64 px) and runs its
network (with ``vlm`` the cameras are drawn on the env's render thread beside the learner).
The figure is ``train/steps_per_s`` of the final log row (the loop's own wall time, the final
evaluation and export left out) against the ground-truth run of the same round, the median
over ``--repeats`` rounds; the table also splits each run into its random phase and its
learning phase. ``--model``: a reward model directory (``robot-rl
pipeline`` writes one to ``runs/pipeline/reach-default/reward``).
"""

from __future__ import annotations

import argparse
import csv
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from results import print_result  # noqa: E402  (bench/results.py: the closing RESULT <name> <value> <aim> lines)

WAYS = {"gt": ["reward=gt"],
        "vlm (each step)": ["reward=vlm", "reward.score.background_every=0", "reward.device=cpu"],
        "vlm": ["reward=vlm", "reward.device=cpu"]}


def run(name: str, extra: list[str], model: str, steps: int, seed_steps: int, out: Path) -> dict[str, float]:
    """One training run: env steps/s over the whole loop, in the random seed phase and after it."""
    run_dir = out / name.replace(" ", "_").replace("(", "").replace(")", "")
    model_args = [f"reward.model_path={model}"] if "reward=vlm" in extra else []
    argv = [str(ROOT / ".venv" / "bin" / "robot-rl"), "train", "task=reach", "algo=sac", *extra, *model_args,
            f"train.total_steps={steps}",
            f"algo.seed_steps={seed_steps}", "algo.utd=2", "algo.batch_size=256", "train.num_envs=1",
            "train.eval_every=0", "train.eval_episodes=1", "train.video_episodes=0", f"train.log_every={seed_steps}",
            f"train.checkpoint_every={steps}", "baseline.bc=false", "logger=csv", "logger.progress_bar=false",
            f"run={run_dir}"]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "MUJOCO_GL": "egl"})
    rows = [r for r in csv.DictReader((run_dir / "metrics" / "train.csv").open()) if r.get("steps_per_s")]
    at = {int(float(r["env_steps"])): float(r["wall_s"]) for r in rows}
    total = float(rows[-1]["steps_per_s"])
    seed_rate = seed_steps / at[seed_steps] if seed_steps in at else float("nan")
    learn_rate = (steps - seed_steps) / (at[steps] - at[seed_steps]) if seed_steps in at and steps in at else float("nan")
    return {"all": total, "seed": seed_rate, "learning": learn_rate}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "runs" / "pipeline" / "reach-default" / "reward"))
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--seed-steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=1, help="rounds of the ways, run in turn")
    parser.add_argument("--ways", default=",".join(WAYS), help=f"comma-separated, from {list(WAYS)} (gt always)")
    args = parser.parse_args()
    if not (Path(args.model) / "model.safetensors").is_file():
        raise SystemExit(f"no reward model in {args.model}: run `robot-rl pipeline` first or pass --model DIR.")
    ways = ["gt"] + [w for w in args.ways.split(",") if w in WAYS and w != "gt"]
    unknown = [w for w in args.ways.split(",") if w not in WAYS]
    if unknown:
        raise SystemExit(f"unknown ways {unknown}; choose from {list(WAYS)}.")
    rates: dict[str, list[dict[str, float]]] = {name: [] for name in ways}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for name in ways:
                rates[name].append(run(name, WAYS[name], args.model, args.steps, args.seed_steps, Path(tmp) / str(repeat)))
    print(f"SAC on reach, UTD 2, batch 256, {args.steps} env steps ({args.seed_steps} random), one env, "
          f"{args.repeats} rounds run in turn, load average at the end {os.getloadavg()[0]:.2f}")
    print(f"{'reward':<18} {'round':>5} {'env steps/s':>12} {'vs gt':>7} {'random phase':>13} {'learning phase':>15}")
    ratios: dict[str, list[float]] = {}
    for name in ways:
        for i, (rate, gt) in enumerate(zip(rates[name], rates["gt"])):
            ratios.setdefault(name, []).append(rate["all"] / gt["all"])
            print(f"{name:<18} {i:>5} {rate['all']:>12.1f} {rate['all'] / gt['all']:>6.2f}x "
                  f"{rate['seed']:>12.1f}/s {rate['learning']:>14.2f}/s")
    print("(vs gt: against the ground-truth run of the same round; the figure is the median over rounds)")
    if "vlm (each step)" in ratios:
        print_result("learned_reward_steps_ratio_each_step", statistics.median(ratios["vlm (each step)"]), ">=0.9")
    if "vlm" in ratios:
        print_result("learned_reward_steps_ratio", statistics.median(ratios["vlm"]), ">=0.9")
    return 0


if __name__ == "__main__":
    sys.exit(main())
