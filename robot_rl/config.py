"""The Hydra config tree: composing it for the CLI and reading single group files for libraries.

The config files are the one registry: a task, robot or randomisation preset exists when its
YAML file exists in its group folder. The sim owns its groups (``sim/conf/{task,robot,randomize}``);
Hydra finds them through the search path, located without importing ``sim``.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import re
from pathlib import Path
from typing import Any

CONF_DIR = Path(__file__).resolve().parent / "conf"


def _sim_conf_dir() -> Path | None:
    spec = importlib.util.find_spec("sim")  # finds the package without running its __init__
    locations = list(spec.submodule_search_locations or []) if spec else []
    return Path(locations[0]) / "conf" if locations else None


# Where config groups live, first match wins: ours, then the sim's own groups.
SEARCH_PATH = tuple(d for d in (CONF_DIR, _sim_conf_dir()) if d is not None)


class ConfigError(ValueError):
    """A config choice or value a user gave is not valid; the message says what is."""


def group_dir(group: str) -> Path | None:
    """The folder of config group ``group`` on the search path, or None when there is none."""
    return next((d / group for d in SEARCH_PATH if group and (d / group).is_dir()), None)


def choices(group: str) -> list[str]:
    """The names available in one config group, e.g. ``choices("task")``."""
    return names_in(group_dir(group))


def load_group(group: str, name: str) -> dict[str, Any]:
    """One group file as a plain dict; an unknown name gets an error listing the valid ones."""
    return read_group_file(group_dir(group) or CONF_DIR / group, group, name)


def names_in(folder: Path | None) -> list[str]:
    """The names of the YAML files in a group folder, sorted (none when there is no folder)."""
    return sorted(p.stem for p in folder.glob("*.yaml")) if folder else []


def read_group_file(folder: Path, group: str, name: str) -> dict[str, Any]:
    """``folder/<name>.yaml`` of config group ``group`` as a plain dict, or one sentence listing
    the valid names. Shared by our groups and the sim's (``sim.registry``)."""
    from omegaconf import OmegaConf

    path = folder / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown {group} {name!r}; choose one of: {', '.join(names_in(folder))}.")
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True)  # type: ignore[return-value]


def locate(dotted: str, where: str) -> Any:
    """The object a config's dotted ``module.attribute`` path names (a ``_target_``, a task's
    ``expert``), or one sentence naming the key ``where`` it came from."""
    module_name, _, attr = str(dotted).rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError, ValueError) as error:
        raise ConfigError(f"{where}={dotted} names nothing importable ({error}); expected module.attribute.") from None


