"""What ``robot-rl eval`` refuses before any episode runs: options of the wrong type or range,
a run or artifact directory that is missing or damaged, a config.yaml that is not a run's."""

from __future__ import annotations

import json
from pathlib import Path

from robot_rl.config import ConfigError, choices

from robot_rl.schema import MAX_SEED, as_bool, as_choice, as_float, as_int

# The keys of robot_rl/conf/eval.yaml (randomize is a config group chosen there).
OPTIONS = ("run", "checkpoint", "episodes", "seed", "randomize", "backend", "video", "out", "ros", "episode_s", "task",
           "instruction", "calibration")


def check_options(cfg) -> dict[str, str | None]:
    """The composed eval config as text options, each refused (ConfigError, one sentence) when not valid."""
    options = {k: None if cfg[k] is None else str(cfg[k]).lower() if isinstance(cfg[k], bool) else str(cfg[k])
               for k in OPTIONS if k not in ("randomize", "task")}
    options["randomize"] = str(cfg.randomize.name) if cfg.get("randomize") else None
    options["task"] = str(cfg.task.name) if cfg.get("task") else None
    if not options["run"]:
        raise ConfigError("eval needs run=<run directory or policy artifact directory>.")
    if options["randomize"] is not None and options["randomize"] not in choices("randomize"):
        raise ConfigError(f"unknown randomize {options['randomize']!r}; choose one of: {', '.join(choices('randomize'))}.")
    if options["calibration"] is not None and not Path(options["calibration"]).is_file():
        raise ConfigError(f"calibration={options['calibration']} does not exist; expected robot-rl sysid's "
                          "calibration.yaml.")
    as_int("episodes", options["episodes"], minimum=1)
    as_int("seed", options["seed"], minimum=0, maximum=MAX_SEED - as_int("episodes", options["episodes"], minimum=1))
    as_int("video", options["video"], minimum=0)
    as_bool("checkpoint", options["checkpoint"])
    ros = as_bool("ros", options["ros"])
    if ros and options["calibration"] is not None:
        raise ConfigError("calibration= calibrates the sim evaluation; with ros=true the sim bridge runs the robot "
                          "file's physics. Drop one of them.")
    if as_bool("checkpoint", options["checkpoint"]) and options["backend"] != "auto":
        raise ConfigError(f"backend={options['backend']} applies to exported artifacts; with checkpoint=true the "
                          "checkpoint runs in torch, so expected no backend=.")
    if ros and as_bool("checkpoint", options["checkpoint"]):
        raise ConfigError("checkpoint=true and ros=true do not go together; the ROS 2 node runs exported artifacts.")
    if options["instruction"] is not None and not options["instruction"].strip():
        raise ConfigError("instruction= is empty; give the words an operator would say, e.g. "
                          "instruction='pick up the red cube'.")
    if ros and options["instruction"] is not None:
        raise ConfigError("instruction= applies to sim evaluation; over ROS 2 each episode's instruction comes from "
                          "the sim bridge (on a robot: publish it on the policy node's instruction topic).")
    if options["episode_s"] != "auto":
        as_float("episode_s", options["episode_s"], minimum=0.0, strict=True)
    from robot_rl.policy.backends import CHOICES

    as_choice("backend", options["backend"], CHOICES)
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
