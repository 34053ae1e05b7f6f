"""Students vs their teacher: camera + joint-state + instruction policies distilled (DAgger) from
the scripted experts, evaluated on paired seeds, nominal and under ``randomize=hard``.

Usage::

    python bench/distill_students.py --tasks reach,lift --episodes 100
    python bench/distill_students.py --multitask reach,push,lift,pick_place,stack --episodes 50
    python bench/distill_students.py --tasks reach --train "algo.rounds=4"   # extra train overrides

Per task: ``robot-rl train task=T algo=distill teacher=expert`` (timed), then ``robot-rl eval``
of the student on seeds S..S+N-1 (nominal and hard), and the teacher (the task's scripted
expert) on the same seeds and presets. The multi-task student is one ``task=[...]`` run,
evaluated per task. The output ends with one ``RESULT <name> <value> <aim>`` line per
figure. Figures (issue 12): student >= 95% of the teacher's nominal success,
>= 85% of its own nominal success under hard; multi-task >= 80% on every task.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("MUJOCO_GL", "egl")

import argparse  # noqa: E402
import json  # noqa: E402
import shlex  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout
from expert_success import run_episode  # noqa: E402  (bench/expert_success.py)
from results import print_result  # noqa: E402
from sim.experts import make_expert  # noqa: E402
from sim.loading import load  # noqa: E402

PRESETS = ("none", "hard")
SEED = 100_000


def cli(*argv: str) -> None:
    command = [sys.executable, "-m", "robot_rl.cli.main", *argv]
    print("$ robot-rl " + " ".join(shlex.quote(a) for a in argv), flush=True)
    if subprocess.call(command, cwd=ROOT):
        raise SystemExit(f"failed: robot-rl {' '.join(argv)}")


def teacher_success(task: str, preset: str, episodes: int) -> float:
    """The scripted expert on the student's evaluation seeds (success at any step, as eval counts it)."""
    env = load(task, "panda", preset, cameras=())
    try:
        expert = make_expert(env)
        return sum(run_episode(env, expert, SEED + i)[0] is not None for i in range(episodes)) / episodes
    finally:
        env.close()


def student_success(run: Path, task: str, preset: str, episodes: int, multitask: bool) -> float:
    out = run / "bench_eval" / f"{task}-{preset}"
    cli("eval", f"run={run}", f"randomize={preset}", f"episodes={episodes}", f"seed={SEED}", "video=0",
        f"out={out}", *([f"task={task}"] if multitask else []))
    return float(json.loads((out / "results.json").read_text())["success_rate"])


def train(run: Path, tasks: list[str], extra: list[str]) -> float:
    task = tasks[0] if len(tasks) == 1 else f"[{','.join(tasks)}]"
    start = time.perf_counter()
    cli("train", f"task={task}", "algo=distill", "teacher=expert", f"run={run}", "seed=0", *extra)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default="reach,lift", help="one student per task ('' for none)")
    parser.add_argument("--multitask", default="", help="one student over these tasks")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--train", default="", help="extra robot-rl train overrides, space-separated")
    parser.add_argument("--out", default=str(ROOT / "runs" / "bench" / "distill"))
    args = parser.parse_args()
    extra, out, n = shlex.split(args.train), Path(args.out), args.episodes
    rows, results = [], []
    for task in [t for t in args.tasks.split(",") if t]:
        run = out / task
        wall = train(run, [task], extra)
        teacher = {p: teacher_success(task, p, n) for p in PRESETS}
        student = {p: student_success(run, task, p, n, False) for p in PRESETS}
        rows.append((task, wall, teacher, student))
        results += [(f"distill_{task}_student_vs_teacher", student["none"] / max(teacher["none"], 1e-9), ">=0.95"),
                    (f"distill_{task}_hard_vs_nominal", student["hard"] / max(student["none"], 1e-9), ">=0.85")]
    tasks = [t for t in args.multitask.split(",") if t]
    if tasks:
        run = out / "multitask"
        wall = train(run, tasks, extra)
        for task in tasks:
            teacher = {"none": teacher_success(task, "none", n)}
            student = {"none": student_success(run, task, "none", n, True)}
            rows.append((f"{task} (multi-task)", wall, teacher, student))
            results.append((f"distill_multitask_{task}_success", student["none"], ">=0.8"))
    print(f"\n{'student':<24} {'train s':>8} {'teacher none':>13} {'student none':>13} {'teacher hard':>13} "
          f"{'student hard':>13}   ({n} paired episodes each)")
    for name, wall, teacher, student in rows:
        cells = [f"{d[p]:.0%}" if p in d else "-" for p in PRESETS for d in (teacher, student)]
        print(f"{name:<24} {wall:>8.0f} {cells[0]:>13} {cells[1]:>13} {cells[2]:>13} {cells[3]:>13}")
    for name, value, aim in results:
        print_result(name, float(value), aim)


if __name__ == "__main__":
    main()
