"""``robot-rl sim``: look at the simulated world.

  robot-rl sim render task=lift robot=panda         one task to an mp4 and a PNG grid
  robot-rl sim render task=all robot=all            every task on every robot
  robot-rl sim list                                 tasks, robots and randomisation presets

Render options: render.steps, render.image_size, render.profile (fast|pretty),
render.policy (expert|random), randomize=<preset>, seed=<int>, out_dir=<dir>.
"""

from __future__ import annotations

import sys
from pathlib import Path

from robot_rl.config import (MAX_IMAGE_SIZE, ConfigError, as_choice, as_int, check_common, choices, compose, one_line,
                             writable_dir)

GRID_TIMES = 4
MAX_RENDER_STEPS = 10_000  # 8 minutes of video at 20 Hz; more is a typo, not a clip


def run(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    sub, overrides = argv[0], argv[1:]
    if sub == "list":
        if overrides:
            print(f"robot-rl sim list: takes no arguments, got {' '.join(overrides)!r}; expected `robot-rl sim list`.",
                  file=sys.stderr)
            return 2
        for group in ("task", "robot", "randomize"):
            print(f"{group}: {', '.join(choices(group))}")
        return 0
    if sub != "render":
        print(f"robot-rl sim: unknown command {sub!r}; choose render or list.", file=sys.stderr)
        return 2
    try:
        written = render_all(overrides)
    except ConfigError as error:
        print(f"robot-rl sim render: {one_line(error)}", file=sys.stderr)
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
    defaults = compose(rest)
    check_render(defaults)
    tasks, robots = tasks or [defaults.task.name], robots or [defaults.robot.name]
    written = []
    for robot in robots:
        for task in tasks:
            cfg = compose([*rest, f"task={task}", f"robot={robot}"])
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


def render_one(cfg, task: str, robot: str) -> tuple[Path, Path]:
    """Run the scripted expert (or random actions) and write an mp4 and a PNG grid."""
    import numpy as np
    from omegaconf import OmegaConf

    import sim
    from robot_rl import contracts, media
    from sim.experts import make_expert

    env_kwargs = OmegaConf.to_container(cfg.env, resolve=True)
    env_kwargs.update(image_size=cfg.render.image_size, render_profile=cfg.render.profile)
    env = sim.load(task, robot, cfg.randomize.name, **env_kwargs)
    keys = [contracts.image_key(c) for c in env.config.cameras]
    try:
        obs, info = env.reset(seed=int(cfg.seed))
        expert = make_expert(env) if cfg.render.policy == "expert" else None
        if expert:
            expert.reset()
        steps = [(obs, info)]
        for _ in range(int(cfg.render.steps)):
            obs, _, terminated, truncated, info = env.step(expert.act() if expert else env.action_space.sample())
            steps.append((obs, info))
            if terminated or truncated:
                break
    finally:
        env.close()
    frames = [media.annotate(np.concatenate([o[k] for k in keys], axis=1), _caption(i, info))
              for i, (o, info) in enumerate(steps)]
    out = Path(cfg.out_dir) / "render" / f"{task}_{robot}"
    video = media.write_video(out / "episode.mp4", frames, fps=cfg.env.control_rate_hz)
    picks = np.linspace(0, len(steps) - 1, GRID_TIMES).astype(int)
    grid_png = media.write_png(out / "grid.png", media.grid([[steps[i][0][k] for i in picks] for k in keys]))
    return video, grid_png


def _caption(step: int, info: dict) -> list[str]:
    return [info["instruction"], f"step {step}  progress {info['progress']:.2f}  success {info['success']}"]
