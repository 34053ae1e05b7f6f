"""Env steps/s against raw MuJoCo, and rendered frames/s per camera, for the tabletop tasks.

Usage: ``python bench/sim_throughput.py [--quick] [--tasks lift,stack] [--robot panda]``.

Table 1 times ``env.step`` with state observations (no cameras, privileged object obs on,
uniform random ee_delta actions, randomize=none) against ``mujoco.mj_step`` on the same
compiled ``env.model``/``env.data`` for ``env.n_substeps`` substeps per control step. The raw
run replays the env run's servo targets (``data.ctrl``) from the same seeded resets, so both
integrate the same trajectory with the same contacts. Resets are excluded from both step
rates; the last column is the env rate with resets included. Table 2 times
``FrameRenderer.render`` (scene update, draw, read-back, copy) per camera and size.

The process is pinned to one core and BLAS and Mesa's llvmpipe rasteriser are sized before
they load, so the figures are what one environment worker gets. Rates are per CPU-second of
the process (see ``Stopwatch``) and each is the best of a few repeats, so that other jobs on
a shared machine disturb them as little as they can; the last line says how contended it was.
"""

from __future__ import annotations

import os

# Before numpy and GL load: their thread pools are sized at import.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")
os.environ.setdefault("LP_NUM_THREADS", "1")  # one llvmpipe rasteriser thread, pinned with us
os.environ.setdefault("MUJOCO_GL", "egl")

import argparse  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout
from robot_rl.config import ConfigError  # noqa: E402
from sim.env import RobotEnv  # noqa: E402
from sim.loading import load  # noqa: E402
from sim.registry import names  # noqa: E402
from sim.render import FrameRenderer, RenderConfig  # noqa: E402
from results import print_result  # noqa: E402  (bench/results.py: the closing RESULT <name> <value> <aim> lines)

CAMERAS = ("front", "wrist")
RENDER_ROWS = (("fast", 84), ("fast", 128), ("fast", 224), ("pretty", 84))
OVERHEAD_TARGET = 1.5


@dataclass(frozen=True)
class Budget:
    steps: int  # control steps per repeat, state table
    frames: int  # frames per repeat and camera, fast profile (pretty gets a quarter)
    repeats: int


FULL, QUICK = Budget(steps=2000, frames=300, repeats=3), Budget(steps=200, frames=40, repeats=1)


class Stopwatch:
    """Process CPU time (every thread, the llvmpipe rasteriser's too) and wall time, summed over laps.

    Rates use CPU time: pinned to one core, it is the wall time this process would take with
    the core to itself, so other jobs on a shared machine do not count against the figures.
    """

    total_cpu_s = 0.0  # over every watch, for the wall/CPU line at the end
    total_wall_s = 0.0

    def __init__(self) -> None:
        self.cpu_s = self.wall_s = 0.0
        self._cpu = self._wall = 0.0

    def start(self) -> None:
        self._cpu, self._wall = time.process_time(), time.perf_counter()

    def stop(self) -> None:
        cpu, wall = time.process_time() - self._cpu, time.perf_counter() - self._wall
        self.cpu_s += cpu
        self.wall_s += wall
        Stopwatch.total_cpu_s += cpu
        Stopwatch.total_wall_s += wall


def run_env(env: RobotEnv, steps: int, rng: np.random.Generator) -> tuple[Stopwatch, Stopwatch, list]:
    """Random-action control steps, resetting at episode ends.

    Returns the step and reset stopwatches and the run as (seed, servo targets per step) episodes.
    """
    step_watch, reset_watch, episodes = Stopwatch(), Stopwatch(), []
    actions = rng.uniform(-1, 1, (steps, *env.action_space.shape)).astype(np.float32)
    seed, done = 0, True
    for action in actions:
        if done:
            reset_watch.start()
            env.reset(seed=seed)
            reset_watch.stop()
            episodes.append((seed, []))
            seed += 1
        step_watch.start()
        _, _, terminated, truncated, _ = env.step(action)
        step_watch.stop()
        episodes[-1][1].append(env.data.ctrl.copy())
        done = terminated or truncated
    return step_watch, reset_watch, [(s, np.array(ctrls)) for s, ctrls in episodes]


