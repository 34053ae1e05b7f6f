"""``robot-rl reward``: train, grade and apply learned vision-language reward models.

  robot-rl reward train data=demos.zarr out=runs/reward/vlm [held_out=test.zarr] [reward.train.steps=2000]
  robot-rl reward eval  model=runs/reward/vlm data=test.zarr [out=DIR]
  robot-rl reward label model=runs/reward/vlm data=offline.zarr [stride=4] [replace_reward=true]

``data`` and ``held_out`` take one store or a list: ``data=[a.zarr,b.zarr]``. Any other
``key=value`` is a Hydra override of the ``reward`` config group (``reward=vlm`` by default,
see robot_rl/conf/reward/vlm.yaml), e.g. ``reward.model.fusion=xattn``.

train  fits a model and saves it (model.safetensors, text_cache.safetensors, config.json);
       with held_out it also writes the report card (report.json, report.png) beside it.
eval   grades a model on held-out sim episodes against ground truth -> report.json + report.png.
label  writes info/vlm_progress, info/vlm_success and info/vlm_reward into a store (and with
       replace_reward=true also replaces `reward`, keeping the recorded one as info/reward_original).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

from robot_rl.config import ConfigError, as_bool, as_int, check_common, choices, compose, load_group, one_line, writable_dir

OWN_KEYS = ("data", "held_out", "out", "model", "stride", "replace_reward", "device")
# The own keys each verb reads; any other is refused rather than silently ignored.
VERB_KEYS = {"train": ("data", "held_out", "out"), "eval": ("model", "data", "out", "device"),
             "label": ("model", "data", "stride", "replace_reward", "device")}
VERBS = ("train", "eval", "label")


def run(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0
    if argv[0] not in VERBS:
        print(f"robot-rl reward: unknown command {argv[0]!r}; choose one of {', '.join(VERBS)}.", file=sys.stderr)
        return 2
    from reward_models.config import RewardModelError
    from robot_rl.data.format import StoreError

    verb, (own, overrides) = argv[0], _split(argv[1:])
    try:
        cfg = _compose(overrides)
        _check_own(verb, own)
        return {"train": _train, "eval": _eval, "label": _label}[verb](own, cfg)
    except (ConfigError, RewardModelError, StoreError) as error:
        print(f"robot-rl reward {verb}: {one_line(error)}", file=sys.stderr)
        return 2


def _check_own(verb: str, own: dict[str, str]) -> None:
    """Refuse (ConfigError, one sentence) a wrong type in this verb's own keys, and missing inputs."""
    for key, value in own.items():
        if key not in VERB_KEYS[verb]:
            raise ConfigError(f"{key}={value} is not read by `reward {verb}`; expected only "
                              f"{', '.join(k + '=' for k in VERB_KEYS[verb])} and reward.* overrides.")
        if not value.strip():
            raise ConfigError(f"{key}= has no value; expected {key}=<value>, or leave it out for the default.")
    if "stride" in own:
        as_int("stride", own["stride"], minimum=1)
    if "replace_reward" in own:
        as_bool("replace_reward", own["replace_reward"])
    device = own.get("device")
    if device is not None and not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device):
        raise ConfigError(f"device={device} is not valid; expected auto, cpu, cuda or cuda:N.")
    for key in ("data", "held_out"):
        for path in _paths(own, key, required=False):
            if not Path(path).exists():
                raise ConfigError(f"{key}={path} does not exist; expected a Zarr episode store "
                                  "(see `robot-rl record`).")
    if "model" in own and verb != "train" and own["model"] and not Path(own["model"]).is_dir():
        what = "does not exist" if not Path(own["model"]).exists() else "is a file"
        raise ConfigError(f"model={own['model']} {what}; expected a directory written by `robot-rl reward train`.")


def _check_types(value: Any, default: Any, name: str) -> None:
    """Compare each field of a reward config with its dataclass default's type (Hydra does not)."""
    import dataclasses

    if dataclasses.is_dataclass(default):
        for f in dataclasses.fields(default):
            if isinstance(value, dict) and f.name in value:
                _check_types(value[f.name], getattr(default, f.name), f"{name}.{f.name}")
        return
    expected = None
    if isinstance(default, bool):
        expected = None if isinstance(value, bool) else "true or false"
    elif isinstance(default, int):
        expected = None if type(value) is int else "an integer"
        if expected is None and value < 1 and name.rsplit(".", 1)[-1] in (
                "steps", "batch_size", "eval_every", "threads", "image_size", "frame_stride", "hidden", "max_tokens"):
            expected = "an integer >= 1"
    elif isinstance(default, float):
        expected = None if isinstance(value, (int, float)) and not isinstance(value, bool) else "a number"
    elif isinstance(default, str):
        expected = None if isinstance(value, str) else "text"
    elif isinstance(default, (list, tuple)):
        expected = None if isinstance(value, (list, tuple)) else "a list such as [a,b]"
    if expected:
        raise ConfigError(f"{name}={value} is not valid; expected {expected}.")


def _split(args: list[str]) -> tuple[dict[str, str], list[str]]:
    own, rest = {}, []
    for arg in args:
        key, _, value = arg.partition("=")
        if key in OWN_KEYS:
            own[key] = value
        else:
            rest.append(arg)
    return own, rest


