"""``robot-rl train env=ros``: online RL on the robot over ROS 2, composed from the train config.

The sim's task still names the episodes (instruction, length, observation layout); the arm, its
cameras and its joint states come over DDS through ``hardware.ros.robot_env.RosRobotEnv`` (the
policy node's safety filter and e-stop). ``ros.sim=true`` starts the MuJoCo sim bridge as the
robot on a private domain. The agent reads the robot's frames through a frozen encoder (the
reward model's image features, ``ros.encoder=reward``) plus proprioception, or the raw student
layout (``ros.encoder=none``, e.g. algo=drq). See ``robot_rl.train.robot`` for the loop.
"""

from __future__ import annotations

import json
import sys
from contextlib import nullcontext
from pathlib import Path

from robot_rl.config import ConfigError, locate

GIL_SWITCH_S = 5e-4


def train_robot(cfg, task: str, learned, device, run_dir: Path, logger) -> dict:
    """Run the robot training; a JSON-ready summary (the final evaluation, the store)."""
    import torch
    from omegaconf import OmegaConf

    from robot_rl.cli.compose.env import Envs
    from robot_rl.contracts import INSTRUCTION_ENCODER, OBS_INSTRUCTION, OBS_STATE, image_key
    from robot_rl.algos.networks import ObsSpec
    from robot_rl.train.build import build_agent, policy_obs_keys
    from robot_rl.train.replay import ReplayBuffer
    from robot_rl.train.robot import RobotConfig, RobotTrainer
    from robot_rl.train.robot_io import OBS_FEATURES

    r, t, a = cfg.ros, cfg.train, cfg.algo
    sim = bool(r.sim)
    model = learned if learned.cameras else None  # reward=vlm: scored in the env on the robot's frames
    encode = student = None
    if str(r.encoder) == "reward":
        path = str(r.encoder_path or cfg.reward.get("model_path"))
        encode = locate("reward_models.rl_reward.load_frozen_features", "ros.encoder")(
            path, str(device), model, cfg.reward.get("model_path"))  # the reward's own model: one pass for both
    elif str(r.encoder) == "student":  # sim-to-real fine-tuning (robot_rl.train.finetune)
        from robot_rl.train.finetune import StudentFeatures, load_student

        student = load_student(str(r.student))
        encode = StudentFeatures(student, str(device))  # its perception, once per step
        if not bool(r.student_actor):  # only that: a policy from scratch on it
            student = None
    cameras = sorted(set(cfg.env.cameras) | set(a.cameras) | set(getattr(model, "cameras", ()))
                     | set(getattr(encode, "cameras", ())) | set(getattr(student, "cameras", ()))) or ["front"]
    image_size = _image_size(cfg, model, encode, str(r.encoder) == "student")
    facts = Envs(cfg, task)  # the task's episode layout, from the sim's own task (nothing runs there)
    spec = facts.spec
    n_state = int(spec.observations[OBS_STATE].shape[0])
    specs = {image_key(c): ObsSpec((image_size, image_size, 3), "uint8") for c in cameras}
    specs.update({OBS_STATE: ObsSpec((n_state,), "float32"),
                  OBS_INSTRUCTION: ObsSpec((int(INSTRUCTION_ENCODER["dim"]),), "float32")})
    if student is not None:  # in the student's own order, its image features last
        specs[OBS_FEATURES] = ObsSpec((encode.dim,), "float32")
        keys = list(student.feature_specs(n_state))
    elif encode is not None:
        specs[OBS_FEATURES] = ObsSpec((encode.dim,), "float32")
        keys = [OBS_FEATURES, OBS_STATE]
    elif str(a.obs) == "state":  # what a robot's state is: proprioception, and the instruction
        keys = [OBS_STATE, OBS_INSTRUCTION]
    else:
        keys = policy_obs_keys(str(a.obs), list(a.cameras) or cameras, specs)
    obs_specs = {k: specs[k] for k in keys}
    action_dim = int(spec.action.shape[0])
    if student is not None:  # SAC shaped as the student, its encoder frozen, its actor the student's policy
        from robot_rl.algos.sac import build as build_sac
        from robot_rl.train.finetune import sac_params, start_from_student

        params = sac_params(student, OmegaConf.to_container(a.agent, resolve=True))
        agent = build_sac(obs_specs, action_dim, params, int(cfg.seed))
        start_from_student(agent, student, float(r.student_std))
        agent = agent.to(device)
    else:
        agent = build_agent(a, obs_specs, action_dim, int(cfg.seed)).to(device)
    torch.set_num_threads(int(cfg.torch_threads))
    # The learner thread holds the GIL between torch kernels; Python's default 5 ms switch
    # interval would make the control loop wait that long for it at a tick.
    sys.setswitchinterval(GIL_SWITCH_S)
    from dataclasses import asdict

    scaling = {k: v for k, v in asdict(facts.controller).items() if k != "action_space"}
    env_config = _env_config(cfg, task, cameras, image_size, spec)
    robot = _sim_robot(cfg, task, cameras, image_size, run_dir) if sim else None
    store = str(r.store or run_dir / "robot.zarr")

    def make_env():
        from hardware.ros.robot_env import RosRobotEnv
        from robot_rl.train.robot_io import Encoded

        intervention = _intervention(cfg, float(spec.control_rate_hz), robot)
        domain = robot.domain_id if robot is not None else r.domain_id
        with robot.environment() if robot is not None else nullcontext():
            env = RosRobotEnv(env_config, model, intervention, scaling, domain)
        return Encoded(env, encode) if encode is not None else env

    capacity = min(int(a.buffer_capacity), int(t.total_steps))
    config = RobotConfig(total_steps=int(t.total_steps), seed_steps=int(a.seed_steps), batch_size=int(a.batch_size),
                         utd=int(a.utd), demo_fraction=float(a.demo_fraction), eval_every=int(t.eval_every),
                         eval_episodes=int(t.eval_episodes), checkpoint_every=int(t.checkpoint_every),
                         log_every=int(t.log_every), seed=int(cfg.seed), progress_bar=bool(cfg.logger.progress_bar),
                         store=store, actor_warmup=int(r.actor_warmup),
                         success_is_terminal=str(cfg.env.reward) == "sparse",
                         # a student keeps its own normalisation, and acts from the first step
                         normalize_obs=bool(a.normalize_obs) and student is None, random_start=student is None)
    attrs = {"control_rate_hz": float(spec.control_rate_hz), "robot": str(cfg.robot.name),
             "action_space": str(spec.action_space)}
    buffer = ReplayBuffer(obs_specs, action_dim, capacity, seed=int(cfg.seed))
    demos = ReplayBuffer(obs_specs, action_dim, capacity, seed=int(cfg.seed) + 1)  # the operator's steps
    make_learner, session = _learner(cfg)
    try:
        if robot is not None:
            robot.start()
        with session:
            trainer = RobotTrainer(agent, make_env, config, run_dir, logger, buffer, demos, attrs, task,
                                   resume=bool(cfg.resume), make_learner=make_learner)
            result = trainer.run()
            learner = getattr(trainer.learner, "info", None)
    finally:
        if robot is not None:
            robot.close()
    summary = {"task": task, "store": store, "env_steps": trainer.step, "updates": int(agent.num_updates),
               "wall_s": round(trainer.wall_s, 1), "sim": sim, "encoder": str(r.encoder), "obs_keys": keys,
               "eval": None if result is None else {"success_rate": result.success_rate,
                                                    "return": result.mean_return, "episodes": result.episodes},
               "eval_task_success_rate": trainer.last_eval_truth}
    summary["policy"], why = _export(cfg, facts, trainer.agent, obs_specs, encode, run_dir, task)
    if why:
        summary["policy_not_exported"] = why
        print(f"robot-rl: {why}", file=sys.stderr)
    if learner is not None:  # where the updates ran: a Ray worker's node, process and device
        summary["learner"] = {"node": learner["node"], "pid": learner["pid"], "device": learner["device"],
                              "transitions_at_start": learner["buffer"]}
    jitter = trainer.jitter_summary()
    if jitter:
        summary["command_jitter_ms"] = jitter
    (run_dir / "report.json").write_text(json.dumps(summary, indent=2, default=_plain))
    return summary