def run_raw(env: RobotEnv, episodes: list[tuple[int, np.ndarray]]) -> Stopwatch:
    """``mj_step`` replaying the recorded servo targets from the same resets, timed per episode."""
    model, data, watch = env.model, env.data, Stopwatch()
    for seed, ctrls in episodes:
        env.reset(seed=seed)
        watch.start()
        for ctrl in ctrls:
            data.ctrl[:] = ctrl
            mujoco.mj_step(model, data, nstep=env.n_substeps)
        watch.stop()
    return watch


def state_row(task: str, robot: str, budget: Budget) -> dict[str, float]:
    """Best-of-repeats env and raw rates for one task; env and raw runs interleave."""
    env = load(task, robot, "none", cameras=(), privileged=True)
    try:
        env_rates, raw_rates, all_in_rates = [], [], []
        for repeat in range(budget.repeats):
            step_watch, reset_watch, episodes = run_env(env, budget.steps, np.random.default_rng(repeat))
            env_rates.append(budget.steps / step_watch.cpu_s)
            all_in_rates.append(budget.steps / (step_watch.cpu_s + reset_watch.cpu_s))
            raw_rates.append(budget.steps / run_raw(env, episodes).cpu_s)
        env_rate, raw_rate = max(env_rates), max(raw_rates)
        return {"substeps": env.n_substeps, "raw": raw_rate, "env": env_rate,
                "overhead": raw_rate / env_rate, "all_in": max(all_in_rates)}
    finally:
        env.close()


def frames_per_s(env: RobotEnv, renderer: FrameRenderer, camera: str, frames: int, repeats: int) -> float:
    """Best-of-repeats frames/s of one camera through ``renderer``."""
    env.render_camera(camera, renderer)  # warm up: shader compile, first upload
    rates = []
    for _ in range(repeats):
        watch = Stopwatch()
        watch.start()
        for _ in range(frames):
            env.render_camera(camera, renderer)
        watch.stop()
        rates.append(frames / watch.cpu_s)
    return max(rates)


def robot_cameras(env: RobotEnv) -> tuple[str, ...]:
    """The cameras of CAMERAS that ``env``'s robot has; says which are missing and why."""
    present = []
    for camera in CAMERAS:
        try:
            env.render_camera(camera, env.renderer)
            present.append(camera)
        except ValueError as error:  # e.g. a robot config that has no wrist camera yet
            print(f"  {camera} camera skipped: {error}")
    return tuple(present)