def compose(overrides: list[str], config_name: str = "config"):
    """The full config with Hydra ``key=value`` overrides applied, as a DictConfig.

    Refused (ConfigError, one sentence): an override without ``=``, an empty value, a ``~``
    deletion, a setting inside the task/robot/randomize groups (those are read from their YAML
    files as they are), and a value whose kind (block, list or single value) differs from the
    key's default."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    for item in overrides:
        _check_override(item)
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        try:
            cfg = hydra_compose(config_name=config_name, overrides=_with_search_path(overrides))
        except (HydraException, OmegaConfBaseException, ValueError) as error:  # Hydra raises ValueError too
            raise ConfigError(_bad_override(overrides) or _kind_mismatch(overrides, config_name, str(error))
                              or _one_sentence(error)) from None
        _check_kinds(cfg, overrides, _reference(tuple(_group_choices(overrides)), config_name))
    return cfg


# Groups whose files the libraries read by name (sim.load): their values cannot be overridden.
FILE_GROUPS = ("task", "robot", "randomize")


def _check_override(item: str) -> None:
    """Refuse, before Hydra sees it, an override that would be ignored or cannot be read."""
    key, sep, value = item.partition("=")
    if not key.strip("+~ ") or (not sep and not key.startswith("~")):
        raise ConfigError(f"{item!r} is not an override; expected key=value (e.g. seed=1).")
    if key.startswith("~"):
        raise ConfigError(f"{item} would remove a setting; expected key=value to change it instead "
                          f"(e.g. {key.lstrip('~').split('=')[0]}=<value>).")
    if key.startswith("+") and "." not in key and not group_dir(key.lstrip("+")):
        raise ConfigError(f"{item} adds a key robot-rl does not read; expected one of the verb's own keys "
                          "(its --help lists them).")
    if sep and not value.strip():
        raise ConfigError(f"{item} has no value; expected {key.lstrip('+')}=<value>, or leave it out for the default.")
    head, dot, rest = key.lstrip("+").partition(".")
    if not dot and group_dir(head) and "," not in value and value not in choices(head):
        raise ConfigError(f"{item} is not valid: unknown {head} {value!r}. Valid {head} choices: "
                          f"{', '.join(choices(head))}.")
    if dot and rest in ("_target_", "name", "kind") and group_dir(head):
        raise ConfigError(f"{item} cannot be set on the command line: {rest} is what {head}=<name> chooses; expected "
                          f"{head}=<name> (one of: {', '.join(choices(head))}).")
    if dot and head in FILE_GROUPS:
        raise ConfigError(f"{item} cannot be set on the command line: a {head}'s settings are read from its file "
                          f"sim/conf/{head}/<name>.yaml; expected {head}=<name> (one of: "
                          f"{', '.join(choices(head))}).")


def _group_choices(overrides: list[str]) -> list[str]:
    """The overrides that pick a config group file (``task=push``, ``+reward=vlm``)."""
    return [o for o in overrides if "." not in o.partition("=")[0]
            and group_dir(o.partition("=")[0].lstrip("+"))]


def _with_search_path(overrides: list[str]) -> list[str]:
    """``overrides`` quoted for Hydra, plus the search path that finds the sim's groups."""
    extra = ",".join(f"'file://{d}'" for d in SEARCH_PATH[1:])
    return [*quote_paths(overrides), *([f"hydra.searchpath=[{extra}]"] if extra else [])]


@functools.lru_cache(maxsize=32)
def _reference(groups: tuple[str, ...], config_name: str):
    """The config with only the group choices applied (the defaults each value override replaces),
    read-only; kept per choice, so the pipeline's 30 recordings compose 5 references, not 30."""
    from hydra import compose as hydra_compose
    from omegaconf import OmegaConf

    try:
        reference = hydra_compose(config_name=config_name, overrides=_with_search_path(list(groups)))
    except Exception:  # noqa: BLE001 - the full compose reports a bad group choice itself
        return None
    OmegaConf.set_readonly(reference, True)
    return reference


def _kind(node) -> str:
    from omegaconf import DictConfig, ListConfig

    return "block" if isinstance(node, (DictConfig, dict)) else "list" if isinstance(node, (ListConfig, list)) else "value"


_EXPECTED_KIND = {"block": "a block of settings, set one at a time (e.g. {key}.{child}=...)",
                  "list": "a list such as {key}=[a,b]", "value": "a single value, not a list or a block"}


def _kind_error(item: str, key: str, default) -> str:
    child = next(iter(default), "name") if _kind(default) == "block" else ""
    return f"{item} is not valid; {key} expects {_EXPECTED_KIND[_kind(default)].format(key=key, child=child)}."


def _check_kinds(cfg, overrides: list[str], reference) -> None:
    """Refuse a value override whose kind (block / list / single value) differs from its default."""
    from omegaconf import OmegaConf

    if reference is None:
        return
    groups = set(_group_choices(overrides))
    for item in overrides:
        key = item.partition("=")[0].lstrip("+")
        if item in groups or key.rsplit(".", 1)[-1] in PATH_KEYS:
            continue
        default = OmegaConf.select(reference, key, default=None, throw_on_missing=False)
        value = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
        if default is None or value is None or _kind(default) == _kind(value):
            continue
        raise ConfigError(_kind_error(item, key, default))


def _kind_mismatch(overrides: list[str], config_name: str, message: str) -> str | None:
    """For Hydra's "Error merging override X": a sentence saying what kind of value X's key takes."""
    from hydra import compose as hydra_compose
    from omegaconf import OmegaConf

    match = re.match(r"Error merging override (.+)", message.strip().splitlines()[0] if message.strip() else "")
    if not match:
        return None
    item = match.group(1)
    key = item.partition("=")[0].lstrip("+")
    try:
        reference = hydra_compose(config_name=config_name, overrides=_with_search_path(_group_choices(overrides)))
        default = OmegaConf.select(reference, key, default=None, throw_on_missing=False)
    except Exception:  # noqa: BLE001
        default = None
    if default is None:
        return f"{item} is not valid; its value does not fit the key {key}."
    return _kind_error(item, key, default)


