"""What a ``robot-rl train`` run is refused for before anything starts: values of the wrong type
or range, a run directory that cannot be used as asked, a store recorded for another task.
Each refusal is a ConfigError of one sentence naming the input and what was expected."""

from __future__ import annotations

from pathlib import Path

from robot_rl.config import ConfigError

from robot_rl.schema import as_bool, as_float, as_int

MAX_WORKERS = 64  # simulator subprocesses / torch threads; more is a typo that would swamp the machine


def offline_algos() -> list[str]:
    """The algo files of ``kind: offline`` (read from the group, so a new one is named too)."""
    from robot_rl.config import choices, load_group

    return [name for name in choices("algo") if str(load_group("algo", name).get("kind")) == "offline"]


def check_values(cfg) -> None:
    """Refuse (ConfigError, one sentence) a value of the wrong type or range before anything starts."""
    from robot_rl.schema import check_common

    check_common(cfg)
    as_int("torch_threads", cfg.torch_threads, minimum=1, maximum=MAX_WORKERS)
    as_bool("resume", cfg.resume)
    if cfg.max_episodes is not None:
        as_int("max_episodes", cfg.max_episodes, minimum=1)
    t, a = cfg.train, cfg.algo
    if str(a.kind) == "online" and cfg.data is not None:
        raise ConfigError(f"data={cfg.data} is read only by offline algorithms ({', '.join(offline_algos())}), and "
                          f"algo={a.name} learns online; expected demos=<store> for its demonstrations, or an offline algo.")
    check_distill(cfg)
    check_ray(cfg)
    check_privilege(cfg)
    if str(cfg.env.backend) == "ros":
        check_robot(cfg)
    if str(a.kind) == "online":
        as_int("train.total_steps", t.total_steps, minimum=1)
        as_int("algo.seed_steps", a.seed_steps, minimum=0)
        as_int("algo.utd", a.utd, minimum=1)
        as_float("algo.demo_fraction", a.demo_fraction, minimum=0.0)
        if float(a.demo_fraction) >= 1.0:
            raise ConfigError(f"algo.demo_fraction={a.demo_fraction} is not valid; expected a number in [0, 1).")
        if str(t.num_envs) != "auto":
            as_int("train.num_envs", t.num_envs, minimum=1, maximum=MAX_WORKERS)
    elif str(a.kind) == "offline":
        as_int("train.total_updates", t.total_updates, minimum=1)
    as_int("train.eval_episodes", t.eval_episodes, minimum=1)  # the final evaluation is the result
    as_int("algo.batch_size", a.batch_size, minimum=1)
    for key in ("eval_every", "video_episodes", "checkpoint_every"):
        as_int(f"train.{key}", t[key], minimum=0)
    as_int("train.log_every", t.log_every, minimum=1)
    as_int("baseline.bc_updates", cfg.baseline.bc_updates, minimum=1)
    as_bool("baseline.bc", cfg.baseline.bc)
    for key in ("tensorboard", "csv", "progress_bar"):
        if key in cfg.logger:
            as_bool(f"logger.{key}", cfg.logger[key])
    from robot_rl.contracts import CAMERAS

    if isinstance(a.cameras, str) or not all(str(c) in CAMERAS for c in a.cameras):
        raise ConfigError(f"algo.cameras={a.cameras} is not valid; expected a list drawn from {', '.join(CAMERAS)}.")
    for key in ("demos", "data"):
        path = cfg[key]
        if path is not None and not isinstance(path, str):
            raise ConfigError(f"{key}={path} is not valid; expected one Zarr store path.")
        if path and "://" not in path and not Path(path).exists():  # a URL is checked when it is opened
            raise ConfigError(f"{key}={path} does not exist; expected a Zarr episode store (see `robot-rl record`).")


def check_distill(cfg) -> None:
    """algo=distill's values and teacher (``teacher=`` and ``task=[...]`` belong to it alone)."""
    a = cfg.algo
    if str(a.kind) != "distill":
        for key, what in (("teacher", "teacher"), ("tasks", "task=[...]")):
            if cfg.get(key) is not None:
                raise ConfigError(f"{what} is read only by algo=distill, and algo={a.name} was chosen; expected "
                                  f"algo=distill, or drop {what}.")
        return
    from robot_rl.train.teachers import resolve_teacher

    resolve_teacher(cfg.teacher)  # a missing or non-artifact directory, before anything starts
    if cfg.data is not None or cfg.demos is not None:
        raise ConfigError("algo=distill collects its own data from the teacher; drop data=/demos=.")
    for key in ("rounds", "episodes_per_round", "updates_per_round", "eval_every"):
        as_int(f"algo.{key}", a[key], minimum=1)
    as_float("algo.beta0", a.beta0, minimum=0.0, maximum=1.0)
    as_float("algo.beta_decay", a.beta_decay, minimum=0.0, maximum=1.0)
    if str(cfg.train.num_envs) != "auto":
        as_int("train.num_envs", cfg.train.num_envs, minimum=1, maximum=MAX_WORKERS)
    from robot_rl.config import choices

    presets = [a.collect_randomize] if isinstance(a.collect_randomize, str) else list(a.collect_randomize)
    if not presets or any(str(p) not in choices("randomize") for p in presets):
        raise ConfigError(f"algo.collect_randomize={a.collect_randomize} is not valid; expected a randomize preset "
                          f"or a list of them, drawn from {', '.join(choices('randomize'))}.")
    if not list(a.cameras):
        raise ConfigError("algo.cameras=[] leaves the student blind; expected one or more of front, wrist.")


