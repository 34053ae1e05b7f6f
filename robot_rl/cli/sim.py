"""``robot-rl sim``: look at the simulated world.

  robot-rl sim render task=lift robot=panda         one task to an mp4 and a PNG grid
  robot-rl sim render task=all robot=all            every task on every robot
  robot-rl sim list                                 tasks, robots and randomisation presets

Render options (robot_rl/conf/sim.yaml): render.steps, render.image_size, render.profile
(fast|pretty), render.policy (expert|random), randomize=<preset>, seed=<int>, out_dir=<dir>,
env.* (robot_rl/conf/config.yaml). task= and robot= also take a list (task=reach,lift) or all.
"""

from __future__ import annotations

import sys
from pathlib import Path

from robot_rl.cli.args import parse
from robot_rl.cli.compose.render import render_one
from robot_rl.config import ConfigError, choices, compose, one_line
from robot_rl.schema import MAX_IMAGE_SIZE, as_choice, as_int, check_common, writable_dir

MAX_RENDER_STEPS = 10_000  # 8 minutes of video at 20 Hz; more is a typo, not a clip


def run(argv: list[str]) -> int:
    try:
        args = parse(argv or ["--help"], "sim", subs=("render", "list"))
        if args.help:
            print(__doc__)
            return 0
        if args.sub == "list":
            if args.overrides:
                raise ConfigError(f"takes no arguments, got {' '.join(args.overrides)!r}; expected `robot-rl sim list`.")
            for group in ("task", "robot", "randomize"):
                print(f"{group}: {', '.join(choices(group))}")
            return 0
        written = render_all(args.overrides)
    except ConfigError as error:
        sub = argv[0] if argv and argv[0] in ("render", "list") else None
        print(f"robot-rl sim{' ' + sub if sub else ''}: {one_line(error)}", file=sys.stderr)
        return 2
    for task, robot, video, grid_png in written:
        print(f"{task}/{robot}: video {video}  grid {grid_png}")
    return 0


def _expand(overrides: list[str], group: str) -> tuple[list[str] | None, list[str]]:
    """Pull ``group=all`` or ``group=a,b`` out of the overrides; return the names (None when
    not given, meaning the config's default) and the rest."""
    names, rest = None, []
    for item in overrides:
        key, _, value = item.partition("=")
        if key == group:
            names = choices(group) if value == "all" else value.split(",")
            unknown = [n for n in names if n not in choices(group)]
            if unknown:
                raise ConfigError(f"unknown {group} {unknown[0]!r}; choose one of: {', '.join(choices(group))} (or all).")
        else:
            rest.append(item)
    return names, rest


def render_all(overrides: list[str]) -> list[tuple[str, str, Path, Path]]:
    """Render every requested task on every requested robot; returns what was written."""
    tasks, rest = _expand(overrides, "task")
    robots, rest = _expand(rest, "robot")
    defaults = compose(rest, config_name="sim")
    check_render(defaults)
    tasks, robots = tasks or [defaults.task.name], robots or [defaults.robot.name]
    written = []
    for robot in robots:
        for task in tasks:
            cfg = compose([*rest, f"task={task}", f"robot={robot}"], config_name="sim")
            written.append((task, robot, *render_one(cfg, task, robot)))
    return written


def check_render(cfg) -> None:
    """Refuse (ConfigError, one sentence) a render option of the wrong type before the sim starts."""
    check_common(cfg)
    as_int("render.steps", cfg.render.steps, minimum=1, maximum=MAX_RENDER_STEPS)
    as_int("render.image_size", cfg.render.image_size, minimum=16, maximum=MAX_IMAGE_SIZE)
    if not cfg.env.cameras:
        raise ConfigError("env.cameras=[] is not valid for sim render; expected at least one camera to film, "
                          "e.g. env.cameras=[front].")
    as_choice("render.profile", cfg.render.profile, ("fast", "pretty"))
    as_choice("render.policy", cfg.render.policy, ("expert", "random"))
    writable_dir("out_dir", cfg.out_dir)
