"""Env steps/s against raw MuJoCo, where an env step's time goes, and rendered frames/s per camera.

Usage: ``python bench/sim_throughput.py [--quick] [--profile] [--tasks lift,stack]
[--robots panda,jaco] [--skip-render]``.

The state table times ``env.step`` with state observations (no cameras, privileged object obs
on, uniform random ee_delta actions, randomize=none) against ``mujoco.mj_step`` on the same
compiled ``env.model``/``env.data`` for ``env.n_substeps`` substeps per control step, for every
task and robot. Seeded episodes are recorded once, untimed; then env laps (the episode's
actions through ``env.step`` from the same seeded reset) and raw laps (its servo targets
``data.ctrl`` replayed through ``mj_step`` from the same reset) alternate episode by episode,
so both integrate the same trajectory with the same contacts and load changes hit both alike.
The overhead is env CPU time over raw CPU time, summed over the same laps. Resets are excluded
from both step rates; the last column is the env rate with resets included.

``--profile`` first prints where one env step's time goes: the median microseconds per step
of physics (``mj_step`` inside ``env.step``), action noise/latency plus the controller's IK,
the task's reward and success check, the robot-state and object observations, and the rest.

The render table times ``FrameRenderer.render`` (scene update, draw, read-back, copy) per
camera and size, for one robot. The results end with ``RESULT`` lines: fast-profile frames/s,
then ``env_overhead_<robot>_<task> <value> <=1.3``.

The process is pinned to one core and BLAS and Mesa's llvmpipe rasteriser are sized before
they load, so the figures are what one environment worker gets. Rates are per CPU-second of
the process (see ``Stopwatch``), so that other jobs on a shared machine disturb them as little
as they can; the last line says how contended it was.
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
OVERHEAD_TARGET = 1.3  # issue 18: env.step within 1.3x of raw mj_step, every task and robot


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


def record_episodes(env: RobotEnv, episodes: int, rng: np.random.Generator) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """Seeded random-action episodes as (seed, actions, servo targets after each step), untimed.

    The timed laps replay them: the env from the same seed and actions, raw MuJoCo from the same
    reset and servo targets, so both integrate the same trajectory with the same contacts.
    """
    recorded = []
    for seed in range(episodes):
        actions = rng.uniform(-1, 1, (env.episode_steps, *env.action_space.shape)).astype(np.float32)
        env.reset(seed=seed)
        ctrls = []
        for action in actions:
            env.step(action)
            ctrls.append(env.data.ctrl.copy())
        recorded.append((seed, actions, np.array(ctrls)))
    return recorded


def env_lap(env: RobotEnv, seed: int, actions: np.ndarray, watch: Stopwatch, reset_watch: Stopwatch) -> None:
    """One episode of ``env.step``; the reset is timed on its own watch."""
    reset_watch.start()
    env.reset(seed=seed)
    reset_watch.stop()
    watch.start()
    for action in actions:
        env.step(action)
    watch.stop()


def raw_lap(env: RobotEnv, seed: int, ctrls: np.ndarray, watch: Stopwatch) -> None:
    """The same episode as ``mj_step`` on ``env.model``/``env.data``, ``env.n_substeps`` per control step."""
    model, data, n_substeps = env.model, env.data, env.n_substeps
    env.reset(seed=seed)
    watch.start()
    for ctrl in ctrls:
        data.ctrl[:] = ctrl
        mujoco.mj_step(model, data, nstep=n_substeps)
    watch.stop()


def state_row(task: str, robot: str, budget: Budget) -> dict[str, float]:
    """Env and raw rates for one task and robot, from env and raw laps alternated episode by episode."""
    env = load(task, robot, "none", cameras=(), privileged=True)
    try:
        episodes = max(1, budget.steps // env.episode_steps)
        recorded = record_episodes(env, episodes, np.random.default_rng(0))
        env_watch, reset_watch, raw_watch = Stopwatch(), Stopwatch(), Stopwatch()
        for _ in range(budget.repeats):
            for seed, actions, ctrls in recorded:
                env_lap(env, seed, actions, env_watch, reset_watch)
                raw_lap(env, seed, ctrls, raw_watch)
        steps = budget.repeats * episodes * env.episode_steps
        return {"substeps": env.n_substeps, "raw": steps / raw_watch.cpu_s, "env": steps / env_watch.cpu_s,
                "overhead": env_watch.cpu_s / raw_watch.cpu_s, "all_in": steps / (env_watch.cpu_s + reset_watch.cpu_s)}
    finally:
        env.close()


class PartTimer:
    """Wall time of named parts of one ``env.step``, by wrapping the callables that do them.

    The wrappers replace attributes for the timer's lifetime (``with``) and put them back after;
    each costs a fraction of a microsecond, which lands in the step total and the ``other`` column.
    """

    def __init__(self, parts: list[tuple[object, str, str]]) -> None:
        self.parts, self.step_s, self._saved = parts, {}, []

    def __enter__(self) -> PartTimer:
        for owner, attr, part in self.parts:
            self._saved.append((owner, attr, owner.__dict__.get(attr, None)))
            setattr(owner, attr, self._timed(getattr(owner, attr), part))
        return self

    def __exit__(self, *_exc) -> None:
        for owner, attr, saved in reversed(self._saved):
            if saved is None:
                delattr(owner, attr)  # an instance attribute over a method: the method shows again
            else:
                setattr(owner, attr, saved)

    def _timed(self, inner, part: str):
        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                self.step_s[part] = self.step_s.get(part, 0.0) + time.perf_counter() - start
        return timed


def profile_row(task: str, robot: str, budget: Budget) -> dict[str, float]:
    """Median microseconds per control step of each part of ``env.step``, and of raw ``mj_step``."""
    env = load(task, robot, "none", cameras=(), privileged=True)
    try:
        recorded = record_episodes(env, max(1, budget.steps // env.episode_steps), np.random.default_rng(0))
        parts = [(mujoco, "mj_step", "physics"), (env.randomizer, "perturb_action", "action"),
                 (env.controller, "apply", "action"), (env.task, "evaluate", "reward"),
                 (env, "_observe", "obs"), (env.task, "object_features", "obs_objects")]
        rows, raw = [], []
        for seed, actions, ctrls in recorded:
            env.reset(seed=seed)
            with PartTimer(parts) as timer:
                for action in actions:
                    timer.step_s = {}
                    start = time.perf_counter()
                    env.step(action)
                    rows.append({**timer.step_s, "total": time.perf_counter() - start})
            env.reset(seed=seed)
            for ctrl in ctrls:
                start = time.perf_counter()
                env.data.ctrl[:] = ctrl
                mujoco.mj_step(env.model, env.data, nstep=env.n_substeps)
                raw.append(time.perf_counter() - start)
        us = {k: 1e6 * np.array([r.get(k, 0.0) for r in rows]) for k in ("physics", "action", "reward", "obs",
                                                                         "obs_objects", "total")}
        us["obs_state"] = us["obs"] - us["obs_objects"]
        us["other"] = us["total"] - us["physics"] - us["action"] - us["reward"] - us["obs"]
        row = {k: float(np.median(v)) for k, v in us.items()}
        row["raw"] = float(np.median(1e6 * np.array(raw)))
        return row
    finally:
        env.close()


PROFILE_COLUMNS = (("raw", "raw mj_step"), ("physics", "physics"), ("action", "action+IK"), ("reward", "reward"),
                   ("obs_state", "obs state"), ("obs_objects", "obs objects"), ("other", "other"),
                   ("total", "env.step"))


def print_profile_table(tasks: list[str], robots: list[str], budget: Budget) -> None:
    """Where one control step's time goes, per task and robot (medians, microseconds, wall clock)."""
    print(f"\nwhere the time goes: median us per control step over {budget.steps} steps (wall clock, timers "
          "on). physics = mj_step inside env.step (its excess over raw mj_step is the cache refill after the "
          "step's Python); action = action noise/latency + controller (IK); reward = task.evaluate; "
          "other = env.step's own bookkeeping (info dict, reward) and the timers")
    print(f"{'robot':<6} {'task':<11}" + "".join(f" {title:>11}" for _, title in PROFILE_COLUMNS)
          + f" {'vs raw':>7}")
    for robot in robots:
        for task in tasks:
            r = profile_row(task, robot, budget)
            cells = "".join(f" {r[key]:>11.1f}" for key, _ in PROFILE_COLUMNS)
            print(f"{robot:<6} {task:<11}{cells} {r['total'] / r['raw']:>6.2f}x", flush=True)


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
    print(f"robots {','.join(args.robots)}, render robot {args.render_robot}, one core (cpu {args.core}), "
          f"{env_vars}, mujoco {mujoco.__version__}")
    print(f"GL renderer: {gl_renderer_name()} (LP_NUM_THREADS={os.environ['LP_NUM_THREADS']}: "
          f"one rasteriser thread, pinned to the same core)")
    print(f"rates per CPU-second of this process (all threads, one core), best of {budget.repeats} repeat(s) "
          f"for frames/s; load average at start {os.getloadavg()[0]:.2f}")


