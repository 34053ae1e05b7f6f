"""``robot-rl record``: teleoperate (or script) the simulated arm and keep episodes in Zarr.

  robot-rl record task=lift device=spacemouse episodes=50 out=data/lift_demos.zarr
  robot-rl record task=stack device=scripted episodes=20         # automatic demonstrations
  robot-rl record task=lift device=scripted noise=0.6 episodes=20 # perturbed: failures too

Controls (keyboard): Enter start/keep, x discard, y/n mark success/failure, Esc quit; the
device's `help` is printed at start. Options: device, episodes, out, display=auto|on|off,
realtime, robot, randomize, seed, env.image_size, env.cameras, teleop.deadzone, ...
"""

from __future__ import annotations

import sys
from pathlib import Path

from robot_rl.config import (ConfigError, as_bool, as_choice, as_float, as_int, check_common, compose, one_line,
                             shorten)


def run(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    try:
        cfg = compose(argv, config_name="record")
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


class ScriptedDevice:
    """The scripted expert behind the teleop device interface (device=scripted).

    ``noise`` adds Gaussian action noise (std, in normalised action units) so the same expert
    also yields imperfect and failed episodes, e.g. negatives for reward models.
    """

    def __init__(self, env, noise: float = 0.0, seed: int = 0) -> None:
        import numpy as np

        from sim.experts import make_expert

        self.expert = make_expert(env)
        self.noise, self._rng = noise, np.random.default_rng(seed)

    def on_episode_start(self) -> None:
        self.expert.reset()

    def read(self):
        from hardware.teleop.base import TeleopCommand

        action = self.expert.act()
        if self.noise:
            action = (action + self._rng.normal(0, self.noise, action.shape)).clip(-1, 1)
        return TeleopCommand(action=action.astype("float32"))

    def close(self) -> None:
        pass


def record(cfg, task: str):
    """Build env, device and writer from ``cfg`` and run one recording session."""
    from omegaconf import OmegaConf

    import sim
    from robot_rl.cli.progress import EpisodeBar
    from robot_rl.data.writer import EpisodeWriter
    from robot_rl.recording import RecordingSession, make_viewer

    env = sim.load(task, cfg.robot.name, cfg.randomize.name, **OmegaConf.to_container(cfg.env, resolve=True))
    scripted = cfg.device == "scripted"
    device = ScriptedDevice(env, float(cfg.noise), int(cfg.seed)) if scripted else _teleop(cfg)
    out = Path(cfg.out or f"data/{task}_demos.zarr")
    schema = {**{k: (s.shape, s.dtype) for k, s in env.env_spec.observations.items()},
              "action": (env.env_spec.action.shape, "float32"), "reward": ((), "float32"),
              "info/success": ((), "bool"), "info/progress": ((), "float32")}
    attrs = {"control_rate_hz": env.env_spec.control_rate_hz, "robot": env.env_spec.robot,
             "action_space": env.env_spec.action_space, "task": task,
             "joint_names": list(env.env_spec.joint_names), "cameras": list(env.env_spec.cameras)}
    realtime = (not scripted) if cfg.realtime is None else as_bool("realtime", cfg.realtime)
    viewer = None if scripted and cfg.display == "auto" else make_viewer(cfg.display)
    if not scripted:
        print(getattr(device, "help", ""))
    bar = EpisodeBar(int(cfg.episodes), f"record {task} noise={float(cfg.noise):g}") if scripted else None
    try:
        with EpisodeWriter(out, schema, attrs) as writer:
            session = RecordingSession(env, device, writer, episodes=int(cfg.episodes),
                                       source="scripted" if scripted else "teleop", task=task,
                                       extra={"noise": float(cfg.noise)} if scripted else None,
                                       seed=int(cfg.seed), realtime=realtime, autostart=scripted,
                                       viewer=viewer, on_status=bar or (lambda s: print(f"\r{s}", end="", flush=True)))
            summary = session.run()
        if bar is None:
            print()
        return summary, out
    finally:
        if bar is not None:
            bar.close()
        device.close()
        env.close()


def _teleop(cfg):
    from hardware.teleop import TeleopConfig, make_device

    config = TeleopConfig(translation_scale=cfg.teleop.translation_scale,
                          rotation_scale=cfg.teleop.rotation_scale, deadzone=cfg.teleop.deadzone)
    return make_device(str(cfg.device), config)
