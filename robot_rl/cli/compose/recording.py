"""Recording, composed from the record config: the env, the device (a teleop device or the
scripted expert) and the episode writer, run as one session."""

from __future__ import annotations

from robot_rl.cli.compose.env import sim_env_kwargs

from pathlib import Path

from robot_rl.schema import as_bool


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


class ExcitationDevice:
    """System identification's exploration behind the teleop device interface (device=excite):
    episode i plays the i-th most informative excitation motion (robot_rl.sysid.explore), chosen
    at ``prior`` (a calibration.yaml from an earlier robot-rl sysid, or the robot file's physics)."""

    def __init__(self, env, episodes: int, prior: str | None = None) -> None:
        from robot_rl.sysid.explore import motions_for

        spec = env.env_spec
        self.motions = motions_for(spec.task, spec.robot, episodes, env.episode_steps, prior or None,
                                   control_rate_hz=spec.control_rate_hz, action_space=spec.action_space)
        self.episode, self.step = -1, 0

    def on_episode_start(self) -> None:
        self.episode, self.step = self.episode + 1, 0

    def read(self):
        from hardware.teleop.base import TeleopCommand

        _, actions, _ = self.motions[self.episode % len(self.motions)]
        action = actions[min(self.step, len(actions) - 1)]
        self.step += 1
        return TeleopCommand(action=action.astype("float32"))

    def close(self) -> None:
        pass


def record(cfg, task: str):
    """Build env, device and writer from ``cfg`` and run one recording session."""

    import sim
    from robot_rl.cli.progress import EpisodeBar
    from robot_rl.data.writer import EpisodeWriter
    from robot_rl.data.recording import RecordingSession, make_viewer

    env = sim.load(task, cfg.robot.name, cfg.randomize.name, **sim_env_kwargs(cfg))
    scripted = cfg.device in ("scripted", "excite")  # automatic: no operator, as fast as the sim runs
    if cfg.device == "excite":
        device = ExcitationDevice(env, int(cfg.episodes), cfg.prior)
    else:
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
    label = "excite" if cfg.device == "excite" else f"noise={float(cfg.noise):g}"
    bar = EpisodeBar(int(cfg.episodes), f"record {task} {label}") if scripted else None
    try:
        with EpisodeWriter(out, schema, attrs) as writer:
            session = RecordingSession(env, device, writer, episodes=int(cfg.episodes),
                                       source="scripted" if scripted else "teleop", task=task,
                                       extra={"randomize": str(cfg.randomize.name),
                                              **({"noise": float(cfg.noise)} if scripted else {})},
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
    from omegaconf import OmegaConf

    from hardware.teleop import TeleopConfig, make_device
    from robot_rl.schema import build

    config = build(TeleopConfig, OmegaConf.to_container(cfg.teleop, resolve=True), "teleop")
    return make_device(str(cfg.device), config)
