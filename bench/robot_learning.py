"""Learning on the robot, with the MuJoCo sim bridge as the robot in real time (20 Hz). Prints a
table, then one ``RESULT <name> <value> <aim>`` line per figure.

    python bench/robot_learning.py --reward-model runs/pipeline/reach-default/reward
    python bench/robot_learning.py --variants plain --steps 6000 --eval-every 2000   # a quick look

Each variant is ``robot-rl train task=reach env=ros ros.sim=true reward=vlm`` in its own process:
SAC from scratch on the learned reward (the reward model's features as the frozen encoder, plus
proprioception), the bridge as a separate process on a private DDS domain, everything in real
time. With ``--student DIR`` every variant reads the frames through a distilled student's encoder
instead (``ros.encoder=student ros.student_actor=false``: the sim-learned perception frozen, the
actor and critics from scratch; the student reads the reward model's frames resized to its own
size); ``student_encoder`` is ``plain`` that way. ``interventions`` adds the scripted operator
(``ros.intervention=scripted``, steering by the sim's ground truth) for the first
``--intervene-steps`` env steps, the way an operator helps the first episodes; learning starts
once the operator's steps fill a batch, while the operator still drives. ``interventions_bc`` also clones the operator: SAC's Q-filtered BC term on the
demonstration rows (``algo.agent.bc_weight``, 1 as for reach in the sim), meant to keep what the
operator showed once the operator lets go. Success is judged twice: by the reward model (what
the run itself sees) and by the bridge's ground truth (``task/success``, never the reward), on 20
deterministic episodes per evaluation.

Robot time is the run's wall time less its evaluations (``eval.csv``'s ``duration_s``): the time
the arm spent on training episodes, homing and resets. Aims (issue 16): >= 80% ground-truth
success within 20 minutes of robot time; how much sooner with interventions; command jitter
p99 <= 5 ms at 20 Hz while learning.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from results import print_result  # noqa: E402 - bench/results.py

# The learned reward as dense progress (no shaping): in the sim, SAC from scratch on reach reached 69% at 8k
# steps that way against 34% with the pipeline's shaped reward (README benchmarks).
COMMON = ["task=reach", "env=ros", "ros.sim=true", "reward=vlm", "reward.shaping=null", "env.reward=dense",
          "algo=sac", "algo.agent.num_critics=2",
          "algo.batch_size=128", "logger=csv", "logger.progress_bar=false", "train.checkpoint_every=0"]
AIM_SUCCESS, AIM_MINUTES, AIM_JITTER_MS = 0.8, 20.0, 5.0
VARIANTS = ("plain", "interventions", "interventions_bc", "student_encoder")


def read_csv(path: Path) -> list[dict]:
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def run_variant(name: str, args, out: Path) -> dict:
    run = out / name
    overrides = [*COMMON, f"reward.model_path={args.reward_model}", f"seed={args.seed}",
                 f"train.total_steps={args.steps}", f"train.eval_every={args.eval_every}",
                 f"train.eval_episodes={args.eval_episodes}", f"train.log_every={args.eval_every // 4}",
                 f"algo.seed_steps={args.seed_steps}", f"run={run}", *args.train]
    if name.startswith("interventions"):
        overrides += ["ros.intervention=scripted", f"ros.scripted_steps={args.intervene_steps}"]
    if name == "interventions_bc":
        overrides += [f"algo.agent.bc_weight={args.bc_weight}"]
    if args.student:  # a sim-trained student's perception, frozen; actor and critics from scratch
        overrides += ["ros.encoder=student", f"ros.student={args.student}", "ros.student_actor=false"]
    started = time.perf_counter()
    with open(out / f"{name}.log", "w") as log:
        code = subprocess.run([sys.executable, "-m", "robot_rl.cli.main", "train", *overrides], cwd=ROOT,
                              stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "MUJOCO_GL": "egl"}).returncode
    wall_s = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"{name}: robot-rl train exited {code}; see {out / f'{name}.log'}")
    evals = read_csv(run / "metrics" / "eval.csv")
    spent = 0.0
    curve = []
    for row in evals:
        spent += float(row["duration_s"])
        robot_min = (float(row["wall_s"]) - spent + float(row["duration_s"])) / 60  # before this evaluation
        curve.append({"step": int(float(row["step"])), "robot_min": robot_min,
                      "model_success": float(row["success_rate"]),
                      "truth_success": float(row.get("task_success_rate") or "nan")})
    report = json.loads((run / "report.json").read_text())
    train = read_csv(run / "metrics" / "train.csv")
    return {"name": name, "curve": curve, "jitter": report.get("command_jitter_ms", {}), "wall_s": wall_s,
            "effective_utd": float(train[-1].get("effective_utd", "nan")) if train else float("nan"),
            "interventions": sum(float(r.get("intervention_rate") or 0) for r in train) / max(1, len(train))}


def first_reaching(curve: list[dict], level: float) -> float | None:
    """Robot minutes at the first evaluation whose ground-truth success is >= level."""
    return next((c["robot_min"] for c in curve if c["truth_success"] >= level), None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reward-model", default=str(ROOT / "runs/pipeline/reach-default/reward"),
                        help="a reward model that knows reach (the default pipeline's)")
    parser.add_argument("--variants", default="plain,interventions", help=", ".join(VARIANTS))
    parser.add_argument("--student", default=None,
                        help="every variant reads the frames through this distilled student's frozen perception "
                             "(its image size the reward model's or smaller) instead of the reward model's features")
    parser.add_argument("--steps", type=int, default=20_000, help="env steps per variant")
    parser.add_argument("--eval-every", type=int, default=5_000)
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument("--seed-steps", type=int, default=1_000)
    parser.add_argument("--intervene-steps", type=int, default=1_000)
    parser.add_argument("--bc-weight", type=float, default=1.0,
                        help="interventions_bc: the weight of SAC's BC term on the operator's steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train", nargs="*", default=[], help="more train overrides")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    if not Path(args.reward_model).exists():
        raise SystemExit(f"no reward model at {args.reward_model}; run `robot-rl pipeline` first or pass --reward-model")
    unknown = [v for v in args.variants.split(",") if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"unknown variant {unknown[0]!r}; expected some of {', '.join(VARIANTS)}.")
    if "student_encoder" in args.variants.split(",") and not args.student:
        raise SystemExit("the student_encoder variant needs --student <run of robot-rl train algo=distill>")
    out = Path(args.out or tempfile.mkdtemp(prefix="robot_learning_"))
    out.mkdir(parents=True, exist_ok=True)
    results = [run_variant(v, args, out) for v in args.variants.split(",")]

    features = f"student {args.student}" if args.student else "the reward model's"
    print(f"\nreach from scratch on the sim bridge (20 Hz, real time), learned reward, seed {args.seed}, features: "
          f"{features}; runs in {out}")
    print(f"{'variant':<14} {'step':>6} {'robot min':>9} {'model success':>13} {'true success':>12}")
    for r in results:
        for c in r["curve"]:
            print(f"{r['name']:<14} {c['step']:>6} {c['robot_min']:>9.1f} {c['model_success']:>13.2f} "
                  f"{c['truth_success']:>12.2f}")
    print(f"\n{'variant':<14} {'jitter p50/p99 ms':>18} {'after tick p99 ms':>18} {'effective UTD':>13} {'wall min':>8}")
    for r in results:
        j = r["jitter"]
        print(f"{r['name']:<14} {j.get('p50', float('nan')):>8.2f}/{j.get('p99', float('nan')):<9.2f} "
              f"{j.get('after_tick_p99', float('nan')):>18.2f} {r['effective_utd']:>13.2f} {r['wall_s'] / 60:>8.1f}")
    for r in results:
        reached = first_reaching(r["curve"], AIM_SUCCESS)
        best = max((c["truth_success"] for c in r["curve"]), default=float("nan"))
        name = f"student_{r['name']}" if args.student and r["name"] != "student_encoder" else r["name"]
        print_result(f"robot_{name}_minutes_to_80pct", reached if reached is not None else float("nan"),
                     f"<= {AIM_MINUTES:g}")
        print_result(f"robot_{name}_best_true_success", best, f">= {AIM_SUCCESS:g}")
        print_result(f"robot_{name}_jitter_p99_ms", r["jitter"].get("p99", float("nan")), f"<= {AIM_JITTER_MS:g}")


if __name__ == "__main__":
    main()
