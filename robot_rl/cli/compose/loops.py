"""The training loops, composed from the train config: demonstrations or a dataset loaded and
rewarded, the online (replay) or offline trainer configured and run, and the BC baseline
trained beside it on the same data."""

from __future__ import annotations

from pathlib import Path

from robot_rl.cli.compose.env import Envs


def load_data(cfg, path: str, env: Envs, learned):
    from robot_rl.contracts import image_key
    from robot_rl.train.demos import load_store

    extra = tuple(image_key(c) for c in env.reward_cameras)
    return load_store(path, env.obs_specs, env.action_dim, learned.label_episode, env.terminate_on_success,
                      cfg.max_episodes, int(cfg.seed), extra_keys=extra, action_space=env.spec.action_space)


def train_online(cfg, env: Envs, agent, learned, run_dir: Path, logger):
    from robot_rl.distributed.session import ray_config
    from robot_rl.train.online import OnlineConfig, OnlineTrainer, PrivilegeSchedule
    from robot_rl.train.replay import ReplayBuffer

    demos = load_data(cfg, cfg.demos, env, learned) if cfg.demos else None
    if learned.agreement is not None and demos is not None:  # how well the model labelled the demonstrations
        logger.log({k.replace("train/", "train/demo_"): v for k, v in learned.agreement.metrics().items()}, 0)
        learned.agreement.reset()
    t, a = cfg.train, cfg.algo
    config = OnlineConfig(total_steps=int(t.total_steps), seed_steps=int(a.seed_steps), batch_size=int(a.batch_size),
                          utd=int(a.utd), demo_fraction=float(a.demo_fraction), num_envs=num_envs(t.num_envs),
                          eval_every=int(t.eval_every), eval_episodes=int(t.eval_episodes),
                          video_episodes=int(t.video_episodes), checkpoint_every=int(t.checkpoint_every),
                          log_every=int(t.log_every), normalize_obs=bool(a.normalize_obs), seed=int(cfg.seed),
                          video_fps=float(env.spec.control_rate_hz), progress_bar=bool(cfg.logger.progress_bar),
                          privilege=PrivilegeSchedule(float(cfg.privilege.grasp_assist), int(cfg.privilege.hold_steps),
                                                      int(cfg.privilege.anneal_steps)))
    ray_cfg = ray_config(cfg.ray)
    # Ray actors commit whole episodes, so a run can end up to an episode (and a chunk) per actor
    # past total_steps: room for those, or the buffer would overwrite its first steps.
    overshoot = ray_cfg.actors * (env.episode_steps + ray_cfg.chunk_steps)
    capacity = min(int(a.buffer_capacity), int(t.total_steps) + overshoot)
    buffer = ReplayBuffer(env.obs_specs, env.action_dim, capacity, seed=int(cfg.seed))
    args = (agent, env.make, env.make, config, run_dir, logger, buffer, demos, learned)
    if ray_cfg.actors:
        result = train_on_ray(cfg, env, args, ray_cfg)
    else:
        collect = env.collecting(config.num_envs, learned)
        result = OnlineTrainer(agent, collect, *args[2:], resume=bool(cfg.resume)).run()
    baseline = bc_baseline(cfg, env, demos, run_dir) if demos is not None and cfg.baseline.bc else None
    return result, baseline


def train_on_ray(cfg, env: Envs, args: tuple, ray_cfg):
    """The online run with ``ray.actors`` env actors feeding this process's learner
    (robot_rl.distributed.learner), on a local Ray instance or the cluster at ``ray.address``."""
    from functools import partial

    from omegaconf import OmegaConf

    from robot_rl.distributed.learner import ActorSpec, DistributedTrainer
    from robot_rl.distributed.session import ray_session
    from robot_rl.train.build import build_agent

    make_agent = partial(build_agent, cfg.algo, env.obs_specs, env.action_dim, int(cfg.seed))
    reward = OmegaConf.to_container(cfg.reward, resolve=True)
    spec = ActorSpec(env.make, make_agent, list(env.obs_keys), reward, str(cfg.env.reward), int(cfg.torch_threads))
    with ray_session(ray_cfg):
        trainer = DistributedTrainer(*args, resume=bool(cfg.resume), ray_config=ray_cfg, actor_spec=spec)
        return trainer.run()