def check_privilege(cfg) -> None:
    """``privilege.*``: a curriculum that ends without help, in a sim that can give it."""
    p = cfg.privilege
    start = as_float("privilege.grasp_assist", p.grasp_assist, minimum=0.0, maximum=1.0)
    hold, anneal = as_int("privilege.hold_steps", p.hold_steps, minimum=0), as_int("privilege.anneal_steps",
                                                                                     p.anneal_steps, minimum=0)
    if not start:
        return
    if str(cfg.env.backend) == "ros":
        raise ConfigError("privilege.grasp_assist is help only the simulator can give, and env=ros is a real arm; "
                          "drop privilege.*.")
    if str(cfg.algo.kind) != "online":
        raise ConfigError(f"privilege.grasp_assist helps online RL as it collects in the sim, and algo={cfg.algo.name} "
                          f"is {cfg.algo.kind}; drop privilege.* or choose an online algo.")
    total = as_int("train.total_steps", cfg.train.total_steps, minimum=1)
    if hold + anneal >= total:
        raise ConfigError(f"privilege.hold_steps + privilege.anneal_steps ({hold + anneal}) must be less than "
                          f"train.total_steps ({total}): the policy has to finish training without help a real arm "
                          "cannot give.")


def run_dir_of(cfg, task: str) -> Path:
    from robot_rl.train.build import default_run_dir

    return Path(cfg.run) if cfg.run else default_run_dir(cfg.out_dir, task, cfg.algo.name, int(cfg.seed))


def check_run_dir(cfg, task: str) -> Path:
    """The run directory, refused (one sentence) when it cannot be used as asked; creates nothing."""
    from robot_rl.train.checkpoint import checkpoint_path

    run_dir = run_dir_of(cfg, task)
    where = "run=" if cfg.run else "the default run directory"
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"{where} {run_dir} is a file; expected a run directory.")
    found = checkpoint_path(run_dir / "checkpoints") if run_dir.is_dir() else None
    if as_bool("resume", cfg.resume) and found is None:
        what = "does not exist" if not run_dir.exists() else "has no checkpoint (checkpoints/ is empty or missing)"
        raise ConfigError(f"resume=true but {where} {run_dir} {what}; expected the directory of an earlier "
                          "`robot-rl train` run (pass it as run=DIR), or drop resume=true to start a new run.")
    if found is not None and not as_bool("resume", cfg.resume):
        raise ConfigError(f"{run_dir} already holds a run; pass resume=true to continue it or choose another run=.")
    parent = next((p for p in [run_dir, *run_dir.parents] if p.exists()), Path("."))
    import os

    if not parent.is_dir() or not os.access(parent, os.W_OK | os.X_OK):
        raise ConfigError(f"cannot write the run directory {run_dir}: {parent} is not a writable directory; "
                          "choose another run= or out_dir=.")
    return run_dir


def check_store_task(key: str, path: str, task: str) -> None:
    """Refuse a store whose episodes were recorded for another task than the one being trained."""
    from robot_rl.data import EpisodeStore

    with EpisodeStore.open(path) as store:
        recorded = {str(store.attrs.get("task") or "")} | {i.task for i in store.episode_infos()}
    recorded.discard("")
    if recorded and recorded != {task}:
        raise ConfigError(f"{key}={path} was recorded for task {', '.join(sorted(recorded))}, not {task}; "
                          f"expected a store recorded with task={task} (or train with task={min(recorded)}).")


def check_ray(cfg) -> None:
    """``ray.*``: valid values, and actors only where the run collects online."""
    from robot_rl.distributed.session import ray_config

    config = ray_config(cfg.ray)
    if config.actors and str(cfg.algo.kind) not in ("online", "distill"):
        raise ConfigError(f"ray.actors={config.actors} feeds a learner that collects (algo=sac, drq or distill), and "
                          f"algo={cfg.algo.name} learns from a store; drop ray.actors.")
    if config.actors and str(cfg.train.num_envs) not in ("auto", "1"):
        raise ConfigError(f"ray.actors={config.actors} replaces train.num_envs={cfg.train.num_envs} (each actor runs one "
                          "env); drop train.num_envs.")


