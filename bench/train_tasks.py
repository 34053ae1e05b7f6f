"""Built-in tasks: success rate after a fixed budget for BC, SAC (ground truth), SAC (learned reward),
each with and without demonstrations; plus updates/s and env steps/s on this machine.

  python bench/train_tasks.py --task reach --variants bc,sac,sac_demos --steps 5000 --demos data/reach.zarr
  python bench/train_tasks.py --task lift --variants sac_vlm_demos --reward-model runs/reward/vlm ...
  python bench/train_tasks.py --task lift --variants sac_demos,cqn_as_demos --steps 10000 --demos data/lift.zarr
  python bench/train_tasks.py --task stack --variants sac,sac_privileged --steps 20000 --seed 0
  python bench/train_tasks.py --speed                     # updates/s and env steps/s
  python bench/train_tasks.py --summary runs/bench/tasks  # the results table

Every variant is an ordinary ``robot-rl train`` run (its command line is printed and kept in
the run's report), so any row can be reproduced or resumed with ``resume=true``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing
from results import print_result  # noqa: E402  (bench/results.py: the closing RESULT <name> <value> <aim> lines)

VARIANTS = {
    "bc": ["algo=bc", "data={demos}", "train.total_updates={bc_updates}"],
    "sac": ["algo=sac"],
    "sac_demos": ["algo=sac", "demos={demos}"],
    "sac_vlm": ["algo=sac", "reward=vlm", "reward.model_path={reward_model}"],
    "sac_vlm_demos": ["algo=sac", "reward=vlm", "reward.model_path={reward_model}", "demos={demos}"],
    "cqn_as_demos": ["algo=cqn_as", "demos={demos}"],
    "tdmpc2_demos": ["algo=tdmpc2", "demos={demos}"],
    # the privileged-action curriculum (sim/privilege.py): the assisted grasp at full strength for the first 30% of
    # the steps, annealed to none over the next 40%; the last 30% and every evaluation without it
    "sac_privileged": ["algo=sac", "privilege.grasp_assist=1.0", "privilege.hold_steps={hold}",
                       "privilege.anneal_steps={anneal}"],
    "sac_demos_privileged": ["algo=sac", "demos={demos}", "privilege.grasp_assist=1.0", "privilege.hold_steps={hold}",
                             "privilege.anneal_steps={anneal}"],
}
# Success aims (bench/RESULTS.md): reach >= 95% for BC, SAC and SAC + demos; lift >= 80% with 20 demos.
SUCCESS_AIMS = {("reach", "bc"): ">=0.95", ("reach", "sac"): ">=0.95", ("reach", "sac_demos"): ">=0.95",
                ("lift", "bc"): ">=0.8", ("lift", "sac_demos"): ">=0.8"}


def command(args, variant: str) -> list[str]:
    run = Path(args.out) / f"{args.task}_{variant}_s{args.seed}"
    fields = {"demos": args.demos, "reward_model": args.reward_model, "bc_updates": args.bc_updates,
              "hold": int(0.3 * args.steps), "anneal": int(0.4 * args.steps)}
    overrides = [o.format(**fields) for o in VARIANTS[variant]]
    # algo.* extras tune the RL variants; BC keeps its own algo file.
    extra = [e for e in args.extra if not (variant == "bc" and e.startswith("algo."))]
    return [sys.executable, "-m", "robot_rl.cli.main", "train", f"task={args.task}", f"seed={args.seed}", f"run={run}",
            f"train.total_steps={args.steps}", f"train.eval_every={args.eval_every}", "train.eval_episodes=20",
            "train.video_episodes=4", f"train.checkpoint_every={args.eval_every}", "baseline.bc=false",
            "logger=csv", "logger.progress_bar=false", *overrides, *extra]


def run_variants(args) -> None:
    finished = []
    for variant in args.variants.split(","):
        cmd = command(args, variant)
        print(" ".join(cmd[2:]), flush=True)
        start = time.perf_counter()
        code = subprocess.call(cmd)
        print(f"{variant}: exit {code} after {time.perf_counter() - start:.0f} s", flush=True)
        if code == 0:
            finished.append((variant, Path(args.out) / f"{args.task}_{variant}_s{args.seed}" / "report.json"))
    for variant, report_path in finished:  # the success rate each run's final evaluation measured
        if report_path.exists():
            success = json.loads(report_path.read_text())["eval"]["success_rate"]
            print_result(f"train_tasks_success_{args.task}_{variant}_s{args.seed}", float(success),
                         SUCCESS_AIMS.get((args.task, variant), "-"))


def summarize(root: Path, rows: list[tuple[str, float, str]] | None = None) -> str:
    """The results table; each row's (RESULT name, success rate, aim) also goes in ``rows`` when given."""
    lines = ["| task | variant | seed | budget | success rate (20 eps) | return | wall (min) |", "|---|---|---|---|---|---|---|"]
    for report_path in sorted(root.glob("*/report.json")):
        r = json.loads(report_path.read_text())
        task = r["task"]  # from the report: task names hold underscores too (pick_place)
        variant = report_path.parent.name.removeprefix(f"{task}_").rsplit("_s", 1)[0]
        budget = f"{r['updates']} updates" if r["algo"] in ("bc", "iql") else f"{r['env_steps']} env steps"
        lines.append(f"| {task} | {variant} | {r['seed']} | {budget} | {r['eval']['success_rate']:.2f} | "
                     f"{r['eval']['return']:.1f} | {(r['wall_s'] or 0) / 60:.1f} |")
        if rows is not None:
            rows.append((f"train_tasks_success_{task}_{variant}_s{r['seed']}", float(r["eval"]["success_rate"]),
                         SUCCESS_AIMS.get((task, variant), "-")))
    return "\n".join(lines)


