"""A pipeline budget: the sizes of the recordings, then each stage's own overrides exactly as its
verb reads them (``budget.sac.train.total_steps`` is ``robot-rl train train.total_steps=``), so
no second schema translates one into the other. See robot_rl/conf/budget/default.yaml.
"""

from __future__ import annotations

from robot_rl.config import ConfigError

STAGES = ("record", "reward", "sac", "distill", "eval", "ros")  # the budget blocks that are a verb's own overrides


def stage_overrides(block) -> list[str]:
    """A budget block as its verb's ``key=value`` overrides, in the block's order (floats as ``%g``)."""
    from omegaconf import OmegaConf

    return [f"{key}={_value(value)}" for key, value in _flat(OmegaConf.to_container(block, resolve=True))]


def _flat(block: dict, prefix: str = "") -> list[tuple[str, object]]:
    items = []
    for key, value in block.items():
        items += _flat(value, f"{prefix}{key}.") if isinstance(value, dict) else [(f"{prefix}{key}", value)]
    return items


def _value(value) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return "[" + ",".join(_value(v) for v in value) + "]"
    return str(value)


def budget_keys(overrides: list[str]) -> list[str]:
    """``budget.sac.total_steps=N`` -> ``budget.sac.train.total_steps=N``: a stage key given by its
    last part(s), when exactly one key of that stage's block ends so; anything else as typed."""
    from omegaconf import OmegaConf

    from robot_rl.cli.args import chosen
    from robot_rl.config import group_dir

    folder = group_dir("budget")
    path = folder / f"{chosen(overrides, 'budget', 'pipeline')}.yaml" if folder else None
    if path is None or not path.is_file():
        return overrides  # compose names the unknown budget
    budget = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
    out = []
    for item in overrides:
        key, sep, value = item.partition("=")
        parts = key.split(".")
        if sep and len(parts) >= 3 and parts[0] == "budget" and parts[1] in STAGES:
            keys = [k for k, _ in _flat(budget.get(parts[1]) or {})]
            rest = ".".join(parts[2:])
            found = [k for k in keys if k.endswith("." + rest)]
            if rest not in keys and len(found) == 1:
                item = f"budget.{parts[1]}.{found[0]}={value}"
        out.append(item)
    return out


def check_values(cfg) -> None:
    """Refuse (ConfigError, one sentence) a wrong type in the shared keys or the budget before any stage runs."""
    from omegaconf import OmegaConf

    from robot_rl.config import load_group

    from robot_rl.schema import MAX_SEED, as_int, check_common

    check_common(cfg)
    # stages seed eval episodes from 1_000_000 * seed + 200_000 up: keep those within numpy's range
    as_int("seed", cfg.seed, minimum=0, maximum=(MAX_SEED - 300_000) // 1_000_000)
    _same_types(OmegaConf.to_container(cfg.budget, resolve=True), load_group("budget", str(cfg.budget.name)), "budget")
    if cfg.out is not None and not isinstance(cfg.out, str):
        raise ConfigError(f"out={cfg.out} is not valid; expected a directory path.")


# Budget sizes that may be 0 (everything else counts something that must happen at least once).
ZERO_OK = ("seed_steps", "bc_updates", "video", "bc_weight", "clean", "noisy", "noise", "episodes")


def _same_types(value, default, name: str) -> None:
    """Refuse a budget value whose kind differs from the budget file's (an empty list too), or out of its range."""
    from robot_rl.schema import check_kinds

    check_kinds(value, default, name, leaf=_budget_range, empty_lists=False)


def _budget_range(name: str, value, default) -> None:
    from robot_rl.schema import MAX_IMAGE_SIZE, as_float, as_int

    leaf = name.rsplit(".", 1)[-1].split("[")[0]
    low = 0 if leaf in ZERO_OK else 1
    if isinstance(default, bool):
        return
    if isinstance(default, int):
        as_int(name, value, minimum=16 if leaf == "image_size" else low,
               maximum=MAX_IMAGE_SIZE if leaf == "image_size" else None)
    elif isinstance(default, float):
        as_float(name, value, minimum=0.0)