ENCODERS = ("reward", "student", "none")
DEVICES = ("none", "keyboard", "spacemouse", "gamepad", "scripted")


def check_robot(cfg) -> None:
    """Refuse (ConfigError, one sentence) what env=ros cannot do, before anything starts."""
    r = cfg.ros
    sim = as_bool("ros.sim", r.sim)
    if str(cfg.algo.kind) != "online":
        raise ConfigError(f"env=ros learns online on the robot, and algo={cfg.algo.name} is {cfg.algo.kind}; "
                          "expected algo=sac (or drq with ros.encoder=none).")
    if "horizon" in cfg.algo.agent:  # a model-based planner: its plan outlasts a control tick on a CPU
        raise ConfigError(f"env=ros learns at the robot's control rate, and algo={cfg.algo.name} plans through its "
                          "model at every step; expected algo=sac (or drq with ros.encoder=none).")
    if "sequence_length" in cfg.algo.agent:  # the robot's learner thread samples single transitions
        raise ConfigError(f"env=ros does not train algo={cfg.algo.name} yet (it learns from runs of transitions, which "
                          "the robot's learner does not sample); expected algo=sac (or drq with ros.encoder=none).")
    if int(cfg.ray.actors or 0):
        raise ConfigError("env=ros runs one robot in this process; drop ray.actors (one robot is one actor).")
    if str(r.encoder) not in ENCODERS:
        raise ConfigError(f"ros.encoder={r.encoder} is unknown; expected one of {', '.join(ENCODERS)}.")
    if str(r.intervention) not in DEVICES:
        raise ConfigError(f"ros.intervention={r.intervention} is unknown; expected one of {', '.join(DEVICES)}.")
    if r.reset_mode is not None and str(r.reset_mode) not in ("auto", "operator"):
        raise ConfigError(f"ros.reset_mode={r.reset_mode} is unknown; expected auto or operator.")
    if str(r.intervention) == "scripted" and not sim:
        raise ConfigError("ros.intervention=scripted steers by the simulator's ground truth; it needs ros.sim=true "
                          "(on a real arm: gamepad, keyboard or spacemouse).")
    as_int("ros.scripted_steps", r.scripted_steps, minimum=0)
    as_bool("ros.student_actor", r.student_actor)
    as_int("ros.success_frames", r.success_frames, minimum=1)
    remaps(r.remap)
    if str(r.command_interface) not in ("joint_trajectory", "position_array"):
        raise ConfigError(f"ros.command_interface={r.command_interface} is unknown; expected joint_trajectory or "
                          "position_array.")
    as_float("ros.handback_s", r.handback_s, minimum=0.0)
    as_float("ros.connection_timeout_s", r.connection_timeout_s, minimum=0.1)
    if r.episode_steps is not None:
        as_int("ros.episode_steps", r.episode_steps, minimum=1)
    if r.domain_id is not None:
        as_int("ros.domain_id", r.domain_id, minimum=0, maximum=232)
    if cfg.demos:
        raise ConfigError("env=ros does not read demos= yet; the operator's interventions (ros.intervention) are "
                          "its demonstrations.")
    if str(cfg.reward.get("kind", "")) == "gt" and not sim:
        raise ConfigError("reward=gt on a real arm has no ground truth; expected reward=vlm reward.model_path=<model> "
                          "(ros.sim=true reads the sim bridge's task/progress instead).")
    if str(r.encoder) == "student" and not r.student:
        raise ConfigError("ros.encoder=student needs ros.student=<run directory of robot-rl train algo=distill>.")
    as_int("ros.actor_warmup", r.actor_warmup, minimum=0)
    as_float("ros.student_std", r.student_std, minimum=0.01, maximum=1.0)
    if str(r.encoder) == "reward" and not (r.encoder_path or cfg.reward.get("model_path")):
        raise ConfigError("ros.encoder=reward needs a reward model: give reward.model_path=<model> (reward=vlm) or "
                          "ros.encoder_path=<model>; ros.encoder=none gives the agent raw frames.")


def remaps(values) -> tuple[tuple[str, str], ...]:
    """``ros.remap``'s ``FROM:=TO`` entries as pairs, or one sentence naming a malformed one."""
    pairs = []
    for entry in list(values or []):
        src, sep, dst = str(entry).partition(":=")
        if not sep or not src.strip() or not dst.strip():
            raise ConfigError(f"ros.remap entry {entry!r} is not FROM:=TO; expected e.g. "
                              "ros.remap=['joint_states:=/franka/joint_states'].")
        pairs.append((src.strip(), dst.strip()))
    return tuple(pairs)