def _compose(overrides: list[str]):
    chosen = [o for o in overrides if o.startswith("reward=")]
    rest = [o for o in overrides if not o.startswith("reward=")]
    group = chosen[-1].split("=", 1)[1] if chosen else "vlm"
    if group not in choices("reward"):
        raise ConfigError(f"unknown reward {group!r}; choose one of: {', '.join(choices('reward'))}.")
    cfg = compose([f"+reward={group}", *rest])
    check_common(cfg)
    if "score" in cfg.reward:
        as_int("reward.score.stride", cfg.reward.score.stride, minimum=1)
        as_int("reward.score.batch_size", cfg.reward.score.batch_size, minimum=1)
    if "device" in cfg.reward and not re.fullmatch(r"auto|cpu|cuda(:\d+)?", str(cfg.reward.device)):
        raise ConfigError(f"reward.device={cfg.reward.device} is not valid; expected auto, cpu, cuda or cuda:N.")
    if cfg.reward.kind != "vlm":
        raise ConfigError(f"reward={group} is not a learned model (kind {cfg.reward.kind}); use reward=vlm.")
    return cfg


def _paths(own: dict[str, str], key: str, required: bool = True) -> list[str]:
    raw = own.get(key, "").strip()
    if not raw:
        if required:
            raise ConfigError(f"{key}=PATH is required (an episode store, or a list [a.zarr,b.zarr]).")
        return []
    return [p.strip() for p in raw.strip("[]").split(",") if p.strip()]


def _reward_config(cfg):
    from omegaconf import OmegaConf

    from reward_models.config import RewardConfig, from_dict

    block = OmegaConf.to_container(cfg.reward, resolve=True)
    parts = {k: block[k] for k in ("model", "augment", "negatives", "train", "shaping")}
    _check_types(parts, RewardConfig(), "reward")  # before the dataclasses compare a str with an int
    return from_dict(RewardConfig, parts)


def _bank():
    from reward_models.instructions import InstructionBank

    return InstructionBank({t: load_group("task", t)["templates"] for t in choices("task")})


def _train(own: dict[str, str], cfg) -> int:
    from omegaconf import OmegaConf

    from reward_models.dataset import load_dataset
    from reward_models.io import save
    from reward_models.train import train

    config = _reward_config(cfg)
    m, t = config.model, config.train
    data = load_dataset(_paths(own, "data"), m.cameras, m.image_size, t.labels, t.success_tail, t.frame_stride)
    held_out = _paths(own, "held_out", required=False)
    out = writable_dir("out", own.get("out") or Path(cfg.out_dir) / "reward" / "vlm")
    model = train(data, _bank(), config)
    save(model, out, extra={"data": _paths(own, "data"), "resolved_config": OmegaConf.to_container(cfg.reward)})
    print(f"saved reward model -> {out}")
    if held_out:
        _grade(model, held_out, out, name=str(out))
    return 0


def _eval(own: dict[str, str], cfg) -> int:
    from reward_models.io import load

    model = load(_model_path(own, cfg), device=own.get("device", cfg.reward.device))
    model.batch_size = int(cfg.reward.score.batch_size)
    out = writable_dir("out", own.get("out") or _model_path(own, cfg))
    _grade(model, _paths(own, "data"), out, name=_model_path(own, cfg))
    return 0


def _label(own: dict[str, str], cfg) -> int:
    from reward_models.io import load
    from reward_models.labeling import label_store
    from reward_models.shaping import RewardShaper

    config = _reward_config(cfg)
    model = load(_model_path(own, cfg), device=own.get("device", cfg.reward.device))
    model.batch_size = int(cfg.reward.score.batch_size)
    stride = int(own.get("stride", cfg.reward.score.stride))
    replace = own.get("replace_reward", "false").lower() in ("1", "true", "yes")
    for path in _paths(own, "data"):
        summary = label_store(path, model, RewardShaper.from_config(config.shaping), stride, replace,
                              model_name=_model_path(own, cfg))
        print(f"labelled {summary['episodes']} episodes ({summary['steps']} steps) -> {path}: "
              f"{', '.join(summary['keys'])}")
    return 0


def _model_path(own: dict[str, str], cfg) -> str:
    path = own.get("model") or cfg.reward.model_path
    if not path:
        raise ConfigError("model=DIR is required (a directory written by `robot-rl reward train`).")
    return str(path)


def _grade(model, paths: list[str], out: Path, name: str) -> dict[str, Any]:
    from reward_models.dataset import load_dataset
    from reward_models.evaluate import evaluate, summary_lines
    from reward_models.io import REPORT_JSON, REPORT_PNG, write_json
    from reward_models.plots import pick_episodes, report_image, write_report_png

    data = load_dataset(paths, model.cameras, model.config.image_size, require_ground_truth=True)
    report, curves = evaluate(model, data, _bank())
    report["model"] = name
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / REPORT_JSON, report)
    seen = curves["train"]
    write_report_png(out / REPORT_PNG, report_image(data, seen["progress"], seen["success"], seen["instructions"],
                                                    pick_episodes(data)))
    print("\n".join(summary_lines(report)))
    print(f"report card -> {out / REPORT_JSON}, {out / REPORT_PNG}")
    return report
