"""Actor/learner on Ray against the single-process trainer, on this machine. Prints a table, then
one ``RESULT <name> <value> <aim>`` line per figure.

    python bench/ray_scaling.py                        # reach, 2 actors vs 1 process, 2 seeds
    python bench/ray_scaling.py --actors 14 --seeds 0 --steps 20000 --train device=cuda   # 16 cores + a GPU, < 8 min

Each run is ``robot-rl train task=reach`` in its own process, the same env steps, UTD, batch and
networks; the only difference is ``ray.actors=N`` against ``train.num_envs=1``.

1. **Training** (SAC, the default recipe: UTD 2, batch 256): env steps per second of the
   training loop (evaluation time left out, from ``eval.csv``'s ``duration_s``), the success
   curve against env steps, and the wall time to the first evaluation at >= 90% success.
2. **Learner update rate**: the learner's time per update beside its actors (``ray/update_ms``)
   against the single-process trainer's (its update time is measured the same way, from the
   same agent and batch, in this process with nothing beside it); and the transfer per 1k
   transitions (size and learner time to fetch).
3. **Collection only** (the seed phase, no updates): env steps per second of N actors against
   one process, the ceiling that actors give when collection, not the learner, is the cost.

Aims (issue 15): >= 1.6x env steps/s with 2 actors, the success curve within noise, learner
update rate within 10% of alone.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from results import print_result  # noqa: E402 - bench/results.py

COMMON = ["task=reach", "algo=sac", "baseline.bc=false", "logger=csv", "logger.progress_bar=false",
          "train.video_episodes=0", "train.checkpoint_every=0"]


def read_csv(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def train(run: Path, extra: list[str]) -> float:
    """One training run in its own process; returns its wall time."""
    start = time.perf_counter()
    env = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-m", "robot_rl.cli.main", "train", *COMMON, *extra, f"run={run}"], check=True,
                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def figures(run: Path, eval_every: int) -> dict:
    """Throughput without evaluation time, the success curve, time to 90%, learner and transfer figures."""
    train_rows, evals = read_csv(run / "metrics" / "train.csv"), read_csv(run / "metrics" / "eval.csv")
    ray_rows = read_csv(run / "metrics" / "ray.csv")
    eval_s = sum(float(r.get("duration_s") or 0) for r in evals[:-1])  # the final evaluation follows the loop
    last = train_rows[-1]
    # actors commit whole episodes, so an evaluation can fall a few steps past its multiple
    curve = [(int(r["step"]) // eval_every * eval_every, float(r["success_rate"])) for r in evals]
    to_90 = next((float(r["wall_s"]) - sum(float(e.get("duration_s") or 0) for e in evals[:i])
                  for i, r in enumerate(evals) if float(r["success_rate"]) >= 0.9), None)
    out = {"steps": int(last["env_steps"]), "steps_per_s": int(last["env_steps"]) / (float(last["wall_s"]) - eval_s),
           "curve": curve, "to_90_s": to_90}
    if ray_rows:
        def mean(key):
            values = [float(r[key]) for r in ray_rows if r.get(key)]
            return float(np.mean(values)) if values else float("nan")
        out.update(update_ms=mean("update_ms"), kb_per_1k=mean("transfer_kb_per_1k_steps"),
                   ms_per_1k=mean("transfer_ms_per_1k_steps"), lag=mean("policy_lag_mean"))
    return out


def update_ms_alone(device: str = "auto", batch: int = 256, updates: int = 300) -> float:
    """The default SAC agent's time per update on a reach-sized batch, one thread, nothing beside it."""
    import torch

    torch.set_num_threads(1)
    from omegaconf import OmegaConf

    from robot_rl.algos.networks import ObsSpec
    from robot_rl.config import load_group
    from robot_rl.train.build import build_agent
    from robot_rl.train.replay import ReplayBuffer, batch_to_torch

    import sim

    env = sim.load("reach", "panda", "none", cameras=[])
    specs = {k: ObsSpec(tuple(env.observation_space[k].shape), str(env.observation_space[k].dtype))
             for k in ("obs/state", "obs/object")}
    action_dim = env.action_space.shape[0]
    env.close()
    from robot_rl.train.device import resolve_device

    agent = build_agent(OmegaConf.create(load_group("algo", "sac")), specs, action_dim, 0).to(resolve_device(device))
    rng = np.random.default_rng(0)
    buffer = ReplayBuffer(specs, action_dim, 5000)
    obs = {k: rng.normal(size=(5000, *s.shape)).astype(np.float32) for k, s in specs.items()}
    buffer.add(obs, rng.uniform(-1, 1, (5000, action_dim)).astype(np.float32), rng.random(5000).astype(np.float32), obs,
               np.zeros(5000, bool))
    for i in range(20):
        agent.update(batch_to_torch(buffer.sample(batch), agent.device), update_actor=i % 2 == 1)
    start = time.perf_counter()
    for i in range(updates):
        agent.update(batch_to_torch(buffer.sample(batch), agent.device), update_actor=i % 2 == 1)
    if agent.device.type == "cuda":
        torch.cuda.synchronize()
    return 1000 * (time.perf_counter() - start) / updates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--steps", type=int, default=4000, help="env steps per training run")
    parser.add_argument("--eval-every", type=int, default=500)
    parser.add_argument("--collect-steps", type=int, default=3000, help="env steps of the collection-only runs")
    parser.add_argument("--train", default="", help="more overrides for every run, e.g. 'device=cuda'")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="ray_scaling_"))
    ways = {"1 process": ["train.num_envs=1"], f"{args.actors} actors": [f"ray.actors={args.actors}"]}
    budget = [f"train.total_steps={args.steps}", f"train.eval_every={args.eval_every}", "train.eval_episodes=10",
              *args.train.split()]
    runs: dict[str, list[dict]] = {w: [] for w in ways}
    for seed in args.seeds:
        for way, extra in ways.items():
            run = out / f"{way.replace(' ', '_')}_s{seed}"
            wall = train(run, [*extra, *budget, f"seed={seed}"])
            runs[way].append({**figures(run, args.eval_every), "wall": wall})
            print(f"trained {way} seed {seed}: {runs[way][-1]['steps_per_s']:.1f} env steps/s, "
                  f"to 90%: {runs[way][-1]['to_90_s']}", flush=True)
    collect = {}
    for way, extra in ways.items():
        run = out / f"collect_{way.replace(' ', '_')}"
        train(run, [*extra, f"train.total_steps={args.collect_steps}", f"algo.seed_steps={args.collect_steps}",
                    "train.eval_every=0", "train.eval_episodes=1", "train.log_every=500", *args.train.split()])
        collect[way] = figures(run, args.eval_every)["steps_per_s"]
    alone = update_ms_alone(next((t.split("=", 1)[1] for t in args.train.split() if t.startswith("device=")), "auto"))

    single, multi = (runs[w] for w in ways)
    names = list(ways)
    print(f"\nreach, SAC (UTD 2, batch 256), {args.steps} env steps, seeds {args.seeds}, {os.cpu_count()} cores\n")
    print("| | " + " | ".join(names) + " |\n|---|---|---|")
    rate = [float(np.mean([r["steps_per_s"] for r in runs[w]])) for w in names]
    print(f"| env steps/s, training (eval time left out) | {rate[0]:.1f} | {rate[1]:.1f} |")
    to90 = [[r["to_90_s"] for r in runs[w]] for w in names]
    print(f"| wall s to 90% eval success, per seed | {to90[0]} | {to90[1]} |")
    steps = sorted({s for r in single + multi for s, _ in r["curve"]})
    for step in steps:
        cells = []
        for w in names:
            values = [dict(r["curve"]).get(step) for r in runs[w]]
            values = [v for v in values if v is not None]
            cells.append(f"{np.mean(values):.2f} ({', '.join(f'{v:.1f}' for v in values)})" if values else "")
        print(f"| success at {step} steps (mean, per seed) | {cells[0]} | {cells[1]} |")
    print(f"| env steps/s, collection only | {collect[names[0]]:.0f} | {collect[names[1]]:.0f} |")
    update = float(np.mean([r["update_ms"] for r in multi]))
    print(f"| learner ms per update | {alone:.2f} (alone) | {update:.2f} (beside {args.actors} actors) |")
    print(f"| transfer per 1k transitions | | {np.mean([r['kb_per_1k'] for r in multi]):.0f} KB, "
          f"{np.mean([r['ms_per_1k'] for r in multi]):.1f} ms of learner time |")
    print(f"| policy lag (updates) | | {np.mean([r['lag'] for r in multi]):.0f} |")
    print(f"\nruns in {out}\n")
    final = [float(np.mean([r["curve"][-1][1] for r in runs[w]])) for w in names]
    print_result("ray_env_steps_per_s_speedup", rate[1] / rate[0], ">=1.6")
    print_result("ray_collection_only_speedup", collect[names[1]] / collect[names[0]], "-")
    print_result("ray_final_success_single", final[0], "-")
    print_result("ray_final_success_actors", final[1], "within noise")
    print_result("ray_learner_update_rate_ratio", alone / update, ">=0.9")
    print_result("ray_transfer_ms_per_1k", float(np.mean([r["ms_per_1k"] for r in multi])), "-")
    done = [[t for t in to90[i] if t is not None] for i in range(2)]
    if all(done):
        print_result("ray_wall_to_90_ratio", float(np.mean(done[1]) / np.mean(done[0])), "-")


if __name__ == "__main__":
    main()