def speed() -> None:
    """Updates/s of each algorithm's update and env steps/s of the sim, one torch thread.

    Reported as CPU time per call (the figure for one free core, independent of other load on a
    shared machine) and as wall time with the load average it was taken at."""
    import numpy as np
    import torch

    import sim
    from robot_rl.algos import drq, sac
    from robot_rl.algos.networks import ObsSpec
    from robot_rl.train.replay import ReplayBuffer, batch_to_torch

    torch.set_num_threads(1)
    update_ms = {}
    cases = [("sac state (41-d obs), 2 critics", sac.build, {"obs/state": ObsSpec((41,), "float32")}, {"num_critics": 2}, 256),
             ("sac state (41-d obs), 4 critics", sac.build, {"obs/state": ObsSpec((41,), "float32")}, {"num_critics": 4}, 256),
             ("drq 84px", drq.build, {"obs/images/front": ObsSpec((84, 84, 3), "uint8")}, {}, 256),
             ("drq 64px batch 64", drq.build, {"obs/images/front": ObsSpec((64, 64, 3), "uint8")}, {}, 64),
             ("drq 64px batch 64 frozen encoder", drq.build, {"obs/images/front": ObsSpec((64, 64, 3), "uint8")},
              {"freeze_encoder": True}, 64)]
    for name, build, specs, params, batch_size in cases:
        agent = build(specs, 5, params, 0)
        buffer = ReplayBuffer(specs, 5, 512)
        rng = np.random.default_rng(0)
        obs = {k: rng.integers(0, 255, (512, *s.shape)).astype(s.dtype) for k, s in specs.items()}
        buffer.add(obs, rng.uniform(-1, 1, (512, 5)), rng.random(512), obs, np.zeros(512, bool))
        agent.update(batch_to_torch(buffer.sample(batch_size)))
        n, start, cpu = 0, time.perf_counter(), time.process_time()
        while time.process_time() - cpu < 5 and n < 300:
            agent.update(batch_to_torch(buffer.sample(batch_size)))
            n += 1
        cpu_s = time.process_time() - cpu
        report(f"update {name}, batch {batch_size}", n, time.perf_counter() - start, cpu_s)
        update_ms[name] = cpu_s / n * 1000
    for task, cameras in (("reach", []), ("lift", []), ("lift", ["front"])):
        env = sim.load(task, "panda", "none", cameras=cameras, image_size=84)
        env.reset(seed=0)
        n, start, cpu = 0, time.perf_counter(), time.process_time()
        while time.process_time() - cpu < 3:
            _, _, term, trunc, _ = env.step(env.action_space.sample())
            n += 1
            if term or trunc:
                env.reset()
        report(f"env step {task} cameras={cameras}", n, time.perf_counter() - start, time.process_time() - cpu)
        env.close()
    for name, ms in update_ms.items():  # CPU ms per update: the figure for one free core
        slug = "_".join(name.replace("(41-d obs),", "").replace("batch ", "b").split())
        print_result(f"train_tasks_update_ms_{slug}", ms)


def report(name: str, n: int, wall_s: float, cpu_s: float) -> None:
    """CPU time per call is what one free core would take; wall time includes waiting for a shared CPU."""
    load = os.getloadavg()[0]
    print(f"{name}: {cpu_s / n * 1000:.1f} ms CPU ({n / cpu_s:.1f}/s on one free core), "
          f"{wall_s / n * 1000:.1f} ms wall ({n / wall_s:.1f}/s at load {load:.1f})", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="reach")
    parser.add_argument("--variants", default="bc,sac,sac_demos", help=f"comma list of {', '.join(VARIANTS)}")
    parser.add_argument("--steps", type=int, default=10_000, help="env steps of each SAC variant")
    parser.add_argument("--bc-updates", type=int, default=3_000)
    parser.add_argument("--eval-every", type=int, default=2_500)
    parser.add_argument("--demos", default="data/reach_demos.zarr")
    parser.add_argument("--reward-model", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="runs/bench/tasks")
    parser.add_argument("--speed", action="store_true")
    parser.add_argument("--summary", metavar="DIR")
    parser.add_argument("extra", nargs="*", help="more key=value overrides for every run")
    args = parser.parse_args()
    if args.summary:
        rows: list[tuple[str, float, str]] = []
        print(summarize(Path(args.summary), rows))
        for name, success, aim in rows:
            print_result(name, success, aim)
    elif args.speed:
        speed()
    else:
        run_variants(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
