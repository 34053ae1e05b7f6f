"""usage: robot-rl train [-m] [key=value ...]

Train a policy in the sim (or from a Zarr store) and end with an evaluated, exported policy.

  robot-rl train task=reach algo=sac train.total_steps=20000
  robot-rl train task=lift algo=sac demos=data/lift_demos.zarr
  robot-rl train task=lift algo=sac reward=vlm reward.model_path=runs/rm demos=data/lift_demos.zarr
  robot-rl train task=lift algo=iql data=data/lift_play.zarr reward=vlm reward.model_path=runs/rm
  robot-rl train task=lift algo=bc data=data/lift_demos.zarr
  robot-rl train task=reach algo=idql data=data/reach_mixed.zarr   # diffusion behaviour + IQL critic
  robot-rl train task=reach algo=saq data=data/reach_mixed.zarr    # VQ-VAE action codes + IQL
  robot-rl train task=reach algo=tdmpc2 demos=data/reach_demos.zarr # model-based: plans at every step
  robot-rl train -m task=reach seed=0,1,2            # a sweep: one run per combination
  robot-rl train -m task=reach,lift seed=0,1 ray.address=auto   # each run a Ray task on a cluster
  robot-rl train task=reach ray.actors=2              # 2 env actors feed one learner (local Ray)
  robot-rl train run=runs/2026-11-21/lift_sac_s0 resume=true
  robot-rl train task=reach algo=distill teacher=expert
  robot-rl train task=lift algo=distill teacher=runs/2026-11-21/lift_sac_s0
  robot-rl train task=[reach,push,lift,pick_place,stack] algo=distill teacher=expert

Keys are key=value, composed by Hydra against robot_rl/conf/train.yaml (with config.yaml's
env.*, seed, out_dir); -m sweeps comma-separated values. Config groups (choose with
group=name): task, robot, randomize, env (sim | ros), algo, reward (gt | vlm), logger
(default | csv). Algorithms (robot_rl/conf/algo/<name>.yaml; the paper each follows is in its
module, robot_rl/algos/<name>.py):
  online, in the sim or on the robot:  sac (SAC + RLPD demos), drq (DrQ-v2, pixels)
  online, in the sim:                  tdmpc2 (TD-MPC2: latent world model, MPPI planning),
                                       cqn_as (CQN-AS: coarse-to-fine critic over action sequences)
  offline, from a Zarr store (data=):  iql (IQL), idql (IDQL: diffusion behaviour policy, actions
                                       picked by IQL's critic), saq (SAQ: state-conditioned VQ-VAE
                                       action codes, IQL on the codes), bc (behaviour cloning)
  imitation of a privileged teacher:   distill (DAgger into a camera + joints + instruction student)
Main options:
  seed=0                 seed of networks, envs and sampling
  run=DIR                run directory (default <out_dir>/<date>/<task>_<algo>_s<seed>)
  resume=true            continue `run` from its last checkpoint: networks, optimisers, replay
                         buffer, counters and RNGs; the episodes in progress at the kill are
                         restarted and the steps after the checkpoint redone (a larger
                         train.total_steps extends a finished run)
  demos=STORE            demonstrations, sampled 50/50 with online data (RLPD); also BC baseline
  data=STORE             dataset for offline algorithms (iql, idql, saq, bc)
  max_episodes=N         read at most N episodes of demos/data
  teacher=expert|DIR     algo=distill: the privileged teacher, the task's scripted expert or a policy
                         artifact (or a run directory holding policy/) for the same robot and action
                         space. The student (camera images + obs/state + the instruction's embedding,
                         the BC agent) learns by DAgger: algo.rounds rounds of algo.episodes_per_round
                         episodes, each executed by the teacher with probability beta (algo.beta0,
                         decaying by algo.beta_decay per round) and labelled by it at every step,
                         collected under algo.collect_randomize=[train,none] (presets in turn) and committed to
                         <run>/distill.zarr, then algo.updates_per_round updates on all data so far.
                         The evaluation (randomize=) and report.json's teacher block put the teacher's
                         success on the same episodes beside the student's.
  task=[a,b,...]         algo=distill: one language-conditioned student over several tasks (the
                         instruction names the task and the object); evaluated per task
  reward=gt|vlm          sim ground truth (env.reward=dense|sparse) or a learned model
  reward.model_path=DIR  (or reward.path=DIR) the trained reward model for reward=vlm, scored
                         on its own cameras at its own image size (env.image_size follows it);
                         reward.shaping.* shape it; its agreement with the sim's ground truth
                         is logged as train/reward_*
  env.action_space=ee_delta|joint_delta|joint_abs
  env.reward=dense|sparse
  train.total_steps=N    online budget in env steps; train.total_updates=N offline
  train.num_envs=N|auto  simulator subprocesses collecting in parallel (auto: cores/2, max 8)
  train.eval_every, train.eval_episodes, train.video_episodes, train.checkpoint_every
  algo.utd=N             gradient updates per env step; algo.batch_size, algo.seed_steps
  algo.agent.num_critics=N, algo.agent.critic_layer_norm=true, algo.agent.lr, ...
  algo.cameras=[front]   cameras a pixel policy (algo=drq) sees; on a CPU use env.image_size=64,
                         algo.batch_size=64, algo.agent.freeze_encoder=true
  baseline.bc=true       with demos/data, train and evaluate BC on them too; the report compares
  privilege.grasp_assist=1 privilege.hold_steps=N privilege.anneal_steps=M
                         privileged-action curriculum (Mao et al. 2025), online RL in the sim: the
                         assisted grasp (a virtual force holds the task's cube at a hand near it and
                         carries its weight) at that strength for N env steps, then annealed to none
                         over M; the rest of training, every evaluation and the exported policy
                         have no help (train/privilege logs the strength)
  ray.actors=N           N Ray env actors (one env and a CPU policy copy each) feed this process's
                         learner (algo=sac|drq, with demos= and reward=vlm too: the learned reward
                         is scored on the actors); ray.address=auto|HOST:PORT joins a cluster,
                         without it a local Ray instance runs for the command. ray.chunk_steps,
                         ray.publish_every (updates between weight publishes), ray.actor_timeout_s
                         (a silent actor is restarted), ray.actor_cpus; metrics ray/* and actorN/*
  -m ... ray.address=A   a sweep with each combination a Ray task (ray.job_cpus, ray.job_gpus),
                         results in one table (ray.address=local: a local instance)
  env=ros                learn on the robot over ROS 2 (README "Learning on your robot"): the learned
                         reward (reward=vlm) on its camera frames, the reward model's features as a
                         frozen encoder (ros.encoder=reward|none), every command through the policy
                         node's safety filter and e-stop, every episode in <run>/robot.zarr.
                         ros.sim=true: the MuJoCo sim bridge is the robot (private DDS domain);
                         ros.intervention=gamepad|keyboard|spacemouse|scripted: hold to take over
                         (the steps go to the demonstrations); ros.reset_mode=auto|operator,
                         ros.instruction=TEXT, ros.success_frames=3, ros.safety.<limit>=...,
                         ros.remap=['joint_states:=/arm/joint_states'], ros.domain_id=N;
                         ray.address=HOST:PORT|auto|local: the learner runs in a Ray worker (a GPU
                         when the cluster has one: ray.learner_gpus, ray.learner_cpus,
                         ray.learner_resource=NAME), the robot keeps the loop, store and checkpoints
  logger=csv             no TensorBoard files
  torch_threads=1        CPU threads for torch (1 is fastest for these small networks)
  device=auto|cpu|cuda   where the networks train (auto: a CUDA GPU when torch sees one); the
                         exported policy is a CPU copy, the simulators stay on the CPU

A run directory holds config.yaml, metrics/*.csv and tb/ (train/ eval/ losses/), checkpoints/,
videos/, report.md and report.json, and policy/ (the exported artifact: policy.onnx, policy.pt,
policy.yaml, config.yaml). The env renders only the cameras the policy or reward model needs.
"""

