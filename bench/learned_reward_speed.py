"""SAC on the learned reward against SAC on ground truth: env steps per second (issue 18, point 5).

  python bench/learned_reward_speed.py --model runs/pipeline/reach-default/reward

Runs ``robot-rl train task=reach algo=sac`` three ways with everything else equal (UTD 2, batch
256, 3000 env steps of which 2000 random, no evaluation until the end, state policy):
- ``gt``: the sim's ground-truth reward (no camera is rendered);
- ``vlm (each step)``: the learned reward scored as each step is collected
  (``reward.score.background_every=0``, what the trainer did before);
- ``vlm``: the default, steps scored 16 at a time beside the learner.
The learned reward renders its cameras (front and wrist at the model's 64 px) and runs its
network; the figure is ``train/steps_per_s`` of the final log row (the loop's own wall time,
the final evaluation and export left out). ``--model``: a reward model directory (``robot-rl
pipeline`` writes one to ``runs/pipeline/reach-default/reward``).
"""

from __future__ import annotations

import argparse
import csv
import os
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


def run(name: str, extra: list[str], model: str, steps: int, seed_steps: int, out: Path) -> float:
    run_dir = out / name.replace(" ", "_").replace("(", "").replace(")", "")
    model_args = [f"reward.model_path={model}"] if "reward=vlm" in extra else []
    argv = [str(ROOT / ".venv" / "bin" / "robot-rl"), "train", "task=reach", "algo=sac", *extra, *model_args,
            f"train.total_steps={steps}",
            f"algo.seed_steps={seed_steps}", "algo.utd=2", "algo.batch_size=256", "train.num_envs=1",
            "train.eval_every=0", "train.eval_episodes=1", "train.video_episodes=0", f"train.log_every={steps}",
            f"train.checkpoint_every={steps}", "baseline.bc=false", "logger=csv", "logger.progress_bar=false",
            f"run={run_dir}"]
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, env={**os.environ, "MUJOCO_GL": "egl"})
    rows = list(csv.DictReader((run_dir / "metrics" / "train.csv").open()))
    return float([r for r in rows if r.get("steps_per_s")][-1]["steps_per_s"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "runs" / "pipeline" / "reach-default" / "reward"))
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--seed-steps", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=1, help="runs per way (the best is kept)")
    args = parser.parse_args()
    if not (Path(args.model) / "model.safetensors").is_file():
        raise SystemExit(f"no reward model in {args.model}: run `robot-rl pipeline` first or pass --model DIR.")
    rates: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for name, extra in WAYS.items():
                rate = run(name, extra, args.model, args.steps, args.seed_steps, Path(tmp) / str(repeat))
                rates[name] = max(rates.get(name, 0.0), rate)
    print(f"SAC on reach, UTD 2, batch 256, {args.steps} env steps ({args.seed_steps} random), one env, "
          f"load average at the end {os.getloadavg()[0]:.2f}")
    print(f"{'reward':<18} {'env steps/s':>12} {'vs gt':>7}")
    for name, rate in rates.items():
        print(f"{name:<18} {rate:>12.1f} {rate / rates['gt']:>6.2f}x")
    print_result("learned_reward_steps_ratio_each_step", rates["vlm (each step)"] / rates["gt"], ">=0.9")
    print_result("learned_reward_steps_ratio", rates["vlm"] / rates["gt"], ">=0.9")
    return 0


if __name__ == "__main__":
    sys.exit(main())
