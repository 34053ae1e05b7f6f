"""usage: robot-rl reward train|eval|label|adapt [key=value ...]

Train, grade and apply learned vision-language reward models.

  robot-rl reward train data=demos.zarr out=runs/reward/vlm [held_out=test.zarr] [reward.train.steps=2000] [device=cuda]
  robot-rl reward eval  model=runs/reward/vlm data=test.zarr [out=DIR]
  robot-rl reward label model=runs/reward/vlm data=offline.zarr [stride=4] [replace_reward=true] [ray.actors=4]
  robot-rl reward label model=runs/reward/vlm data=offline.zarr preferences=prefs.json [pairs=1000] [segment=8]
  robot-rl reward train data=offline.zarr preferences=prefs.json out=runs/reward/pref   (Bradley-Terry)
  robot-rl reward adapt model=runs/reward/vlm demo=new_task.zarr episodes=1 out=runs/reward/adapted [held_out=test.zarr]

Keys (robot_rl/conf/reward_model.yaml): data, held_out, demo (one store or a list [a.zarr,b.zarr]),
out, model, stride, replace_reward, preferences, pairs, segment, episodes, steps, device; each
command reads only its own. Any reward.*
key is the reward config group's (reward=vlm, robot_rl/conf/reward/vlm.yaml), e.g.
reward.model.fusion=xattn.

train  fits a model and saves it (model.safetensors, text_cache.safetensors, config.json);
       with held_out it also writes the report card (report.json, report.png) beside it.
eval   grades a model on held-out sim episodes against ground truth -> report.json + report.png.
label  writes info/vlm_progress, info/vlm_success and info/vlm_reward into a store (and with
       replace_reward=true also replaces `reward`, keeping the recorded one as info/reward_original);
       ray.actors=N scores the episodes over N Ray actors (ray.address= for a cluster, ray.job_gpus=
       for a GPU share each) and this process writes every label at once, crash-safe as without;
       with preferences=FILE it writes pairwise preferences between segments instead (RL-VLM-F),
       which `train preferences=FILE` learns a reward from (Bradley-Terry; use it as dense
       progress: reward.shaping=null).
adapt  fine-tunes a trained model to a new task or scene from its first `episodes` demonstration(s)
       (steps=300 by default) and saves it to out; with held_out it grades the model before
       (report_before.json) and after (report.json), and prints both.
"""

from __future__ import annotations

import sys
from pathlib import Path

from robot_rl.cli.args import parse
from robot_rl.config import ConfigError, compose, one_line
from robot_rl.schema import as_bool, as_int, check_common

# The own keys each command reads; any other is refused rather than silently ignored.
COMMANDS = {"train": ("data", "held_out", "out", "device", "preferences"), "eval": ("model", "data", "out", "device"),
            "label": ("model", "data", "stride", "replace_reward", "device", "preferences", "pairs", "segment"),
            "adapt": ("model", "demo", "episodes", "steps", "held_out", "out", "device")}


def run(argv: list[str]) -> int:
    sub = argv[0] if argv and argv[0] in COMMANDS else None
    try:
        args = parse(argv or ["--help"], "reward", subs=tuple(COMMANDS))
        if args.help:
            print(__doc__)
            return 0
        refuse_foreign(args.sub, args.overrides)
        cfg = compose(args.overrides, config_name="reward_model")
        own = check(args.sub, cfg)
        from reward_models.config import RewardModelError
        from robot_rl.cli.reward import commands
        from robot_rl.data.format import StoreError

        try:
            return commands.COMMANDS[args.sub](own, cfg)
        except (RewardModelError, StoreError) as error:
            raise ConfigError(str(error)) from None
    except ConfigError as error:
        print(f"robot-rl reward{' ' + sub if sub else ''}: {one_line(error)}", file=sys.stderr)
        return 2


def refuse_foreign(command: str, overrides: list[str]) -> None:
    """Refuse another command's own key (``out=`` for label): it would be silently ignored."""
    foreign = {k for keys in COMMANDS.values() for k in keys} - set(COMMANDS[command])
    for item in overrides:
        if item.partition("=")[0].lstrip("+") in foreign:
            raise ConfigError(f"{item} is not read by `reward {command}`; expected only "
                              f"{', '.join(k + '=' for k in COMMANDS[command])} and reward.* overrides.")


def check(command: str, cfg) -> dict:
    """The command's own keys that were given, refused (ConfigError, one sentence) when not valid."""
    check_common(cfg)
    if "score" in cfg.reward:
        as_int("reward.score.stride", cfg.reward.score.stride, minimum=1)
        as_int("reward.score.batch_size", cfg.reward.score.batch_size, minimum=1)
    if cfg.reward.kind != "vlm":
        raise ConfigError(f"reward={cfg.reward.kind} is not a learned model (kind {cfg.reward.kind}); use reward=vlm.")
    own = {k: cfg[k] for k in COMMANDS[command] if cfg[k] is not None}
    if "stride" in own:
        as_int("stride", own["stride"], minimum=1)
    for key in ("episodes", "steps", "pairs", "segment"):
        if key in own:
            own[key] = as_int(key, own[key], minimum=2 if key == "segment" else 1)
    if command == "train" and "preferences" in own and not Path(str(own["preferences"])).is_file():
        raise ConfigError(f"preferences={own['preferences']} does not exist; expected the JSON file that "
                          "`robot-rl reward label ... preferences=FILE` writes.")
    if command == "train" and cfg.reward.train.labels == "preferences" and "preferences" not in own:
        raise ConfigError("reward.train.labels=preferences needs preferences=FILE (written by "
                          "`robot-rl reward label model=DIR data=STORE preferences=FILE`).")
    own["replace_reward"] = as_bool("replace_reward", own.get("replace_reward", False))
    if "device" in own or "device" in cfg.reward:  # refused (a bad value, CUDA without a GPU) before any data loads
        from robot_rl.train.device import resolve_device

        resolve_device(own.get("device", cfg.reward.get("device")), "device" if "device" in own else "reward.device")
    for key in ("data", "held_out", "demo"):
        for path in paths(own, key, required=False):
            if not Path(path).exists():
                raise ConfigError(f"{key}={path} does not exist; expected a Zarr episode store "
                                  "(see `robot-rl record`).")
    model = own.get("model")
    if model and command != "train" and not Path(str(model)).is_dir():
        what = "does not exist" if not Path(str(model)).exists() else "is a file"
        raise ConfigError(f"model={model} {what}; expected a directory written by `robot-rl reward train`.")
    return own


def paths(own: dict, key: str, required: bool = True) -> list[str]:
    """``key``'s stores: one path or a list ``[a.zarr,b.zarr]``; ConfigError when required and missing."""
    raw = own.get(key)
    found = [str(p).strip() for p in raw] if isinstance(raw, (list, tuple)) or hasattr(raw, "__iter__") and not \
        isinstance(raw, str) else [str(raw).strip()] if raw is not None else []
    found = [p for p in found if p]
    if required and not found:
        raise ConfigError(f"{key}=PATH is required (an episode store, or a list [a.zarr,b.zarr]).")
    return found