def render_rows(task: str, robot: str, budget: Budget) -> list[tuple[str, int, dict[str, float]]]:
    """Frames/s per camera for each (profile, size), in a mid-episode pose of ``task``."""
    env = load(task, robot, "none", cameras=())
    try:
        env.reset(seed=0)
        for action in np.random.default_rng(0).uniform(-0.5, 0.5, (10, *env.action_space.shape)):
            env.step(action.astype(np.float32))
        cameras = robot_cameras(env)
        env.close()  # frees the probe renderer; the env stays usable
        rows = []
        for profile, size in RENDER_ROWS:
            frames = budget.frames if profile == "fast" else max(budget.frames // 4, 10)
            renderer = FrameRenderer(env.model, RenderConfig(size, size, profile))
            try:
                rates = {c: frames_per_s(env, renderer, c, frames, budget.repeats) for c in cameras}
            finally:
                renderer.close()
            rows.append((profile, size, rates))
        return rows
    finally:
        env.close()


def gl_renderer_name() -> str:
    """The GL_RENDERER string of a throwaway context, e.g. ``llvmpipe (LLVM 15.0.6, 256 bits)``."""
    try:
        from OpenGL import GL

        context = mujoco.GLContext(16, 16)
        context.make_current()
        name = GL.glGetString(GL.GL_RENDERER).decode()
        context.free()
        return name
    except Exception as error:  # noqa: BLE001 - the name is a label, not a requirement
        return f"unknown ({type(error).__name__})"


def print_header(args: argparse.Namespace, budget: Budget) -> None:
    env_vars = " ".join(f"{v}={os.environ[v]}" for v in ("MUJOCO_GL", "LP_NUM_THREADS", "OMP_NUM_THREADS"))
    print(f"robot {args.robot}, one core (cpu {args.core}), {env_vars}, mujoco {mujoco.__version__}")
    print(f"GL renderer: {gl_renderer_name()} (LP_NUM_THREADS={os.environ['LP_NUM_THREADS']}: "
          f"one rasteriser thread, pinned to the same core)")
    print(f"rates per CPU-second of this process (all threads, one core), best of {budget.repeats} repeat(s); "
          f"load average at start {os.getloadavg()[0]:.2f}")


def print_state_table(tasks: list[str], robot: str, budget: Budget) -> dict[str, float]:
    """Print the state table; return each task's overhead."""
    print(f"\nstate obs, random actions, {budget.steps} control steps per repeat; "
          "resets excluded from env and raw steps/s, included in the last column")
    print(f"{'task':<11} {'substeps':>8} {'raw steps/s':>12} {'env steps/s':>12} {'overhead':>9} "
          f"{'env ms/step':>12} {'env+reset steps/s':>18}")
    overheads = {}
    for task in tasks:
        r = state_row(task, robot, budget)
        overheads[task] = r["overhead"]
        flag = "" if r["overhead"] <= OVERHEAD_TARGET else "  > target"
        print(f"{task:<11} {r['substeps']:>8} {r['raw']:>12.0f} {r['env']:>12.0f} {r['overhead']:>8.2f}x "
              f"{1000 / r['env']:>12.2f} {r['all_in']:>18.0f}{flag}", flush=True)
    return overheads


def print_render_table(tasks: list[str], robot: str, budget: Budget) -> dict[tuple, float]:
    """Print the render table; return frames/s by (task, profile, size, camera)."""
    fps_by = {}
    print(f"\nrendered frames/s per camera, {budget.frames} frames per repeat (pretty: a quarter)")
    print(f"{'task':<11} {'profile':<7} {'px':>4} {'front fps':>10} {'wrist fps':>10}")
    for task in tasks:
        for profile, size, rates in render_rows(task, robot, budget):
            fps = "".join(f" {rates[c]:>10.0f}" if c in rates else f" {'n/a':>10}" for c in CAMERAS)
            print(f"{task:<11} {profile:<7} {size:>4}{fps}", flush=True)
            fps_by.update({(task, profile, size, c): rate for c, rate in rates.items()})
    return fps_by


def print_results(overheads: dict[str, float], fps_by: dict[tuple, float]) -> None:
    """RESULT lines: each task's env overhead (aim <= 1.5x) and fast-profile fps (aim >= 500 at 84 px)."""
    for task, overhead in overheads.items():
        print_result(f"sim_throughput_overhead_{task}", overhead, f"<={OVERHEAD_TARGET:g}")
    for (task, profile, size, camera), fps in fps_by.items():
        if profile == "fast" and size in (84, 224):
            print_result(f"sim_throughput_fps_{task}_{camera}_{size}px", fps, ">=500" if size == 84 else "-")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(names("task")), help="comma-separated task names")
    parser.add_argument("--robot", default="panda")
    parser.add_argument("--quick", action="store_true", help="a small budget, one repeat: a smoke run")
    parser.add_argument("--core", type=int, default=0, help="CPU core to pin to")
    parser.add_argument("--skip-render", action="store_true", help="state table only")
    args = parser.parse_args()
    args.tasks = [t for t in args.tasks.split(",") if t]
    unknown = sorted(set(args.tasks) - set(names("task")))
    if unknown:
        parser.error(f"--tasks has unknown tasks {unknown}; choose from {names('task')}.")
    if args.core not in os.sched_getaffinity(0):
        parser.error(f"--core {args.core} is not available; this process may use {sorted(os.sched_getaffinity(0))}.")
    return args


def main() -> None:
    """Pin to one core, print the state table, then the render table."""
    args = parse_args()
    os.sched_setaffinity(0, {args.core})  # before any GL context: llvmpipe threads inherit it
    budget = QUICK if args.quick else FULL
    try:
        print_header(args, budget)
        overheads = print_state_table(args.tasks, args.robot, budget)
        fps_by = {} if args.skip_render else print_render_table(args.tasks, args.robot, budget)
        print(f"\nwall time / CPU time over all timed laps: {Stopwatch.total_wall_s / Stopwatch.total_cpu_s:.2f} "
              "(1.00 = the core was ours alone)")
        print_results(overheads, fps_by)
    except ConfigError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