def one_line(error: BaseException) -> str:
    """The first line of an error's message, prefixed with the config key it concerns when
    OmegaConf names one on a later line (``full_key: seed``)."""
    text = str(error).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    key = re.search(r"full_key: (\S+)", text)
    return shorten(f"{key.group(1)}: {first}" if key and key.group(1) not in first else first)


def shorten(text: str, limit: int = 600) -> str:
    """``text`` cut in the middle when longer than ``limit``: a 5000-character path stays one readable line."""
    return text if len(text) <= limit else f"{text[:limit * 2 // 3]} ... {text[-limit // 3:]}"


def _bad_override(overrides: list[str]) -> str | None:
    """A sentence naming the first override Hydra's grammar cannot read, or None."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    for item in overrides:
        key = item.partition("=")[0]
        if not re.fullmatch(r"[+~]{0,2}[A-Za-z_][A-Za-z0-9_.\-]*(@[A-Za-z0-9_.]+)?", key):
            return (f"{key!r} (in {item!r}) is not a known key; expected a name such as seed, task or "
                    "env.image_size (plain ASCII letters, digits, _ and dots).")
    parser = OverridesParser.create()
    for item in quote_paths(overrides):
        try:
            parsed = parser.parse_overrides([item])
        except Exception:  # noqa: BLE001 - the grammar raises several types
            return (f"cannot read the override {item!r}; expected key=value, with a value's brackets and quotes "
                    "balanced (quote a value with spaces or commas: key='a, b').")
        if parsed and parsed[0].is_sweep_override():
            return (f"{item} gives several values; a sweep needs -m (e.g. robot-rl train -m {item}), and one value "
                    "with a comma must be quoted: key='a,b'.")
    return None


# Keys whose values are file system paths: their values are quoted before Hydra parses them, so
# spaces, unicode, brackets, quotes and commas in a path work as typed (``out=my store é.zarr``).
PATH_KEYS = ("run", "demos", "demo", "preferences", "data", "out", "out_dir", "model_path", "path", "held_out", "pretrained_path", "model",
             "train_out", "val_out")
# Path keys inside blocks (``reward.model_path``); any other dotted key is not a path even when its
# last part is a top-level path key's name (``budget.demos`` is a count).
NESTED_PATH_KEYS = ("model_path", "pretrained_path", "text_model_path", "out_dir", "path")


def quote_paths(overrides: list[str]) -> list[str]:
    """Quote the value of every path-like ``key=value`` (see PATH_KEYS) for Hydra's override grammar."""
    out = []
    for item in overrides:
        key, sep, value = item.partition("=")
        name = key.lstrip("+~")
        plain = not value or value == "null" or value[0] in "[{'\"" or "${" in value
        is_path = name in PATH_KEYS or name.rsplit(".", 1)[-1] in NESTED_PATH_KEYS  # budget.demos is a count
        if sep and is_path and not plain:
            # Hydra: a quote inside is escaped, and backslashes just before a quote are doubled
            value = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", value)
            value = "'" + re.sub(r"(\\+)$", lambda m: m.group(1) * 2, value) + "'"
        out.append(f"{key}{sep}{value}")
    return out


def _one_sentence(error: Exception) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    unknown = re.match(r"Could not override '([^']+)'", text)
    if unknown and "To append to your config" in str(error):
        return (f"{unknown.group(1)} is not a known key; check its spelling (the verb's --help lists the main "
                "options).")
    group_value = re.match(r"Config group override must be a string or a list", text)
    if group_value:
        return f"{text}; expected a name from the group's folder (see the verb's --help)."
    for group in ("task", "robot", "randomize", "budget", "algo", "reward", "logger"):
        if f"'{group}'" in text or f"{group}/" in text:
            return f"{text} Valid {group} choices: {', '.join(choices(group))}."
    return text