def num_envs(value) -> int:
    """``auto``: one simulator process per two cores (the learner needs the rest), at most 8."""
    if str(value) == "auto":
        import os

        return max(1, min(8, (os.cpu_count() or 2) // 2))
    return int(value)


def offline_config(cfg, env: Envs, total_updates: int, eval_every: int, video_episodes: int, batch_size: int):
    from robot_rl.train.offline import OfflineConfig

    t = cfg.train
    return OfflineConfig(total_updates=total_updates, batch_size=batch_size, eval_every=eval_every,
                         eval_episodes=int(t.eval_episodes), video_episodes=video_episodes,
                         checkpoint_every=int(t.checkpoint_every), log_every=int(t.log_every),
                         normalize_obs=bool(cfg.algo.normalize_obs), seed=int(cfg.seed),
                         video_fps=float(env.spec.control_rate_hz), progress_bar=bool(cfg.logger.progress_bar))


def train_offline(cfg, env: Envs, agent, learned, run_dir: Path, logger):
    from robot_rl.train.offline import OfflineTrainer

    dataset = load_data(cfg, cfg.data or cfg.demos, env, learned)
    if learned.agreement is not None:  # how well the model labelled the dataset
        logger.log(learned.agreement.metrics(), 0)
    config = offline_config(cfg, env, int(cfg.train.total_updates), int(cfg.train.eval_every),
                            int(cfg.train.video_episodes), int(cfg.algo.batch_size))
    result = OfflineTrainer(agent, dataset, env.make, config, run_dir, logger, resume=bool(cfg.resume)).run()
    baseline = bc_baseline(cfg, env, dataset, run_dir) if cfg.algo.name != "bc" and cfg.baseline.bc else None
    return result, baseline


def bc_baseline(cfg, env: Envs, demos, run_dir: Path):
    """BC on the same demonstrations, evaluated the same way: the comparison every report carries."""
    from omegaconf import OmegaConf

    from robot_rl.config import load_group
    from robot_rl.train.build import build_agent
    from robot_rl.train.device import resolve_device
    from robot_rl.train.logger import Logger
    from robot_rl.train.offline import OfflineTrainer

    algo = OmegaConf.create(load_group("algo", "bc"))
    agent = build_agent(algo, env.obs_specs, env.action_dim, int(cfg.seed)).to(resolve_device(str(cfg.device)))
    updates = int(cfg.baseline.bc_updates)
    config = offline_config(cfg, env, updates, 0, 0, int(algo.batch_size))
    config.checkpoint_every = updates
    logger = Logger(run_dir / "baseline_bc", tensorboard=False)
    try:
        return OfflineTrainer(agent, demos, env.make, config, run_dir / "baseline_bc", logger).run()
    finally:
        logger.close()


def privileged_dim(env: Envs) -> int:
    """Width of the privileged object state every task's env has (the student's auxiliary
    target, the same width for every task); 0 when the env has none."""
    from robot_rl.contracts import OBS_OBJECT

    spec = env.spec.observations.get(OBS_OBJECT)
    return int(spec.shape[0]) if spec is not None else 0


def train_distill(cfg, env: Envs, agent, run_dir: Path, logger, teacher: str):
    """DAgger from ``teacher`` (``expert`` or an artifact dir): the student's final evaluation per
    task, and the teacher's on the same episodes (``robot_rl.train.distill``)."""
    from robot_rl.train.distill import DistillConfig, DistillTrainer, evaluate_teacher

    t, a = cfg.train, cfg.algo
    config = DistillConfig(rounds=int(a.rounds), episodes_per_round=int(a.episodes_per_round),
                           updates_per_round=int(a.updates_per_round), batch_size=int(a.batch_size),
                           beta0=float(a.beta0), beta_decay=float(a.beta_decay), eval_every=int(a.eval_every),
                           checkpoint_every=1, log_every=1, eval_episodes=int(t.eval_episodes),
                           video_episodes=int(t.video_episodes), normalize_obs=bool(a.normalize_obs),
                           seed=int(cfg.seed), video_fps=float(env.spec.control_rate_hz),
                           progress_bar=bool(cfg.logger.progress_bar))
    from robot_rl.distributed.session import ray_config

    ray_cfg = ray_config(cfg.ray)
    n = ray_cfg.actors or num_envs(t.num_envs)
    collect = [env.student(a.collect_randomize, teacher, start=i) for i in range(n)]  # env i starts at task/preset i
    evals = {task: env.student(str(cfg.randomize.name), tasks=[task]) for task in env.tasks}
    single = len(env.tasks) == 1
    attrs = {"control_rate_hz": env.spec.control_rate_hz, "robot": env.spec.robot, "action_space": env.spec.action_space,
             "task": env.tasks[0] if single else "", "joint_names": list(env.spec.joint_names),
             "cameras": [k.rsplit("/", 1)[1] for k in env.obs_keys if k.startswith("obs/images/")]}
    make_collector = None
    if ray_cfg.actors:  # DAgger rollouts on Ray actors (robot_rl.distributed.dagger)
        from functools import partial

        from robot_rl.distributed.dagger import RayDaggerCollector
        from robot_rl.train.build import build_agent

        make_agent = partial(build_agent, cfg.algo, env.obs_specs, env.action_dim, int(cfg.seed))
        make_collector = partial(RayDaggerCollector, agent=agent, make_agent=make_agent, config=ray_cfg,
                                 torch_threads=int(cfg.torch_threads))
    trainer = DistillTrainer(agent, env.obs_specs, env.action_dim, collect, evals, config, run_dir, logger, attrs,
                             "scripted" if teacher == "expert" else "policy", resume=bool(cfg.resume),
                             device=str(getattr(agent, "device", "cpu")), aux_dim=privileged_dim(env),
                             make_collector=make_collector)
    if ray_cfg.actors:
        from robot_rl.distributed.session import ray_session

        with ray_session(ray_cfg):
            result = trainer.run()
    else:
        result = trainer.run()
    teachers = {task: env.student(str(cfg.randomize.name), teacher, tasks=[task]) for task in env.tasks}
    return result, trainer.per_task, evaluate_teacher(teachers, config)
