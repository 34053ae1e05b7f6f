"""The main job's cost and results: `robot-rl pipeline` from nothing, timed per stage.

  python bench/pipeline.py                          # default budget, task reach, fresh output dir
  python bench/pipeline.py --budget tiny
  python bench/pipeline.py --report runs/bench/pipeline/reach-default   # table of a finished run

Runs the pipeline with force=true in its own output directory (so nothing is skipped), then
prints the wall time of each stage, the total, the load average around the run, and what the
pipeline found (reward model grades, sim success nominal and hard, ROS 2 success and latency).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from results import print_result  # bench/results.py: the closing RESULT <name> <value> <aim> lines

ROOT = Path(__file__).resolve().parents[1]


def run(budget: str, task: str, out: Path, extra: list[str]) -> tuple[float, float, float]:
    load_before = os.getloadavg()[0]
    start = time.perf_counter()
    argv = [sys.executable, "-m", "robot_rl.cli.main", "pipeline", f"pipeline.budget={budget}", f"task={task}",
            f"out={out}", "force=true", *extra]
    print("$", " ".join(argv[2:]), flush=True)
    code = subprocess.call(argv, cwd=ROOT)
    wall_s = time.perf_counter() - start
    if code != 0:
        raise SystemExit(f"the pipeline exited with code {code}")
    return wall_s, load_before, os.getloadavg()[0]


def report(out: Path, wall_s: float | None = None, loads: tuple[float, float] | None = None) -> None:
    summary = json.loads((out / "summary.json").read_text())
    stages = json.loads((out / "pipeline.json").read_text())  # includes the report stage itself
    print(f"\npipeline {summary['task']} on {summary['robot']}, budget {summary['budget']}: {out}")
    if loads:
        print(f"machine: {os.cpu_count()} CPUs, load average {loads[0]:.1f} before, {loads[1]:.1f} after")
    print("\n| stage | wall time (s) |\n|---|---|")
    for name, entry in stages.items():
        print(f"| {name} | {entry.get('wall_s', '-')} |")
    total = wall_s if wall_s is not None else sum(float(e.get("wall_s", 0)) for e in stages.values())
    print(f"| **total** | **{total:.0f}** ({total / 60:.1f} min) |")
    r, t, e, ros = summary["reward"]["overall"], summary["train"], summary["eval"], summary["ros"]
    print("\n| result | value |\n|---|---|")
    print(f"| reward model: success AUROC / value order / counterfactual acc. | {r['success_auroc']:.3f} / "
          f"{r['value_order']:.3f} / {r['counterfactual_accuracy']:.3f} |")
    print(f"| SAC (learned reward + demos): env steps, updates, train wall | {t['env_steps']}, {t['updates']}, "
          f"{t['wall_s']:.0f} s |")
    print(f"| learned vs true progress on the policy's states (corr) | "
          f"{t['reward_agreement'].get('train/reward_progress_corr', float('nan')):.2f} |")
    if t.get("bc_baseline"):
        print(f"| BC on the same demos, success | {t['bc_baseline']['success_rate']:.0%} |")
    for preset, result in e.items():
        print(f"| sim success, randomize={preset} ({result['episodes']} episodes) | {result['success_rate']:.0%} |")
    print(f"| ROS 2 success ({ros['episodes']} episodes, {ros['episode_timeout_s']:g} s each) | {ros['success_rate']:.0%} |")
    print(f"| ROS 2 policy node latency p50 / p99 ({ros['backend']}) | {ros['latency_ms_p50']:.2f} / "
          f"{ros['latency_ms_p99']:.2f} ms |")
    print(f"| ROS 2 end-to-end (observer) p50 / p99 | {ros['e2e_ms_p50']:.2f} / {ros['e2e_ms_p99']:.2f} ms |")
    print_result("pipeline_wall_min", total / 60, "<=20min" if summary["budget"] == "default" else "-")
    for preset, entry in e.items():
        print_result(f"pipeline_sim_success_{preset}", entry["success_rate"])
    print_result("pipeline_ros_success", ros["success_rate"])
    print_result("pipeline_ros_latency_p99_ms", ros["latency_ms_p99"])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--budget", default="default")
    parser.add_argument("--task", default="reach")
    parser.add_argument("--out", default=None, help="default runs/bench/pipeline/<task>-<budget>")
    parser.add_argument("--report", metavar="DIR", help="only print the table of a finished run")
    parser.add_argument("extra", nargs="*", help="more key=value overrides for the pipeline")
    args = parser.parse_args()
    if args.report:
        report(Path(args.report))
        return 0
    out = Path(args.out or ROOT / "runs" / "bench" / "pipeline" / f"{args.task}-{args.budget}")
    wall_s, before, after = run(args.budget, args.task, out, args.extra)
    report(out, wall_s, (before, after))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
