"""State-based SAC on dm_control (action repeat 2) against the published TD-MPC2 release curves.

  python bench/sac_dmc.py --task cartpole_swingup --seed 0            # one seed, 100k agent steps
  python bench/sac_dmc.py --summary runs/bench/sac_dmc                 # table from finished/partial runs

Each seed is an ordinary robot_rl run directory (metrics/eval.csv, checkpoints, videos), so
``--resume`` continues a killed seed and the summary reads whatever each seed reached.
Published means at 100k agent steps (bench/anchors README): cartpole_swingup SAC 835 /
TD-MPC2 839, reacher_easy SAC 540 / TD-MPC2 937.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from results import print_result  # noqa: E402  (bench/results.py: the closing RESULT <name> <value> <aim> lines)

PUBLISHED = {"cartpole_swingup": {"sac": 835, "tdmpc2": 839}, "reacher_easy": {"sac": 540, "tdmpc2": 937},
             "walker_walk": {"sac": 708, "tdmpc2": 962}}


def make_env(task: str, seed: int):
    from sim.dmc import DMCEnv

    return DMCEnv.from_id(task, obs_type="state", action_repeat=2, seed=seed)


def run_seed(args) -> dict:
    import torch

    from robot_rl.algos.networks import ObsSpec
    from robot_rl.algos.sac import SAC, SACConfig
    from robot_rl.train.logger import Logger
    from robot_rl.train.checkpoint import checkpoint_path
    from robot_rl.train.online import OnlineConfig, OnlineTrainer
    from robot_rl.train.replay import ReplayBuffer

    torch.set_num_threads(1)
    env = make_env(args.task, args.seed)
    specs = {k: ObsSpec(s.shape, str(s.dtype)) for k, s in env.observation_space.spaces.items()}
    action_dim = env.action_space.shape[0]
    env.close()
    run_dir = Path(args.out) / f"{args.task}_s{args.seed}"
    config = OnlineConfig(total_steps=args.steps, seed_steps=args.seed_steps, batch_size=args.batch_size,
                          utd=args.utd, eval_every=args.eval_every, eval_episodes=10, video_episodes=0,
                          checkpoint_every=args.eval_every, log_every=5000, normalize_obs=False, seed=args.seed,
                          progress_bar=False)
    agent = SAC(specs, action_dim, SACConfig(lr=args.lr, num_critics=args.num_critics,
                                                      update_dtype=args.update_dtype), seed=args.seed)
    buffer = ReplayBuffer(specs, action_dim, args.steps, seed=args.seed)
    resume = args.resume and checkpoint_path(run_dir / "checkpoints") is not None
    logger = Logger(run_dir, resume_step=None)
    trainer = OnlineTrainer(agent, partial(make_env, args.task, args.seed), partial(make_env, args.task, args.seed + 100),
                            config, run_dir, logger, buffer, resume=resume)
    start = time.perf_counter()
    result = trainer.run()
    logger.close()
    summary = {"task": args.task, "seed": args.seed, "steps": trainer.step, "final_return": result.mean_return,
               "wall_s": trainer.wall_s, "this_process_s": time.perf_counter() - start, "utd": args.utd,
               "batch_size": args.batch_size, "lr": args.lr}
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def summarize(root: Path, budget: int = 100_000, means: dict[str, float] | None = None) -> str:
    """Per-seed rows, then per task the mean ± std over the seeds that reached ``budget`` steps
    (also put in ``means`` when given)."""
    lines = ["| task | seed | agent steps reached | return at last eval | wall time (h) | published SAC / TD-MPC2 @100k |",
             "|---|---|---|---|---|---|"]
    finished: dict[str, list[float]] = {}
    for run in sorted(p for p in root.iterdir() if (p / "metrics" / "eval.csv").exists()):
        task, _, seed = run.name.rpartition("_s")
        rows = list(csv.DictReader((run / "metrics" / "eval.csv").open()))
        if not rows:
            continue
        last = rows[-1]
        pub = PUBLISHED.get(task, {})
        lines.append(f"| {task} | {seed} | {int(float(last['step']))} | {float(last['return']):.0f} | "
                     f"{float(last['wall_s']) / 3600:.2f} | {pub.get('sac', '?')} / {pub.get('tdmpc2', '?')} |")
        if int(float(last["step"])) >= budget:
            finished.setdefault(task, []).append(float(last["return"]))
    for task, returns in finished.items():
        if means is not None:
            means[task] = float(np.mean(returns))
        pub = PUBLISHED.get(task, {})
        lines.append(f"| **{task}** | **mean of {len(returns)}** | {budget} | **{np.mean(returns):.0f} ± "
                     f"{np.std(returns):.0f}** | | {pub.get('sac', '?')} / {pub.get('tdmpc2', '?')} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="cartpole_swingup", choices=sorted(PUBLISHED))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=100_000, help="agent steps (action repeat 2)")
    parser.add_argument("--seed-steps", type=int, default=4_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--utd", type=int, default=1)
    parser.add_argument("--lr", type=float, default=3e-4)
    parser.add_argument("--num-critics", type=int, default=2)
    parser.add_argument("--eval-every", type=int, default=10_000)
    parser.add_argument("--update-dtype", default="float32", choices=["float32", "bfloat16"],
                        help="matmul precision of the updates (bfloat16: mixed precision)")
    parser.add_argument("--out", default="runs/bench/sac_dmc")
    parser.add_argument("--resume", action="store_true")
    parser.add_argument("--summary", metavar="DIR", help="print the results table of the runs under DIR")
    args = parser.parse_args()
    if args.summary:
        means: dict[str, float] = {}
        print(summarize(Path(args.summary), means=means))
        for task, mean in means.items():  # aim: at least published SAC at 100k agent steps
            print_result(f"sac_dmc_return_{task}_100k", mean, published_aim(task, 100_000))
        return 0
    summary = run_seed(args)
    print(json.dumps(summary, indent=2))
    print_result(f"sac_dmc_return_{args.task}_s{args.seed}", float(summary["final_return"]),
                 published_aim(args.task, summary["steps"]))
    return 0


def published_aim(task: str, steps: int) -> str:
    """``>=`` published SAC's return at 100k agent steps, for runs that reached them; ``-`` otherwise."""
    sac = PUBLISHED.get(task, {}).get("sac")
    return f">={sac}" if sac is not None and steps >= 100_000 else "-"


if __name__ == "__main__":
    sys.exit(main())