from __future__ import annotations

import sys

from robot_rl.cli.args import chosen, expand_sweep, parse
from robot_rl.cli.checks.train import check_values
from robot_rl.config import ConfigError, choices, compose, one_line

GROUPS = ("task", "robot", "randomize", "env", "algo", "reward", "logger")


def run(argv: list[str]) -> int:
    args = parse(argv, "train")  # no sub-commands or paths: it cannot refuse anything
    if args.help:
        print(__doc__)
        return 0
    from sim.render import render_on_calling_thread

    render_on_calling_thread()  # before any env: small training frames draw fastest that way
    # reward.path= (as in the issue) is the reward group's model_path.
    overrides = [("reward.model_path=" + a.split("=", 1)[1]) if a.startswith("reward.path=") else a
                 for a in args.overrides]
    try:
        jobs = [task_list(job) for job in (expand_sweep(overrides) if args.multirun else [overrides])]
        configs = [compose(job, config_name="train") for job in jobs]
        for cfg in configs:  # every combination of a sweep is checked before the first one runs
            check_values(cfg)
        if args.multirun and configs[0].ray.address is not None:
            return sweep_on_ray(overrides, jobs, configs)
        from robot_rl.cli.compose.training import train

        for job, cfg in zip(jobs, configs):
            run_dir = train(cfg, "+".join(cfg.tasks) if cfg.tasks else chosen(job, "task"))
            print(f"run: {run_dir}")
    except (ConfigError, ValueError, FileNotFoundError) as error:
        print(f"robot-rl train: {with_choices(one_line(error))}", file=sys.stderr)
        return 2
    return 0


