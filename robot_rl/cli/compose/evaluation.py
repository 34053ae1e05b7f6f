"""Evaluation, composed from the checked eval options: the env and the policy runtime (the
exported artifact, or the agent restored from a checkpoint) run for N episodes in the sim, or
the artifact in the ROS 2 policy node against the sim bridge; results.json and a video grid."""

from __future__ import annotations

from robot_rl.cli.compose.env import sim_env_kwargs

import json
from pathlib import Path

from robot_rl.cli.checks.eval import load_run_config, locate, task_name
from robot_rl.cli.progress import EpisodeBar
from robot_rl.config import choices
from robot_rl.schema import writable_dir


def _true(value: str | None) -> bool:
    return str(value).lower() in ("1", "true", "yes")


def out_dir(options: dict, default: Path) -> Path:
    """``out=`` (or ``default``), created now so an unwritable one is refused before any episode runs."""
    return writable_dir("out", Path(options["out"]) if options["out"] else default)


def evaluate_run(options: dict) -> dict:
    use_checkpoint = _true(options["checkpoint"])
    where, config_path = locate(options["run"], use_checkpoint)
    cfg = load_run_config(config_path)
    randomize = options["randomize"] or str(cfg.randomize.name)
    default_out = Path(options["run"]) / "eval" / (f"{options['task']}-{randomize}" if options["task"] else randomize)
    out = out_dir(options, default_out)
    if options["calibration"]:
        cfg.env.calibration = options["calibration"]  # the measured physics of the arm to evaluate on
    env, act, task = build(cfg, where, randomize, use_checkpoint, options["backend"], options["task"],
                           options["instruction"])
    from robot_rl.train.rollouts import run_episodes, write_video_grid

    bar = EpisodeBar(int(options["episodes"]), f"eval {task} randomize={randomize}")
    try:
        result = run_episodes(act, env, int(options["episodes"]), int(options["seed"]), int(options["video"]),
                              bar.on_episode)
    finally:
        bar.close()
        env.close()
    labels = [f"{'success' if s else 'fail'} R={r:.0f}" for s, r in zip(result.successes, result.returns)]
    video = write_video_grid(out / "video.mp4", result.frames, float(cfg.env.control_rate_hz), labels)
    summary = {"policy": str(where), "source": "checkpoint" if use_checkpoint else "artifact", "task": task,
               "randomize": randomize, "calibration": options["calibration"], "episodes": result.episodes,
               "success_rate": result.success_rate,
               "instruction": options["instruction"] or "each episode's own",
               "mean_return": result.mean_return, "std_return": result.std_return, "video": str(video) if video else None,
               "returns": result.returns, "successes": result.successes}
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    return summary


def evaluate_ros(options: dict) -> dict:
    """The artifact in the ROS 2 policy node, driving the sim bridge node over DDS (hardware.ros)."""
    from hardware.ros.closed_loop import RosEvalConfig, RosEvalError, evaluate_over_ros
    from robot_rl.config import load_group
    from robot_rl.policy.spec import PolicySpec

    where, _ = locate(options["run"], use_checkpoint=False)
    spec = PolicySpec.load(where)
    from robot_rl.policy.runtime import check_artifact

    check_artifact(where)  # a damaged or mismatched graph is refused here, in one sentence, not inside a node
    images = {o.key.rsplit("/", 1)[1]: o.shape for o in spec.observations if o.key.startswith("obs/images/")}
    task = ros_task(spec, options["task"], where)
    sim_episode_s = float(load_group("task", task)["episode_steps"]) / float(spec.control_rate_hz)
    # The node ramps in over its first second after each activation (hardware.ros.policy_node).
    episode_s = 1.5 * sim_episode_s + 1.0 if options["episode_s"] == "auto" else float(options["episode_s"])
    out = out_dir(options, Path(options["run"]) / "eval" / ("ros" if not options["randomize"] else f"ros-{options['randomize']}"))
    config = RosEvalConfig(policy_path=str(where), task=task, robot=spec.robot, episodes=int(options["episodes"]),
                           seed=int(options["seed"]), randomize=options["randomize"] or "none",
                           episode_timeout_s=episode_s, backend=options["backend"],
                           cameras=tuple(images), image_size=int(next(iter(images.values()))[0]) if images else 84)
    bar = EpisodeBar(config.episodes, f"ROS 2 {task}")
    try:
        result = evaluate_over_ros(config, log_path=out / "nodes.log", on_episode=bar.on_episode)
    except RosEvalError as error:
        raise ValueError(str(error)) from None
    finally:
        bar.close()
    result.update(policy=str(where), task=task, randomize=config.randomize, sim_episode_s=sim_episode_s,
                  log=str(out / "nodes.log"))
    (out / "results.json").write_text(json.dumps(result, indent=2))
    return result


