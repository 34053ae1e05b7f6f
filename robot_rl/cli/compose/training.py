"""One training run, composed from the train config: reward, env, agent, logger -> the online or
offline loop -> the exported artifact and the report (robot_rl.train.report)."""

from __future__ import annotations

from pathlib import Path

from robot_rl.cli.compose.env import Envs
from robot_rl.cli.compose.loops import train_distill, train_offline, train_online
from robot_rl.cli.checks.train import check_run_dir, check_store_task, run_dir_of
from robot_rl.train.report import reward_kind, write_report


def train(cfg, task: str) -> Path:
    """One training run from a composed config; returns its run directory."""
    import torch
    from omegaconf import OmegaConf

    from robot_rl.train.build import build_agent
    from robot_rl.train.device import resolve_device
    from robot_rl.train.logger import Logger

    device = resolve_device(str(cfg.device))  # device=cuda without a GPU: one sentence, before anything starts
    if cfg.algo.kind == "offline" and not (cfg.data or cfg.demos):
        raise ValueError(f"algo={cfg.algo.name} learns offline; give data=<Zarr store> (or demos=<store>).")
    run_dir = check_run_dir(cfg, task)
    start_step = resume_step(cfg, run_dir)  # a damaged checkpoint is refused before anything starts
    for key in ("demos", "data"):
        if cfg[key]:
            check_store_task(key, str(cfg[key]), task)
    torch.set_num_threads(int(cfg.torch_threads))
    from robot_rl.train.rewards import build_reward

    learned = build_reward(cfg.reward, str(cfg.env.reward))  # reward=gt | vlm: the group's _target_
    if str(cfg.env.backend) == "ros":  # learning on the robot over ROS 2 (robot_rl/cli/compose/robot.py)
        return train_on_robot(cfg, task, learned, device, start_step)
    env = Envs(cfg, first_task(cfg, task), learned)
    teacher = distill_teacher(cfg, env)
    agent = build_agent(cfg.algo, env.obs_specs, env.action_dim, int(cfg.seed)).to(device)
    run_dir = prepare_run_dir(cfg, task)
    logger = Logger(run_dir, bool(cfg.logger.tensorboard), bool(cfg.logger.csv), resume_step=start_step)
    per_task = teacher_result = None
    try:
        if cfg.algo.kind == "distill":
            result, per_task, teacher_result = train_distill(cfg, env, agent, run_dir, logger, teacher)
            baseline = None
        elif cfg.algo.kind == "online":
            result, baseline = train_online(cfg, env, agent, learned, run_dir, logger)
        else:
            result, baseline = train_offline(cfg, env, agent, learned, run_dir, logger)
    finally:
        logger.close()
    artifact = export(cfg, env, agent, run_dir, task)
    print(write_report(cfg, task, run_dir, agent, result, baseline, logger.latest, artifact,
                       distilled=None if teacher is None else (teacher, per_task, teacher_result)))
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    return run_dir


def train_on_robot(cfg, task: str, learned, device, start_step: int | None) -> Path:
    from robot_rl.cli.compose.robot import train_robot
    from robot_rl.train.logger import Logger

    run_dir = prepare_run_dir(cfg, task)
    logger = Logger(run_dir, bool(cfg.logger.tensorboard), bool(cfg.logger.csv), resume_step=start_step)
    try:
        summary = train_robot(cfg, task, learned, device, run_dir, logger)
    finally:
        logger.close()
    evaluation = summary["eval"] or {}
    print(f"robot run {run_dir}: {summary['env_steps']} steps on the robot, evaluation success "
          f"{evaluation.get('success_rate', float('nan')):.2f} (reward model), ground truth "
          f"{summary['eval_task_success_rate'] if summary['eval_task_success_rate'] is not None else 'n/a'}; every "
          f"episode in {summary['store']}")
    return run_dir


def first_task(cfg, task: str) -> str:
    """The task the env is composed with: ``task``, or the first of a multi-task student's ``tasks``."""
    return str(cfg.tasks[0]) if cfg.get("tasks") else task


def distill_teacher(cfg, env: Envs) -> str | None:
    """algo=distill's teacher (``expert`` or an artifact dir), refused in one sentence when it
    cannot label this env; None for every other algorithm."""
    if cfg.algo.kind != "distill":
        return None
    from robot_rl.train.teachers import check_teacher, resolve_teacher

    teacher = resolve_teacher(cfg.teacher)
    check_teacher(teacher, env.tasks, env.spec)
    return teacher


def prepare_run_dir(cfg, task: str) -> Path:
    from omegaconf import OmegaConf

    from robot_rl.schema import writable_dir

    run_dir = writable_dir("run" if cfg.run else "out_dir", run_dir_of(cfg, task))
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    return run_dir


def resume_step(cfg, run_dir: Path) -> int | None:
    """The checkpoint step a resumed run continues from (metrics past it are dropped)."""
    from robot_rl.train.checkpoint import CheckpointError, checkpoint_path, read_checkpoint

    path = checkpoint_path(run_dir / "checkpoints") if cfg.resume else None
    if path is None:
        return None
    step = read_checkpoint(path).get("step")
    if not isinstance(step, int) or step < 0:
        raise CheckpointError(f"{path} has no valid step counter; it is not a complete robot_rl checkpoint.")
    return step


def export(cfg, env: Envs, agent, run_dir: Path, task: str, obs_specs: dict | None = None, module=None) -> Path:
    """The run's policy artifact (``run_dir/policy``); ``obs_specs`` and ``module`` where the
    policy's inputs are not the sim env's (a policy learned on a robot, its perception in the graph)."""
    from omegaconf import OmegaConf

    from robot_rl.train.artifact import export_agent
    from robot_rl.train.build import git_commit

    provenance = {"algo": str(cfg.algo.name), "run_dir": str(run_dir), "seed": int(cfg.seed), "tasks": env.tasks,
                  "teacher": cfg.get("teacher"),
                  "git_commit": git_commit(), "reward": reward_kind(cfg), "demos": cfg.demos, "data": cfg.data,
                  "config": OmegaConf.to_container(cfg, resolve=True)}
    obs_specs = env.obs_specs if obs_specs is None else obs_specs
    return export_agent(agent, obs_specs, run_dir / "policy", env.facts(",".join(env.tasks), list(obs_specs)),
                        provenance, OmegaConf.to_yaml(cfg, resolve=True), module)