def print_state_table(tasks: list[str], robots: list[str], budget: Budget) -> dict[tuple[str, str], float]:
    """Print the state table; return the overhead by (robot, task)."""
    print(f"\nstate obs, random actions, {budget.steps} control steps x {budget.repeats} repeat(s), env and raw "
          "laps alternated episode by episode; resets excluded from env and raw steps/s, included in the last column")
    print(f"{'robot':<6} {'task':<11} {'substeps':>8} {'raw steps/s':>12} {'env steps/s':>12} {'overhead':>9} "
          f"{'env ms/step':>12} {'env+reset steps/s':>18}")
    overheads = {}
    for robot in robots:
        for task in tasks:
            r = state_row(task, robot, budget)
            overheads[robot, task] = r["overhead"]
            flag = "" if r["overhead"] <= OVERHEAD_TARGET else "  > target"
            print(f"{robot:<6} {task:<11} {r['substeps']:>8} {r['raw']:>12.0f} {r['env']:>12.0f} "
                  f"{r['overhead']:>8.2f}x {1000 / r['env']:>12.2f} {r['all_in']:>18.0f}{flag}", flush=True)
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


def print_results(overheads: dict[tuple[str, str], float], fps_by: dict[tuple, float]) -> None:
    """RESULT lines: fast-profile fps (aim >= 500 at 84 px), then each robot and task's env overhead."""
    for (task, profile, size, camera), fps in fps_by.items():
        if profile == "fast" and size in (84, 224):
            print_result(f"sim_throughput_fps_{task}_{camera}_{size}px", fps, ">=500" if size == 84 else "-")
    for (robot, task), overhead in overheads.items():
        print_result(f"env_overhead_{robot}_{task}", overhead, f"<={OVERHEAD_TARGET:g}")