def sweep_on_ray(overrides: list[str], jobs: list[list[str]], configs: list) -> int:
    """Each combination of the sweep as one Ray task (robot_rl.distributed.sweep); one table."""
    from robot_rl.distributed.session import ray_config
    from robot_rl.distributed.sweep import results_table, run_sweep

    swept = {o.partition("=")[0] for o in overrides if len(expand_sweep([o])) > 1}
    named = [(" ".join(o for o in job if o.partition("=")[0] in swept) or f"job {i}", cfg,
              "+".join(cfg.tasks) if cfg.tasks else chosen(job, "task")) for i, (job, cfg) in enumerate(zip(jobs, configs))]
    print(f"sweep: {len(named)} jobs on Ray ({configs[0].ray.address})")
    try:
        results = run_sweep(named, ray_config(configs[0].ray))
    except KeyboardInterrupt:
        print("robot-rl train: interrupted; every job of the sweep was cancelled.", file=sys.stderr)
        return 130
    print(results_table(results))
    return 1 if any(r.error for r in results) else 0


def task_list(overrides: list[str]) -> list[str]:
    """``task=[a,b]`` (a multi-task student) -> ``task=a tasks=[a,b]``: ``task`` is a config group,
    which takes one file; the list travels as ``tasks``, each name checked against the group."""
    out = []
    for item in overrides:
        key, _, value = item.partition("=")
        if key != "task" or not value.strip().startswith("["):
            out.append(item)
            continue
        names = [n.strip() for n in value.strip()[1:-1].split(",") if n.strip()]
        unknown = [n for n in names if n not in choices("task")]
        if not names or unknown or not value.strip().endswith("]"):
            raise ConfigError(f"{item} is not a list of tasks; expected task=[a,b,...] drawn from "
                              f"{', '.join(choices('task'))}.")
        out += [f"task={names[0]}", f"tasks=[{','.join(names)}]"]
    return out


def with_choices(message: str) -> str:
    """Add the valid options to an error about an unknown choice in one of the config groups."""
    for group in GROUPS:
        if f"'{group}/" in message and "Valid" not in message:
            return f"{message.rstrip('.')}. Valid {group} choices: {', '.join(choices(group))}."
    return message
