"""``robot-rl sysid``: fit the sim's physics to how the real arm moved (system identification).

  robot-rl record task=reach device=excite episodes=3 out=data/excite.zarr     # informative motions
  robot-rl sysid data=data/excite.zarr out=runs/sysid
  robot-rl record task=reach device=excite episodes=3 prior=runs/sysid/calibration.yaml out=data/excite2.zarr
  robot-rl sysid data=[data/excite.zarr,data/excite2.zarr] out=runs/sysid2   # a second, sharper round
  robot-rl train task=lift env.calibration=runs/sysid2/calibration.yaml      # train in the measured physics
  robot-rl launch launch/teleop_record.launch.yaml device:=excite source:=real out:=data/real.zarr   # on an arm
  robot-rl sysid data=data/real.zarr out=runs/sysid_real

The store's commands are replayed (a ROS 2 recording's info/command, the joint targets the node
sent the arm, where it has them; else its actions) in the sim from each episode's recorded start state, and the
sim's link masses, joint damping, actuator gains (scales of the robot file's values) and
command latency (control steps) are fitted to the recorded joint positions. Writes
<out>/calibration.yaml (use it as env.calibration=) and <out>/report.json. Options: data, out,
max_episodes, fit.* (robot_rl/conf/sysid.yaml); the task and robot come from the store.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from robot_rl.cli.args import parse
from robot_rl.config import ConfigError, compose, one_line
from robot_rl.schema import as_int, check_common


def run(argv: list[str]) -> int:
    args = parse(argv, "sysid")
    if args.help:
        print(__doc__)
        return 0
    try:
        cfg = compose(args.overrides, config_name="sysid")
        stores = check(cfg)
        report = identify(cfg, stores)
    except (ConfigError, ValueError) as error:
        print(f"robot-rl sysid: {one_line(error)}", file=sys.stderr)
        return 2
    print(summary(report))
    return 0


def check(cfg) -> list[str]:
    """The stores to read; refuse (ConfigError, one sentence) a missing or malformed value."""
    check_common(cfg)
    data = cfg.data
    if data is None:
        raise ConfigError("give data=<store> (or data=[a.zarr,b.zarr]): the recorded motion to fit the sim to.")
    stores = [str(d) for d in data] if not isinstance(data, str) else [data]
    for store in stores:
        if not Path(store).exists():
            raise ConfigError(f"data={store} does not exist.")
    if cfg.max_episodes is not None:
        as_int("max_episodes", cfg.max_episodes, minimum=1)
    for key in ("iterations", "population", "refine_latencies", "refine_evaluations"):
        as_int(f"fit.{key}", cfg.fit[key], minimum=1)
    as_int("fit.elites", cfg.fit.elites, minimum=1, maximum=int(cfg.fit.population))
    as_int("fit.max_latency_steps", cfg.fit.max_latency_steps, minimum=0, maximum=20)
    if not str(cfg.out or "").strip():
        raise ConfigError(f"out={cfg.out} is not valid; expected a directory for calibration.yaml.")
    return stores


def identify(cfg, stores: list[str]) -> dict:
    """Read the motion, fit, write calibration.yaml and report.json; returns the report."""
    from dataclasses import asdict, replace

    import numpy as np
    import yaml

    from robot_rl.sysid.fit import FitConfig, fit
    from robot_rl.sysid.replay import Simulator, read_episodes

    episodes, attrs = [], {}
    for store in stores:
        found, store_attrs = read_episodes(store, cfg.max_episodes)
        if attrs and (store_attrs.get("robot"), store_attrs.get("task")) != (attrs.get("robot"), attrs.get("task")):
            raise ConfigError(f"data={store} was recorded with {store_attrs.get('robot')}/{store_attrs.get('task')}, "
                              f"the first store with {attrs.get('robot')}/{attrs.get('task')}; fit one arm at a time.")
        if attrs and store_attrs["commands"] != attrs["commands"]:
            with_targets = store if store_attrs["commands"] else stores[0]
            raise ConfigError(f"data={with_targets} holds the joint targets sent to the arm (info/command) and the other "
                              "stores do not; fit stores of one kind together.")
        episodes, attrs = episodes + found, attrs or store_attrs
    task, robot = str(attrs.get("task") or cfg.task.name), str(attrs.get("robot") or cfg.robot.name)
    env = {"control_rate_hz": float(attrs.get("control_rate_hz", cfg.env.control_rate_hz)),
           "action_space": str(attrs.get("action_space", cfg.env.action_space))}
    simulator = Simulator(task, robot, **env)
    if attrs.get("commands"):  # replay the joint targets the arm was sent, in the sim's action units
        episodes = [replace(e, actions=simulator.joint_actions(e.actions)) for e in episodes]
    try:
        result = fit(simulator, episodes, FitConfig(**{k: int(v) for k, v in cfg.fit.items()}, seed=int(cfg.seed)))
    finally:
        simulator.close()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    rmse = {"nominal": float(np.sqrt(result.nominal_error)), "calibrated": float(np.sqrt(result.error))}
    report = {"task": task, "robot": robot, "data": stores, "episodes": len(episodes),
              "replayed": "joint targets sent (info/command)" if attrs.get("commands") else "actions",
              "steps": int(sum(len(e.actions) for e in episodes)), "calibration": asdict(result.calibration),
              "joint_rmse_rad": rmse, "rmse_by_latency_rad": {k: float(np.sqrt(v)) for k, v in result.by_latency.items()},
              "evaluations": result.evaluations, "out": str(out / "calibration.yaml")}
    calibration = {"calibration": report["calibration"], "robot": robot, "fitted_from": stores,
                   "joint_rmse_rad": rmse}
    (out / "calibration.yaml").write_text(yaml.safe_dump(calibration, sort_keys=False))
    (out / "report.json").write_text(json.dumps(report, indent=2))
    return report


def summary(report: dict) -> str:
    c, rmse = report["calibration"], report["joint_rmse_rad"]
    lines = [f"fitted {report['robot']} to {report['episodes']} episodes ({report['steps']} commands) in "
             f"{report['evaluations']} simulated replays:",
             f"  link mass x{c['link_mass_scale']:.3f}, joint damping x{c['damping_scale']:.3f}, "
             f"actuator gains x{c['gain_scale']:.3f}, latency {c['action_latency_steps']} steps",
             f"  joint-position RMSE {rmse['nominal'] * 1000:.2f} mrad with the robot file's physics -> "
             f"{rmse['calibrated'] * 1000:.3f} mrad calibrated",
             f"-> {report['out']} (use env.calibration={report['out']})"]
    return "\n".join(lines)