def _image_size(cfg, model, encode, student: bool) -> int:
    """The size the robot env renders: the reward model's (or a reward-model encoder's, the same),
    else the student's, else ``env.image_size``. A student reads frames resized to its own size
    by area (as the policy node resizes a camera's), so it may be smaller than the reward model's."""
    reward_sizes = {s for s in (getattr(model, "image_size", None), None if student else getattr(encode, "image_size", None))
                    if s}
    if len(reward_sizes) > 1:
        raise ConfigError(f"the reward model and the encoder read different image sizes {sorted(reward_sizes)}; the "
                          "robot env renders one size: expected reward models trained at the same size.")
    if not student:
        return reward_sizes.pop() if reward_sizes else int(cfg.env.image_size)
    size = int(encode.image_size)
    if reward_sizes and size > min(reward_sizes):
        raise ConfigError(f"the student reads {size} px images but the reward model {min(reward_sizes)} px; the robot "
                          "env renders the reward model's size and a student may only read it or smaller.")
    return reward_sizes.pop() if reward_sizes else size


def _export(cfg, facts, agent, obs_specs: dict, encode, run_dir: Path, task: str) -> tuple[str | None, str]:
    """The learned policy as an artifact the policy node runs on the robot (its perception inside
    the graph: it reads the cameras, the joints and the instruction), or why there is none."""
    from robot_rl.cli.compose.training import export
    from robot_rl.train.finetune import StudentFeatures, deployable_policy

    module = None
    if isinstance(encode, StudentFeatures):
        module, obs_specs = deployable_policy(agent, obs_specs, encode)
    elif encode is not None:
        return None, ("no policy artifact: a policy on the reward model's features (ros.encoder=reward) reads the "
                      "instruction's token embeddings, which an artifact's inputs do not carry; ros.encoder=student "
                      "or none gives one the policy node runs. The agent is in checkpoints/.")
    return str(export(cfg, facts, agent, run_dir, task, obs_specs, module)), ""