def _names_arg(parser: argparse.ArgumentParser, flag: str, value: str, group: str) -> list[str]:
    chosen = [n for n in value.split(",") if n]
    unknown = sorted(set(chosen) - set(names(group)))
    if unknown or not chosen:
        parser.error(f"{flag} has unknown or no {group}s {unknown}; choose from {names(group)}.")
    return chosen


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", default=",".join(names("task")), help="comma-separated task names")
    parser.add_argument("--robots", default=",".join(names("robot")),
                        help="comma-separated robots for the state and profile tables (default: all)")
    parser.add_argument("--render-robot", default="panda", help="the robot of the render table")
    parser.add_argument("--quick", action="store_true", help="a small budget, one repeat: a smoke run")
    parser.add_argument("--core", type=int, default=0, help="CPU core to pin to")
    parser.add_argument("--skip-render", action="store_true", help="no render table")
    parser.add_argument("--profile", action="store_true",
                        help="first print where one env step's time goes (physics, IK, reward, observations)")
    args = parser.parse_args()
    args.tasks = _names_arg(parser, "--tasks", args.tasks, "task")
    args.robots = _names_arg(parser, "--robots", args.robots, "robot")
    _names_arg(parser, "--render-robot", args.render_robot, "robot")
    if args.core not in os.sched_getaffinity(0):
        parser.error(f"--core {args.core} is not available; this process may use {sorted(os.sched_getaffinity(0))}.")
    return args


def main() -> None:
    """Pin to one core; print the profile table (``--profile``), the state table, the render table."""
    args = parse_args()
    os.sched_setaffinity(0, {args.core})  # before any GL context: llvmpipe threads inherit it
    budget = QUICK if args.quick else FULL
    try:
        print_header(args, budget)
        if args.profile:
            print_profile_table(args.tasks, args.robots, budget)
        overheads = print_state_table(args.tasks, args.robots, budget)
        fps_by = {} if args.skip_render else print_render_table(args.tasks, args.render_robot, budget)
        print(f"\nwall time / CPU time over all timed laps: {Stopwatch.total_wall_s / Stopwatch.total_cpu_s:.2f} "
              "(1.00 = the core was ours alone)")
        print_results(overheads, fps_by)
    except ConfigError as error:
        sys.exit(f"error: {error}")


if __name__ == "__main__":
    main()
