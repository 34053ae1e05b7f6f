"""The ``robot-rl reward`` commands, each given its checked own keys and the composed config."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from robot_rl.cli.reward import paths as _paths
from robot_rl.config import ConfigError
from robot_rl.schema import writable_dir

def _check_types(value: Any, default: Any, name: str) -> None:
    """Compare each field of a reward config with its dataclass default's kind (Hydra does not)."""
    from robot_rl.schema import check_kinds

    check_kinds(value, default, name, leaf=_at_least_one)


def _at_least_one(name: str, value: Any, default: Any) -> None:
    if type(default) is int and value < 1 and name.rsplit(".", 1)[-1] in (
            "steps", "batch_size", "eval_every", "threads", "image_size", "frame_stride", "hidden", "max_tokens"):
        raise ConfigError(f"{name}={value} is not valid; expected an integer >= 1.")


def _reward_config(cfg):
    from omegaconf import OmegaConf

    from reward_models.config import RewardConfig, from_dict

    block = OmegaConf.to_container(cfg.reward, resolve=True)
    parts = {k: block[k] for k in ("model", "augment", "negatives", "train", "shaping")}
    _check_types(parts, RewardConfig(), "reward")  # before the dataclasses compare a str with an int
    return from_dict(RewardConfig, parts)


def _bank():
    from reward_models.instructions import InstructionBank
    from sim.registry import instruction_tables

    return InstructionBank(**instruction_tables())


def _train(own: dict[str, str], cfg) -> int:
    from omegaconf import OmegaConf

    from reward_models.dataset import load_dataset
    from reward_models.io import save
    from reward_models.train import train

    config = _reward_config(cfg)
    m, t = config.model, config.train
    prefs = own.get("preferences")
    labels = "data" if prefs else t.labels  # preference training reads frames only
    data = load_dataset(_paths(own, "data"), m.cameras, m.image_size, labels, t.success_tail, t.frame_stride)
    held_out = _paths(own, "held_out", required=False)
    out = writable_dir("out", own.get("out") or Path(cfg.out_dir) / "reward" / "vlm")
    if prefs:
        from reward_models.preferences import load_pairs, train_preferences

        pairs, segment, _ = load_pairs(prefs)
        model = train_preferences(data, pairs, segment, _bank(), config, device=own.get("device", cfg.reward.device))
    else:
        model = train(data, _bank(), config, device=own.get("device", cfg.reward.device))
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
    if own.get("preferences"):
        return _label_preferences(own, cfg, model)
    from robot_rl.distributed.session import ray_config

    stride = int(own.get("stride", cfg.reward.score.stride))
    replace = bool(own["replace_reward"])
    on_ray = ray_config(cfg.ray)  # ray.actors=N: N actors score, this process writes
    for path in _paths(own, "data"):
        summary = label_store(path, model, RewardShaper.from_config(config.shaping), stride, replace,
                              model_name=str(Path(_model_path(own, cfg)).absolute()), actors=on_ray.actors,
                              ray_config=on_ray)
        print(f"labelled {summary['episodes']} episodes ({summary['steps']} steps) -> {path}: "
              f"{', '.join(summary['keys'])}")
    return 0


def _label_preferences(own: dict[str, Any], cfg, model) -> int:
    from reward_models.dataset import load_dataset
    from reward_models.preferences import label_pairs, save_pairs

    data = load_dataset(_paths(own, "data"), model.cameras, model.config.image_size, "data")
    pairs = label_pairs(model, data, int(own["pairs"]), int(own["segment"]), seed=int(cfg.reward.train.seed))
    path = save_pairs(own["preferences"], pairs, int(own["segment"]), _model_path(own, cfg))
    preferred = sum(p.label > 0.5 for p in pairs)
    print(f"labelled {len(pairs)} segment pairs of {own['segment']} steps ({preferred} prefer the first) -> {path}")
    return 0


def _adapt(own: dict[str, Any], cfg) -> int:
    from omegaconf import OmegaConf

    from reward_models.dataset import load_dataset
    from reward_models.io import load, save
    from reward_models.train import adapt

    config = _reward_config(cfg)
    name = _model_path(own, cfg)
    model = load(name, device=own.get("device", cfg.reward.device))
    m, t = model.config, config.train
    if not own.get("out"):
        raise ConfigError("out=DIR is required: where the adapted model goes (the original stays as it is).")
    out = writable_dir("out", own["out"])
    if out.resolve() == Path(name).resolve():
        raise ConfigError(f"out={out} is the model being adapted; choose another directory so the original stays.")
    demo = load_dataset(_paths(own, "demo"), m.cameras, m.image_size, t.labels, t.success_tail, t.frame_stride)
    held_out = _paths(own, "held_out", required=False)
    if held_out:
        print("before adapting:")
        _grade(model, held_out, out, name=name, report_name="report_before.json")
    adapted = adapt(model, demo, _bank(), config, episodes=int(own["episodes"]), steps=int(own["steps"]),
                    device=own.get("device", cfg.reward.device))
    save(adapted, out, extra={"adapted_from": name, "demo": _paths(own, "demo"), "demo_episodes": int(own["episodes"]),
                              "resolved_config": OmegaConf.to_container(cfg.reward)})
    print(f"saved adapted reward model -> {out}")
    if held_out:
        print("after adapting:")
        _grade(adapted, held_out, out, name=str(out))
    return 0


def _model_path(own: dict[str, str], cfg) -> str:
    path = own.get("model") or cfg.reward.model_path
    if not path:
        raise ConfigError("model=DIR is required (a directory written by `robot-rl reward train`).")
    return str(path)


def _grade(model, paths: list[str], out: Path, name: str, report_name: str | None = None) -> dict[str, Any]:
    from reward_models.dataset import load_dataset
    from reward_models.report_card import report_card, summary_lines
    from reward_models.io import REPORT_JSON, REPORT_PNG, write_json
    from reward_models.plots import pick_episodes, report_image
    from robot_rl.media import write_png

    data = load_dataset(paths, model.cameras, model.config.image_size, require_ground_truth=True)
    generated = model.meta.get("config", {}).get("augment", {}).get("generated", 0)
    report, curves = report_card(model, data, _bank(), generated=int(generated))
    report["model"] = name
    out.mkdir(parents=True, exist_ok=True)
    if report_name:  # a side card (before adapting): JSON only
        write_json(out / report_name, report)
        print("\n".join(summary_lines(report)))
        return report
    write_json(out / REPORT_JSON, report)
    seen = curves["train"]
    write_png(out / REPORT_PNG, report_image(data, seen["progress"], seen["success"], seen["instructions"],
                                                    pick_episodes(data)))
    print("\n".join(summary_lines(report)))
    print(f"report card -> {out / REPORT_JSON}, {out / REPORT_PNG}")
    return report


COMMANDS = {"train": _train, "eval": _eval, "label": _label, "adapt": _adapt}
