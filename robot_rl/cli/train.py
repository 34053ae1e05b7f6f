"""usage: robot-rl train [-m] [key=value ...]

Train a policy in the sim (or from a Zarr store) and end with an evaluated, exported policy.

  robot-rl train task=reach algo=sac train.total_steps=20000
  robot-rl train task=lift algo=sac demos=data/lift_demos.zarr
  robot-rl train task=lift algo=sac reward=vlm reward.model_path=runs/rm demos=data/lift_demos.zarr
  robot-rl train task=lift algo=iql data=data/lift_play.zarr reward=vlm reward.model_path=runs/rm
  robot-rl train task=lift algo=bc data=data/lift_demos.zarr
  robot-rl train -m task=reach seed=0,1,2            # a sweep: one run per combination
  robot-rl train run=runs/2026-11-21/lift_sac_s0 resume=true

Config groups (choose with group=name): task, robot, randomize, algo (sac | drq | iql | bc),
reward (gt | vlm), logger (default | csv). Main options:
  seed=0                 seed of networks, envs and sampling
  run=DIR                run directory (default <out_dir>/<date>/<task>_<algo>_s<seed>)
  resume=true            continue `run` from its last checkpoint: networks, optimisers, replay
                         buffer, counters and RNGs; the episodes in progress at the kill are
                         restarted and the steps after the checkpoint redone (a larger
                         train.total_steps extends a finished run)
  demos=STORE            demonstrations, sampled 50/50 with online data (RLPD); also BC baseline
  data=STORE             dataset for offline algorithms (iql, bc)
  max_episodes=N         read at most N episodes of demos/data
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
  logger=csv             no TensorBoard files
  torch_threads=1        CPU threads for torch (1 is fastest for these small networks)

A run directory holds config.yaml, metrics/*.csv and tb/ (train/ eval/ losses/), checkpoints/,
videos/, report.md and report.json, and policy/ (the exported artifact: policy.onnx, policy.pt,
policy.yaml, config.yaml). The env renders only the cameras the policy or reward model needs.
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

from robot_rl.cli.train_checks import check_run_dir, check_store_task, check_values, run_dir_of
from robot_rl.config import CONF_DIR, ConfigError, choices, compose, one_line

GROUPS = ("task", "robot", "randomize", "algo", "reward", "logger")


def run(argv: list[str]) -> int:
    if any(a in ("-h", "--help") for a in argv):
        print(__doc__)
        return 0
    multirun = any(a in ("-m", "--multirun") for a in argv)
    # reward.path= (as in the issue) is the reward group's model_path.
    overrides = [("reward.model_path=" + a.split("=", 1)[1]) if a.startswith("reward.path=") else a
                 for a in argv if a not in ("-m", "--multirun")]
    try:
        jobs = expand_sweep(overrides) if multirun else [overrides]
        configs = [compose(job, config_name="train") for job in jobs]
        for cfg in configs:  # every combination of a sweep is checked before the first one runs
            check_values(cfg)
        for job, cfg in zip(jobs, configs):
            run_dir = train(cfg, chosen(job, "task"))
            print(f"run: {run_dir}")
    except (ConfigError, ValueError, FileNotFoundError) as error:
        print(f"robot-rl train: {with_choices(one_line(error))}", file=sys.stderr)
        return 2
    return 0


def expand_sweep(overrides: list[str]) -> list[list[str]]:
    """``seed=0,1,2 task=reach,lift`` -> one override list per combination (Hydra's basic sweeper)."""
    axes = []
    for item in overrides:
        key, sep, value = item.partition("=")
        if sep and "," in value and not value.lstrip().startswith(("[", "{", "'", '"')):
            axes.append([f"{key}={v}" for v in value.split(",")])
        else:
            axes.append([item])
    return [list(combo) for combo in itertools.product(*axes)]


def chosen(overrides: list[str], group: str) -> str:
    """The option picked for ``group`` on the command line, else the default in the config tree."""
    picks = [o.split("=", 1)[1] for o in overrides if o.split("=", 1)[0] in (group, f"+{group}")]
    if picks:
        return picks[-1]
    from omegaconf import OmegaConf

    for entry in OmegaConf.load(CONF_DIR / "config.yaml").defaults:
        if isinstance(entry, dict) or hasattr(entry, "keys"):
            if group in entry:
                return str(entry[group])
    raise ConfigError(f"no default {group} in the config tree.")


def with_choices(message: str) -> str:
    """Add the valid options to an error about an unknown choice in one of the config groups."""
    for group in GROUPS:
        if f"'{group}/" in message and "Valid" not in message:
            return f"{message.rstrip('.')}. Valid {group} choices: {', '.join(choices(group))}."
    return message


# --- composition: config -> env factories, agent, buffers, logger -> trainer -> artifact -------
def train(cfg, task: str) -> Path:
    """One training run from a composed config; returns its run directory."""
    import torch
    from omegaconf import OmegaConf

    from robot_rl.train.logger import Logger

    if cfg.algo.kind == "offline" and not (cfg.data or cfg.demos):
        raise ValueError(f"algo={cfg.algo.name} learns offline; give data=<Zarr store> (or demos=<store>).")
    run_dir = check_run_dir(cfg, task)
    start_step = resume_step(cfg, run_dir)  # a damaged checkpoint is refused before anything starts
    for key in ("demos", "data"):
        if cfg[key]:
            check_store_task(key, str(cfg[key]), task)
    torch.set_num_threads(int(cfg.torch_threads))
    model = load_reward_model(cfg)
    env = Envs(cfg, task, model)
    learned = learned_reward(cfg, model, env.kind)
    agent = build_agent(cfg.algo, env.obs_specs, env.action_dim, int(cfg.seed))
    run_dir = prepare_run_dir(cfg, task)
    logger = Logger(run_dir, bool(cfg.logger.tensorboard), bool(cfg.logger.csv), resume_step=start_step)
    try:
        if cfg.algo.kind == "online":
            result, baseline = train_online(cfg, env, agent, learned, run_dir, logger)
        else:
            result, baseline = train_offline(cfg, env, agent, learned, run_dir, logger)
    finally:
        logger.close()
    artifact = export(cfg, env, agent, run_dir, task)
    write_report(cfg, task, run_dir, agent, result, baseline, logger.latest, artifact)
    OmegaConf.save(cfg, run_dir / "config.yaml", resolve=True)
    return run_dir


class Envs:
    """Env factories (picklable, for subprocesses) and the facts a policy needs about the env."""

    def __init__(self, cfg, task: str, reward_model=None) -> None:
        from functools import partial

        from omegaconf import OmegaConf

        import sim
        from robot_rl.train.build import obs_specs_of, policy_obs_keys

        env_kwargs = OmegaConf.to_container(cfg.env, resolve=True)
        reward_cameras = list(reward_model.cameras) if reward_model is not None else []
        if reward_model is not None:  # the model scores frames at the size it was trained on
            env_kwargs["image_size"] = int(reward_model.config.image_size)
        env_kwargs["cameras"] = sorted(set(env_kwargs.get("cameras", [])) | set(cfg.algo.cameras) | set(reward_cameras))
        self.make = partial(sim.load, task, cfg.robot.name, cfg.randomize.name, **env_kwargs)
        probe = self.make()
        try:
            self.spec, self.controller = probe.env_spec, probe.config.controller
        finally:
            probe.close()
        self.kind, self.reward_cameras = str(cfg.env.reward), reward_cameras
        self.terminate_on_success = bool(cfg.env.terminate_on_success)
        self.obs_keys = policy_obs_keys(str(cfg.algo.obs), list(cfg.algo.cameras), self.spec.observations)
        self.obs_specs = obs_specs_of(self.spec.observations, self.obs_keys)
        self.action_dim = int(self.spec.action.shape[0])

    def facts(self, task: str) -> dict:
        from dataclasses import asdict

        scaling = {k: v for k, v in asdict(self.controller).items() if k != "action_space"}
        state_policy = not any(k.startswith("obs/images/") for k in self.obs_keys)
        handling = ("not an input: obs/object lists the instructed (target) object first" if state_policy else
                    "not an input: the policy was trained on the env's sampled instructions without seeing them")
        return {"action_dim": self.action_dim, "action_space": self.spec.action_space, "robot": self.spec.robot,
                "joint_names": list(self.spec.joint_names), "control_rate_hz": self.spec.control_rate_hz,
                "task": task, "scaling": scaling, "instruction": {"conditioned": False, "handling": handling}}


def prepare_run_dir(cfg, task: str) -> Path:
    from omegaconf import OmegaConf

    from robot_rl.config import writable_dir

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


def build_agent(algo, obs_specs, action_dim: int, seed: int):
    import dataclasses
    import importlib

    from omegaconf import OmegaConf

    from robot_rl.config import check_fields
    from robot_rl.train.build import make_agent

    params = OmegaConf.to_container(algo.agent, resolve=True)
    module = importlib.import_module(str(algo._target_).rpartition(".")[0])
    for value in vars(module).values():  # the algorithm's XConfig dataclass: its defaults give the types
        if isinstance(value, type) and dataclasses.is_dataclass(value) and value.__name__.endswith("Config"):
            check_fields(params, value, "algo.agent")
    try:
        return make_agent(str(algo._target_), obs_specs, action_dim, params, seed)
    except TypeError as error:  # an unknown algo.agent key: the dataclass names it
        raise ConfigError(f"algo.agent is not valid for algo={algo.name} ({error}).") from None


def reward_kind(cfg) -> str:
    """gt | vlm, from the reward group file (``kind``; ``name`` accepted too)."""
    return str(cfg.reward.get("kind", cfg.reward.get("name", "gt")))


def load_reward_model(cfg):
    """``reward_models.load(reward.model_path)`` for reward=vlm (imported only then), else None."""
    if reward_kind(cfg) != "vlm":
        return None
    path = cfg.reward.get("model_path") or cfg.reward.get("path")
    if not path:
        raise ValueError("reward=vlm needs reward.model_path=<directory of a trained reward model>.")
    if not Path(path).exists():
        raise FileNotFoundError(f"reward model {path} does not exist.")
    import reward_models

    return reward_models.load(path, device=str(cfg.reward.get("device", "auto")))


def learned_reward(cfg, model, kind: str):
    """The learned reward: the model's scores through the group's ``shaping`` terms (when given)."""
    if model is None:
        return None
    from robot_rl.train.rewards import LearnedReward

    shaper = None
    if cfg.reward.get("shaping") is not None:
        from reward_models import RewardShaper

        shaping = cfg.reward.shaping
        shaper = RewardShaper(float(shaping.gamma), float(shaping.shaping_scale), float(shaping.success_weight),
                              float(shaping.sparse_weight), float(shaping.sparse_threshold))
    return LearnedReward(model.score, list(model.cameras), kind, shaper=shaper)


def episode_reward(env: Envs, learned):
    """How stored episodes are rewarded: the learned model, else the sim's recorded ground truth."""
    from robot_rl.train.rewards import stored_gt_reward

    if learned is not None:
        return learned.label_episode
    return lambda episode, instruction: stored_gt_reward(episode, env.kind)


def load_data(cfg, path: str, env: Envs, learned):
    from robot_rl.contracts import image_key
    from robot_rl.train.demos import load_store

    extra = tuple(image_key(c) for c in env.reward_cameras) if learned is not None else ()
    return load_store(path, env.obs_specs, env.action_dim, episode_reward(env, learned), env.terminate_on_success,
                      cfg.max_episodes, int(cfg.seed), extra_keys=extra, action_space=env.spec.action_space)


def train_online(cfg, env: Envs, agent, learned, run_dir: Path, logger):
    from robot_rl.train.online import OnlineConfig, OnlineTrainer
    from robot_rl.train.replay import ReplayBuffer

    demos = load_data(cfg, cfg.demos, env, learned) if cfg.demos else None
    if learned is not None and demos is not None:  # how well the model labelled the demonstrations
        logger.log({k.replace("train/", "train/demo_"): v for k, v in learned.agreement.metrics().items()}, 0)
        learned.agreement.reset()
    t, a = cfg.train, cfg.algo
    config = OnlineConfig(total_steps=int(t.total_steps), seed_steps=int(a.seed_steps), batch_size=int(a.batch_size),
                          utd=int(a.utd), demo_fraction=float(a.demo_fraction), num_envs=num_envs(t.num_envs),
                          eval_every=int(t.eval_every), eval_episodes=int(t.eval_episodes),
                          video_episodes=int(t.video_episodes), checkpoint_every=int(t.checkpoint_every),
                          log_every=int(t.log_every), normalize_obs=bool(a.normalize_obs), seed=int(cfg.seed),
                          video_fps=float(env.spec.control_rate_hz), progress_bar=bool(cfg.logger.progress_bar))
    capacity = min(int(a.buffer_capacity), int(t.total_steps))
    buffer = ReplayBuffer(env.obs_specs, env.action_dim, capacity, seed=int(cfg.seed))
    trainer = OnlineTrainer(agent, env.make, env.make, config, run_dir, logger, buffer, demos, learned,
                            resume=bool(cfg.resume))
    result = trainer.run()
    baseline = bc_baseline(cfg, env, demos, run_dir) if demos is not None and cfg.baseline.bc else None
    return result, baseline


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
    if learned is not None:  # how well the model labelled the dataset
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
    from robot_rl.train.logger import Logger
    from robot_rl.train.offline import OfflineTrainer

    algo = OmegaConf.create(load_group("algo", "bc"))
    agent = build_agent(algo, env.obs_specs, env.action_dim, int(cfg.seed))
    updates = int(cfg.baseline.bc_updates)
    config = offline_config(cfg, env, updates, 0, 0, int(algo.batch_size))
    config.checkpoint_every = updates
    logger = Logger(run_dir / "baseline_bc", tensorboard=False)
    try:
        return OfflineTrainer(agent, demos, env.make, config, run_dir / "baseline_bc", logger).run()
    finally:
        logger.close()


def export(cfg, env: Envs, agent, run_dir: Path, task: str) -> Path:
    from omegaconf import OmegaConf

    from robot_rl.train.artifact import export_agent
    from robot_rl.train.build import git_commit

    provenance = {"algo": str(cfg.algo.name), "run_dir": str(run_dir), "seed": int(cfg.seed),
                  "git_commit": git_commit(), "reward": reward_kind(cfg), "demos": cfg.demos, "data": cfg.data,
                  "config": OmegaConf.to_container(cfg, resolve=True)}
    return export_agent(agent, env.obs_specs, run_dir / "policy", env.facts(task), provenance,
                        OmegaConf.to_yaml(cfg, resolve=True))


def write_report(cfg, task: str, run_dir: Path, agent, result, baseline, latest: dict, artifact: Path) -> None:
    import json

    report = {"task": task, "algo": str(cfg.algo.name), "seed": int(cfg.seed), "reward": reward_kind(cfg),
              "demos": cfg.demos, "data": cfg.data, "updates": agent.num_updates,
              "env_steps": int(latest.get("train/env_steps", 0)), "wall_s": latest.get("eval/wall_s"),
              "eval": None if result is None else {"success_rate": result.success_rate, "return": result.mean_return,
                                                   "episodes": result.episodes},
              "bc_baseline": None if baseline is None else {"success_rate": baseline.success_rate,
                                                           "return": baseline.mean_return},
              "reward_agreement": {k: v for k, v in latest.items() if k.startswith("train/reward_")},
              "artifact": str(artifact), "videos": sorted(str(p) for p in (run_dir / "videos").glob("*.mp4"))}
    (run_dir / "report.json").write_text(json.dumps(report, indent=2))
    (run_dir / "report.md").write_text(report_markdown(report))
    print(report_markdown(report))


def report_markdown(r: dict) -> str:
    def row(name: str, e: dict | None) -> str:
        return f"| {name} | {e['success_rate']:.2f} | {e['return']:.1f} |" if e else f"| {name} | - | - |"

    lines = [f"# {r['task']} / {r['algo']} (seed {r['seed']}, reward {r['reward']})", "",
             f"env steps: {r['env_steps']}, updates: {r['updates']}, wall time: {r['wall_s'] or 0:.0f} s", "",
             "| policy | success rate | return |", "|---|---|---|", row(r["algo"], r["eval"])]
    lines.append(row("BC (same data)", r["bc_baseline"]) if r["bc_baseline"] else
                 "| BC | not run (no demos=/data= given, algo=bc itself, or baseline.bc=false) | |")
    if r["reward_agreement"]:
        lines += ["", "learned vs ground-truth reward: " + ", ".join(f"{k}={v:.3f}" for k, v in r["reward_agreement"].items())]
    lines += ["", f"policy artifact: {r['artifact']}"] + [f"video: {v}" for v in r["videos"]]
    return "\n".join(lines) + "\n"
