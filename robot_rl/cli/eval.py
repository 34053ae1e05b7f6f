"""usage: robot-rl eval run=PATH [key=value ...]

Run a policy for N episodes in the sim and write success rate, return and a video grid.

  robot-rl eval run=runs/2026-11-21/lift_sac_s0                      # its exported policy/
  robot-rl eval run=runs/2026-11-21/lift_sac_s0/policy randomize=hard episodes=50
  robot-rl eval run=runs/2026-11-21/lift_sac_s0 checkpoint=true       # latest training checkpoint
  robot-rl eval run=runs/2026-11-21/lift_sac_s0 ros=true episodes=10  # through ROS 2, as deployed

Options:
  run=PATH          a run directory (uses PATH/policy), or a policy artifact directory
  checkpoint=true   evaluate the run's checkpoints/latest.safetensors instead of the exported artifact
  episodes=20       number of episodes (seeds seed, seed+1, ...)
  seed=100000       first episode seed
  randomize=NAME    randomisation preset (none | train | hard | ...); default: the training one
  backend=auto      auto | onnx | torch (artifacts only); with ros=true a policy node backend
                    (onnxruntime-cpu, torch-cpu, onnxruntime-cuda, torch-cuda, onnxruntime-tensorrt)
  video=8           episodes tiled into the video grid (0: none)
  out=DIR           where results go (default <run>/eval/<randomize>, or <run>/eval/ros)
  ros=true          run the artifact in the ROS 2 policy node against the sim bridge node, each
                    its own process on a private DDS domain over loopback, and count successes
                    on /task/success; also records per-tick latency (results.json, nodes.log)
  episode_s=auto    ros=true: wall time per episode before it counts as failed
                    (auto: 1.5x the task's sim episode at the control rate, plus the policy
                    node's 1 s ramp-in; each episode resets the bridge, then activates the node)

The task, robot and env settings come from the artifact's config.yaml; the policy's contract
(robot, joint names, observation keys/shapes) is checked against the env before anything runs.
Writes results.json (success_rate, mean_return, per-episode returns/successes) and video.mp4.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from robot_rl.cli.progress import EpisodeBar
from robot_rl.config import MAX_SEED, ConfigError, as_bool, as_choice, as_float, as_int, choices, one_line, writable_dir

OPTIONS = {"run": None, "checkpoint": "false", "episodes": "20", "seed": "100000", "randomize": None,
           "backend": "auto", "video": "8", "out": None, "ros": "false", "episode_s": "auto"}


def run(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    try:
        options = parse(argv)
        result = evaluate_ros(options) if _true(options["ros"]) else evaluate_run(options)
    except (ConfigError, ValueError, FileNotFoundError) as error:
        print(f"robot-rl eval: {one_line(error)}", file=sys.stderr)
        return 2
    print(json.dumps({k: v for k, v in result.items() if not isinstance(v, list)}, indent=2))
    return 0


def _true(value: str | None) -> bool:
    return str(value).lower() in ("1", "true", "yes")


def parse(argv: list[str]) -> dict[str, str | None]:
    options = dict(OPTIONS)
    for item in argv:
        key, sep, value = item.partition("=")
        if not sep or key not in OPTIONS:
            raise ConfigError(f"unknown eval option {item!r}; options are {', '.join(f'{k}=' for k in OPTIONS)}.")
        options[key] = value
        if not value.strip():
            raise ConfigError(f"{key}= has no value; expected {key}=<value>, or leave it out for the default.")
    if not options["run"]:
        raise ConfigError("eval needs run=<run directory or policy artifact directory>.")
    if options["randomize"] is not None and options["randomize"] not in choices("randomize"):
        raise ConfigError(f"unknown randomize {options['randomize']!r}; choose one of: {', '.join(choices('randomize'))}.")
    as_int("episodes", options["episodes"], minimum=1)
    as_int("seed", options["seed"], minimum=0, maximum=MAX_SEED - as_int("episodes", options["episodes"], minimum=1))
    as_int("video", options["video"], minimum=0)
    as_bool("checkpoint", options["checkpoint"])
    ros = as_bool("ros", options["ros"])
    if as_bool("checkpoint", options["checkpoint"]) and options["backend"] != "auto":
        raise ConfigError(f"backend={options['backend']} applies to exported artifacts; with checkpoint=true the "
                          "checkpoint runs in torch, so expected no backend=.")
    if ros and as_bool("checkpoint", options["checkpoint"]):
        raise ConfigError("checkpoint=true and ros=true do not go together; the ROS 2 node runs exported artifacts.")
    if options["episode_s"] != "auto":
        as_float("episode_s", options["episode_s"], minimum=0.0, strict=True)
    if ros:
        from hardware.runtime.backends import BACKENDS

        as_choice("backend", options["backend"], ("auto", *BACKENDS))
    else:
        as_choice("backend", options["backend"], ("auto", "onnx", "torch"))
    return options


def load_run_config(path: Path):
    """The config.yaml saved with a run or artifact, refused with one sentence when missing or damaged."""
    from omegaconf import DictConfig, OmegaConf

    if not path.is_file():
        raise ConfigError(f"{path} is missing; expected the config.yaml that `robot-rl train` saves with every run "
                          "and artifact.")
    try:
        cfg = OmegaConf.load(path)
    except Exception as error:  # noqa: BLE001 - yaml and omegaconf raise many types for a damaged file
        raise ConfigError(f"{path} is not a valid config file ({str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__}); "
                          "expected the config.yaml that `robot-rl train` saved.") from None
    needed = ("env", "robot", "randomize", "algo", "seed")
    if not isinstance(cfg, DictConfig) or any(k not in cfg for k in needed):
        raise ConfigError(f"{path} is not a robot_rl run config (it lacks {', '.join(needed)}).")
    return cfg


def out_dir(options: dict, default: Path) -> Path:
    """``out=`` (or ``default``), created now so an unwritable one is refused before any episode runs."""
    return writable_dir("out", Path(options["out"]) if options["out"] else default)


def locate(run: str, use_checkpoint: bool) -> tuple[Path, Path]:
    """(run or artifact directory, the config.yaml that built it)."""
    path = Path(run)
    if not path.exists():
        raise FileNotFoundError(f"run={path} does not exist; expected a run directory or a policy artifact directory.")
    if not path.is_dir():
        raise ConfigError(f"run={path} is a file; expected a run directory or a policy artifact directory.")
    if use_checkpoint:
        from robot_rl.train.checkpoint import LATEST, checkpoint_path

        if checkpoint_path(path / "checkpoints") is None:
            raise FileNotFoundError(f"{path} has no checkpoints/{LATEST}; expected a `robot-rl train` run directory.")
        return path, path / "config.yaml"
    artifact = path / "policy" if (path / "policy" / "policy.yaml").exists() else path
    if not (artifact / "policy.yaml").exists():
        raise FileNotFoundError(f"run={path} is neither a run with policy/ nor a policy artifact (no policy.yaml).")
    return artifact, artifact / "config.yaml"


def evaluate_run(options: dict) -> dict:
    use_checkpoint = _true(options["checkpoint"])
    where, config_path = locate(options["run"], use_checkpoint)
    cfg = load_run_config(config_path)
    randomize = options["randomize"] or str(cfg.randomize.name)
    out = out_dir(options, Path(options["run"]) / "eval" / randomize)
    env, act, task = build(cfg, where, randomize, use_checkpoint, options["backend"])
    from robot_rl.train.evaluate import evaluate, write_video_grid

    bar = EpisodeBar(int(options["episodes"]), f"eval {task} randomize={randomize}")
    try:
        result = evaluate(act, env, int(options["episodes"]), int(options["seed"]), int(options["video"]),
                          bar.on_episode)
    finally:
        bar.close()
        env.close()
    labels = [f"{'success' if s else 'fail'} R={r:.0f}" for s, r in zip(result.successes, result.returns)]
    video = write_video_grid(out / "video.mp4", result.frames, float(cfg.env.control_rate_hz), labels)
    summary = {"policy": str(where), "source": "checkpoint" if use_checkpoint else "artifact", "task": task,
               "randomize": randomize, "episodes": result.episodes, "success_rate": result.success_rate,
               "mean_return": result.mean_return, "std_return": result.std_return, "video": str(video) if video else None,
               "returns": result.returns, "successes": result.successes}
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    return summary


def evaluate_ros(options: dict) -> dict:
    """The artifact in the ROS 2 policy node, driving the sim bridge node over DDS (hardware.ros)."""
    from hardware.ros.evaluation import RosEvalConfig, RosEvalError, evaluate_over_ros
    from robot_rl.config import load_group
    from robot_rl.policy.spec import PolicySpec

    where, _ = locate(options["run"], use_checkpoint=False)
    spec = PolicySpec.load(where)
    from robot_rl.policy import load_policy

    load_policy(where)  # a damaged or mismatched graph is refused here, in one sentence, not inside a node
    images = {o.key.rsplit("/", 1)[1]: o.shape for o in spec.observations if o.key.startswith("obs/images/")}
    sim_episode_s = float(load_group("task", spec.task)["episode_steps"]) / float(spec.control_rate_hz)
    # The node ramps in over its first second after each activation (hardware.ros.policy_node).
    episode_s = 1.5 * sim_episode_s + 1.0 if options["episode_s"] == "auto" else float(options["episode_s"])
    out = out_dir(options, Path(options["run"]) / "eval" / "ros")
    config = RosEvalConfig(policy_path=str(where), task=spec.task, robot=spec.robot, episodes=int(options["episodes"]),
                           seed=int(options["seed"]), episode_timeout_s=episode_s, backend=options["backend"],
                           cameras=tuple(images), image_size=int(next(iter(images.values()))[0]) if images else 84)
    bar = EpisodeBar(config.episodes, f"ROS 2 {spec.task}")
    try:
        result = evaluate_over_ros(config, log_path=out / "nodes.log", on_episode=bar.on_episode)
    except RosEvalError as error:
        raise ValueError(str(error)) from None
    finally:
        bar.close()
    result.update(policy=str(where), task=spec.task, sim_episode_s=sim_episode_s, log=str(out / "nodes.log"))
    (out / "results.json").write_text(json.dumps(result, indent=2))
    return result


def build(cfg, where: Path, randomize: str, use_checkpoint: bool, backend: str):
    """The eval env (same settings as training, chosen preset) and an ``act`` for the policy."""
    from omegaconf import OmegaConf

    import sim

    if use_checkpoint:
        from robot_rl.cli.train import build_agent
        from robot_rl.train.build import obs_specs_of, policy_obs_keys
        from robot_rl.train.checkpoint import checkpoint_path, read_checkpoint, restore_agent

        path = checkpoint_path(where / "checkpoints")
        state = read_checkpoint(path)  # refuses an old pickle, a crafted or a damaged file before the env starts
    task = task_name(cfg, where)
    env_kwargs = OmegaConf.to_container(cfg.env, resolve=True)
    if use_checkpoint:
        env_kwargs["cameras"] = sorted(set(env_kwargs.get("cameras", [])) | set(cfg.algo.cameras))
        env = sim.load(task, cfg.robot.name, randomize, **env_kwargs)
        keys = policy_obs_keys(str(cfg.algo.obs), list(cfg.algo.cameras), env.env_spec.observations)
        agent = build_agent(cfg.algo, obs_specs_of(env.env_spec.observations, keys), env.action_space.shape[0],
                            int(cfg.seed))
        try:
            restore_agent(agent, state, path)
        except BaseException:
            env.close()
            raise
        return env, lambda obs: agent.act(obs, deterministic=True), task
    from robot_rl.policy import ContractError, check_contract, load_policy

    policy = load_policy(where, backend)
    if policy.spec.task and policy.spec.task not in choices("task"):
        raise ContractError(f"{where / 'policy.yaml'} names task {policy.spec.task!r}, which this robot_rl does not "
                            f"have; expected one of: {', '.join(choices('task'))}.")
    cameras = [k.rsplit("/", 1)[1] for k in policy.spec.obs_keys if k.startswith("obs/images/")]
    env_kwargs["cameras"] = sorted(set(env_kwargs.get("cameras", [])) | set(cameras))
    env = sim.load(policy.spec.task or task, policy.spec.robot, randomize, **env_kwargs)
    spec = env.env_spec
    check_contract(policy.spec, spec.robot, list(spec.joint_names), spec.observations)
    return env, policy.act, policy.spec.task or task


def task_name(cfg, where: Path) -> str:
    """The task of a run: from policy.yaml when there is one, else matched by the task's class."""
    if (where / "policy.yaml").exists():
        from robot_rl.policy.spec import PolicySpec

        return PolicySpec.load(where).task  # refuses a damaged policy.yaml with one sentence
    report = where / "report.json"
    if report.exists():
        try:
            task = json.loads(report.read_text())["task"]
        except (ValueError, KeyError, TypeError):
            task = None
        if isinstance(task, str) and task in choices("task"):
            return task
        raise ConfigError(f"{report} does not name a known task; expected the report.json `robot-rl train` wrote.")
    named = cfg.get("task", {}).get("name") if hasattr(cfg.get("task", {}), "get") else None
    if isinstance(named, str) and named in choices("task"):  # an interrupted run: only config.yaml says
        return named
    raise ConfigError(f"cannot tell the task of {where}: it has no policy.yaml or report.json.")
