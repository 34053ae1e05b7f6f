"""``robot-rl record``: teleoperate (or script) the simulated arm and keep episodes in Zarr.

  robot-rl record task=lift device=spacemouse episodes=50 out=data/lift_demos.zarr
  robot-rl record task=stack device=scripted episodes=20         # automatic demonstrations
  robot-rl record task=lift device=scripted noise=0.6 episodes=20 # perturbed: failures too
  robot-rl record task=reach device=excite episodes=3 out=data/excite.zarr  # for robot-rl sysid

Controls (keyboard): Enter start/keep, x discard, y/n mark success/failure, Esc quit; the
device's `help` is printed at start. Options: device, episodes, out, display=auto|on|off,
realtime, robot, randomize, seed, env.image_size, env.cameras, teleop.deadzone, ...
(robot_rl/conf/record.yaml, and env.* from robot_rl/conf/config.yaml).
"""

from __future__ import annotations

import sys
from pathlib import Path

from robot_rl.cli.args import parse
from robot_rl.cli.compose.recording import record
from robot_rl.config import ConfigError, compose, one_line, shorten
from robot_rl.schema import as_bool, as_choice, as_float, as_int, check_common


def run(argv: list[str]) -> int:
    args = parse(argv, "record")  # no sub-commands or paths: it cannot refuse anything
    if args.help:
        print(__doc__)
        return 0
    try:
        cfg = compose(args.overrides, config_name="record")
        check(cfg)
        check_existing_store(cfg, Path(cfg.out or f"data/{cfg.task.name}_demos.zarr"))
        summary, out = record(cfg, str(cfg.task.name))
    except (ConfigError, ValueError, RuntimeError) as error:
        print(f"robot-rl record: {one_line(error)}", file=sys.stderr)
        return 2
    except OSError as error:  # e.g. a disk that filled up or went read-only mid-session
        where = f" ({error.filename})" if error.filename else ""
        print(shorten(f"robot-rl record: {error.strerror or error}{where}; every episode shown as kept is on disk."),
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("robot-rl record: interrupted by Ctrl-C; every episode shown as kept is on disk.", file=sys.stderr)
        return 130
    print(f"{summary.status()} -> {out}")
    return 0


def check(cfg) -> None:
    """Refuse (ConfigError, one sentence) a value of the wrong type or range before anything opens."""
    check_common(cfg)
    as_int("episodes", cfg.episodes, minimum=1)
    as_float("noise", cfg.noise, minimum=0.0)
    as_choice("display", cfg.display, ("auto", "on", "off"))
    if cfg.realtime is not None:
        as_bool("realtime", cfg.realtime)
    as_float("teleop.translation_scale", cfg.teleop.translation_scale, minimum=0.0, strict=True)
    as_float("teleop.rotation_scale", cfg.teleop.rotation_scale, minimum=0.0, strict=True)
    as_float("teleop.deadzone", cfg.teleop.deadzone, minimum=0.0, maximum=0.99)
    if cfg.out is not None and not str(cfg.out).strip():
        raise ConfigError("out= is empty; expected the path of a Zarr store (e.g. out=data/lift_demos.zarr).")
    if cfg.prior is not None:
        if str(cfg.device) != "excite":
            raise ConfigError(f"prior= is read only by device=excite (the physics to choose sysid's motions at), and "
                              f"device={cfg.device}; drop prior= or use device=excite.")
        if not Path(str(cfg.prior)).is_file():
            raise ConfigError(f"prior={cfg.prior} does not exist; expected robot-rl sysid's calibration.yaml.")


def check_existing_store(cfg, out: Path) -> None:
    """Appending to an existing store needs the same task, robot, cameras and image size; refuse a
    mismatch with one sentence naming what differs (ConfigError), before the sim starts."""
    if not (out / "zarr.json").is_file():
        return
    from robot_rl import contracts
    from robot_rl.data.store import EpisodeStore

    with EpisodeStore.open(out) as store:
        attrs, schema = store.store_attrs, store.schema
    cameras = sorted(k.rsplit("/", 1)[-1] for k in schema if k.startswith("obs/images/"))
    sizes = {schema[contracts.image_key(c)].shape[0] for c in cameras}
    have = {"task": attrs.extra.get("task"), "robot": attrs.robot, "env.cameras": cameras,
            "env.image_size": sizes.pop() if len(sizes) == 1 else None}
    want = {"task": str(cfg.task.name), "robot": str(cfg.robot.name), "env.cameras": sorted(map(str, cfg.env.cameras)),
            "env.image_size": int(cfg.env.image_size) if cameras else None}
    differ = [f"{k}={v}" for k, v in have.items() if v is not None and v != want[k]]
    if differ:
        raise ConfigError(f"out={out} already holds episodes recorded with {', '.join(differ)}; expected a new path, "
                          f"or the same {', '.join(d.split('=')[0] for d in differ)} to add episodes to it.")
