"""Sim-to-real fine-tuning on the sim bridge: a distilled student, fine-tuned by SAC on the robot
(``robot-rl train env=ros ros.encoder=student``) under the ``hard`` preset's dynamics
(``randomize=hard_dynamics``: its masses, friction, damping, gains, latency and noise, nothing
visual; ``--randomize hard`` adds its cameras and lights), success before and after on the same
seeds. Prints a table, then ``RESULT`` lines.

    python bench/robot_finetune.py --task lift                       # distils the student first (~10 min)
    python bench/robot_finetune.py --task lift --student runs/<distill run> --steps 6000

The student is ``robot-rl train algo=distill teacher=expert`` (front + wrist, 32 px, the
project's distillation recipe) unless ``--student`` names one. "Before" is the student acting on
the bridge (``train.total_steps=1``: one step, no update); "after" is the same run continued for
``--steps`` env steps of SAC whose frozen encoder and initial actor are the student's. Both
evaluate ``--episodes`` deterministic episodes on the bridge seeded alike (paired), judged by the
bridge's ground truth; the reward is the bridge's ground truth too (``reward=gt``; a learned
reward needs a model trained at the student's image size).

Until 2026-11-30 (session 15) the bridge applied ``hard``'s action noise to its 100 Hz absolute
joint targets (about 0.13 rad per physics step instead of 2 mm of hand motion per policy step):
the arm shook, the safety filter faulted, and this bench needed a tracking tolerance of 0.3 rad.
The bridge now applies latency and noise to the commands it receives, at the policy's rate
(``Randomizer.hand_over_actuation``), and the default safety settings hold.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from results import print_result  # noqa: E402 - bench/results.py


def train(overrides: list[str], log: Path) -> float:
    started = time.perf_counter()
    with open(log, "w") as out:
        code = subprocess.run([sys.executable, "-m", "robot_rl.cli.main", "train", *overrides], cwd=ROOT, stdout=out,
                              stderr=subprocess.STDOUT).returncode
    if code != 0:
        raise SystemExit(f"robot-rl train {' '.join(overrides[:4])} ... exited {code}; see {log}")
    return time.perf_counter() - started


def final_eval(run: Path) -> dict:
    with open(run / "metrics" / "eval.csv", newline="") as f:
        row = list(csv.DictReader(f))[-1]
    return {"truth": float(row.get("task_success_rate") or "nan"), "return": float(row["return"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", default="lift")
    parser.add_argument("--student", default=None, help="a distillation run directory (default: distil one)")
    parser.add_argument("--distill", nargs="*", default=["env.image_size=32", "algo.rounds=12",
                                                          "algo.episodes_per_round=20", "algo.updates_per_round=400"])
    parser.add_argument("--steps", type=int, default=6000, help="env steps of fine-tuning on the bridge")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--randomize", default="hard_dynamics")
    parser.add_argument("--seeds", default="0,1")
    parser.add_argument("--out", default=None)
    parser.add_argument("--extra", nargs="*", default=[],
                        help="more overrides of both runs, e.g. ros.safety.tracking_tolerance_rad=0.1")
    args = parser.parse_args()
    out = Path(args.out or tempfile.mkdtemp(prefix="robot_finetune_"))
    out.mkdir(parents=True, exist_ok=True)
    student = Path(args.student) if args.student else out / "student"
    if not args.student:
        took = train([f"task={args.task}", "algo=distill", "teacher=expert", f"run={student}", "logger=csv",
                      "logger.progress_bar=false", "train.video_episodes=0", *args.distill], out / "student.log")
        print(f"distilled the student in {took / 60:.1f} min: {student}")
    common = [f"task={args.task}", "env=ros", "ros.sim=true", "reward=gt", "ros.encoder=student",
              f"ros.student={student}", f"randomize={args.randomize}", "algo.agent.num_critics=2",
              "algo.batch_size=128", "algo.seed_steps=500", "ros.actor_warmup=1000", "logger=csv",
              "logger.progress_bar=false", "train.checkpoint_every=0", "train.eval_every=0",
              f"train.eval_episodes={args.episodes}", *args.extra]
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        before = out / f"before_s{seed}"
        train([*common, f"seed={seed}", "train.total_steps=1", f"run={before}"], out / f"before_s{seed}.log")
        after = out / f"after_s{seed}"
        wall = train([*common, f"seed={seed}", f"train.total_steps={args.steps}", f"train.log_every={args.steps // 4}",
                      f"run={after}"], out / f"after_s{seed}.log")
        report = json.loads((after / "report.json").read_text())
        rows.append({"seed": seed, "before": final_eval(before), "after": final_eval(after), "wall_min": wall / 60,
                     "jitter_p99": report.get("command_jitter_ms", {}).get("p99", float("nan"))})

    print(f"\n{args.task}: student fine-tuned on the sim bridge under randomize={args.randomize}, "
          f"{args.steps} env steps, {args.episodes} paired episodes each; runs in {out}")
    print(f"{'seed':>4} {'before':>7} {'after':>7} {'return before':>13} {'return after':>12} {'wall min':>8} {'jitter p99':>10}")
    for r in rows:
        print(f"{r['seed']:>4} {r['before']['truth']:>7.2f} {r['after']['truth']:>7.2f} {r['before']['return']:>13.2f} "
              f"{r['after']['return']:>12.2f} {r['wall_min']:>8.1f} {r['jitter_p99']:>10.2f}")
    mean = lambda key: sum(r[key]["truth"] for r in rows) / len(rows)  # noqa: E731
    print_result(f"finetune_{args.task}_success_before", mean("before"), "-")
    print_result(f"finetune_{args.task}_success_after", mean("after"), "> before")


if __name__ == "__main__":
    main()