def ros_task(spec, requested: str | None, where: Path) -> str:
    """The task to run: ``task=`` when the policy was trained on it, else its (first) own."""
    from robot_rl.policy import ContractError

    trained = policy_tasks(spec.task)
    if requested and trained and requested not in trained:
        raise ContractError(f"the policy in {where} was trained on {', '.join(trained)}, not on task={requested}; "
                            "choose one of those.")
    return requested or trained[0]


def policy_tasks(task: str) -> list[str]:
    """The tasks a policy.yaml's ``task`` names: one, or a multi-task student's comma-separated list."""
    return [t.strip() for t in str(task).split(",") if t.strip()]


def instructed(env, obs_keys, instruction: str | None, artifact: Path | None = None):
    """A language-conditioned policy's env: ``obs/instruction`` from each episode's instruction
    (or the fixed text an operator gave), embedded by the artifact's own encoder as on the robot;
    any other policy's env unchanged."""
    from robot_rl.policy.instruction import reads_instruction

    if not reads_instruction(obs_keys):
        if instruction:
            env.close()
            raise ValueError("instruction= was given but this policy does not read an instruction "
                             "(its policy.yaml has no obs/instruction input).")
        return env
    from robot_rl.policy.instruction import InstructionEmbedder
    from robot_rl.train.instructed import EmbedInstruction

    return EmbedInstruction(env, InstructionEmbedder(artifact=artifact), instruction=instruction)


def build(cfg, where: Path, randomize: str, use_checkpoint: bool, backend: str, task: str | None = None,
          instruction: str | None = None):
    """The eval env (same settings as training, chosen preset and task) and an ``act`` for the policy."""

    import sim

    if use_checkpoint:
        from robot_rl.train.build import build_agent, obs_specs_of, policy_obs_keys
        from robot_rl.train.checkpoint import checkpoint_path, read_checkpoint, restore_agent

        path = checkpoint_path(where / "checkpoints")
        state = read_checkpoint(path)  # refuses an old pickle, a crafted or a damaged file before the env starts
    requested, task = task, task or policy_tasks(task_name(cfg, where))[0]
    env_kwargs = sim_env_kwargs(cfg)
    if use_checkpoint:
        env_kwargs["cameras"] = sorted(set(env_kwargs.get("cameras", [])) | set(cfg.algo.cameras))
        env = sim.load(task, cfg.robot.name, randomize, **env_kwargs)
        if str(cfg.algo.obs) == "student":
            from robot_rl.contracts import OBS_INSTRUCTION

            env = instructed(env, [OBS_INSTRUCTION], instruction)
        elif instruction:
            env.close()
            raise ValueError("instruction= was given but this policy does not read an instruction.")
        keys = policy_obs_keys(str(cfg.algo.obs), list(cfg.algo.cameras), env.env_spec.observations)
        agent = build_agent(cfg.algo, obs_specs_of(env.env_spec.observations, keys), env.action_space.shape[0],
                            int(cfg.seed))
        try:
            restore_agent(agent, state, path)
        except BaseException:
            env.close()
            raise
        return env, lambda obs: agent.act(obs, deterministic=True), task
    from robot_rl.policy import ContractError, check_contract, load_runtime

    policy = load_runtime(where, backend)  # the runtime the ROS 2 policy node runs, on the same backends
    trained = policy_tasks(policy.spec.task)
    unknown = [t for t in trained if t not in choices("task")]
    if unknown:
        raise ContractError(f"{where / 'policy.yaml'} names task {unknown[0]!r}, which this robot_rl does not "
                            f"have; expected one of: {', '.join(choices('task'))}.")
    if requested and trained and requested not in trained:
        raise ContractError(f"the policy was trained on {', '.join(trained)}, not on task={requested}; choose one of those.")
    task = requested or (trained[0] if trained else task)
    cameras = [k.rsplit("/", 1)[1] for k in policy.spec.obs_keys if k.startswith("obs/images/")]
    env_kwargs["cameras"] = sorted(set(env_kwargs.get("cameras", [])) | set(cameras))
    env = instructed(sim.load(task, policy.spec.robot, randomize, **env_kwargs), policy.spec.obs_keys, instruction,
                     artifact=where)
    spec = env.env_spec
    check_contract(policy.spec, spec.robot, list(spec.joint_names), spec.observations)
    return env, policy.act_batch, task