def _learner(cfg):
    """The learner factory, and the Ray session it needs: with ``ray.address`` a Ray worker
    (robot_rl.distributed.robot_learner; ``local`` starts Ray here), else a thread of this process."""
    from functools import partial

    from robot_rl.train.robot_learner import Learner

    if cfg.ray.address is None:
        return Learner, nullcontext()
    from robot_rl.distributed.robot_learner import RemoteLearner
    from robot_rl.distributed.session import ray_config, ray_session

    ray_cfg = ray_config(cfg.ray)
    return partial(RemoteLearner, config=ray_cfg), ray_session(ray_cfg)


def _plain(value):
    return value.item() if hasattr(value, "item") else str(value)


def _env_config(cfg, task: str, cameras: list[str], image_size: int, spec):
    from hardware.ros.robot_env import RobotEnvConfig
    from robot_rl.cli.checks.train import remaps
    from robot_rl.config import load_group

    r = cfg.ros
    sim = bool(r.sim)
    safety = {k: (tuple(v) if isinstance(v, (list, tuple)) else v) for k, v in
              _container(r.safety).items() if v is not None}
    episode_steps = int(r.episode_steps or load_group("task", task).get("episode_steps", 100))
    return RobotEnvConfig(robot=str(cfg.robot.name), task=task, action_space=str(spec.action_space),
                          cameras=tuple(cameras), image_size=int(image_size),
                          control_rate_hz=float(spec.control_rate_hz), episode_steps=episode_steps,
                          instruction=str(r.instruction or ""),
                          instruction_topic="task/instruction" if sim else "instruction",
                          success_frames=int(r.success_frames),
                          reset_mode=str(r.reset_mode or ("auto" if sim else "operator")),
                          connection_timeout_s=float(r.connection_timeout_s), ground_truth=sim,
                          command_interface=str(r.command_interface),
                          remap=remaps(r.remap), **safety)


def _container(node) -> dict:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(node, resolve=True) if node is not None else {}


def _sim_robot(cfg, task: str, cameras: list[str], image_size: int, run_dir: Path):
    from hardware.ros.sim_robot import SimRobot

    arguments = {"task": task, "robot": str(cfg.robot.name), "randomize": str(cfg.randomize.name),
                 "seed": str(int(cfg.seed) * 100_000), "cameras": f"[{', '.join(cameras)}]",
                 "image_size": str(image_size), "camera_rate_hz": str(cfg.ros.camera_rate_hz),
                 "publish_object": str(str(cfg.ros.intervention) == "scripted").lower()}
    return SimRobot(arguments, run_dir / "sim_robot.log")


def _intervention(cfg, rate_hz: float, robot):
    """The operator's teleop device as an Intervention, or None (ros.intervention=none)."""
    name = str(cfg.ros.intervention)
    if name == "none":
        return None
    from hardware.control.intervention import Intervention, InterventionConfig
    from hardware.teleop.config import TeleopConfig
    from hardware.teleop.factory import make_device

    if name == "scripted":  # the sim bridge's ground truth steers (hardware.ros.sim_operator)
        from hardware.ros.sim_operator import SimOperator

        with robot.environment():
            device = SimOperator(robot.domain_id, int(cfg.ros.scripted_steps))
    else:  # a SpaceMouse's two buttons are taken: any motion of it takes over (the HIL-SERL habit)
        device = make_device(name, TeleopConfig(intervene_on_motion=name == "spacemouse"))
    return Intervention(device, rate_hz, InterventionConfig(handback_s=float(cfg.ros.handback_s)))
