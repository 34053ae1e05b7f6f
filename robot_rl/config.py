"""The Hydra config tree: composing it for the CLI and reading single group files for libraries.

The config files are the one registry: a task, robot or randomisation preset exists when its
YAML file exists in its group folder.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

CONF_DIR = Path(__file__).resolve().parent / "conf"


class ConfigError(ValueError):
    """A config choice or value a user gave is not valid; the message says what is."""


def choices(group: str) -> list[str]:
    """The names available in one config group, e.g. ``choices("task")``."""
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


def load_group(group: str, name: str) -> dict[str, Any]:
    """One group file as a plain dict; an unknown name gets an error listing the valid ones."""
    from omegaconf import OmegaConf

    path = CONF_DIR / group / f"{name}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown {group} {name!r}; choose one of: {', '.join(choices(group))}.")
    return OmegaConf.to_container(OmegaConf.load(path), resolve=True)  # type: ignore[return-value]


def compose(overrides: list[str], config_name: str = "config"):
    """The full config with Hydra ``key=value`` overrides applied, as a DictConfig."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    for item in overrides:
        key, sep, _ = item.partition("=")
        if not key.strip("+~ ") or (not sep and not key.startswith("~")):
            raise ConfigError(f"{item!r} is not an override; expected key=value (e.g. seed=1).")
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        try:
            return hydra_compose(config_name=config_name, overrides=quote_paths(overrides))
        except (HydraException, OmegaConfBaseException) as error:
            raise ConfigError(_bad_override(overrides) or _one_sentence(error)) from None


def one_line(error: BaseException) -> str:
    """The first line of an error's message, prefixed with the config key it concerns when
    OmegaConf names one on a later line (``full_key: seed``)."""
    text = str(error).strip()
    first = text.splitlines()[0] if text else type(error).__name__
    key = re.search(r"full_key: (\S+)", text)
    return f"{key.group(1)}: {first}" if key and key.group(1) not in first else first


def _bad_override(overrides: list[str]) -> str | None:
    """A sentence naming the first override Hydra's grammar cannot read, or None."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

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
PATH_KEYS = ("run", "demos", "data", "out", "out_dir", "model_path", "path", "held_out", "pretrained_path")


def quote_paths(overrides: list[str]) -> list[str]:
    """Quote the value of every path-like ``key=value`` (see PATH_KEYS) for Hydra's override grammar."""
    out = []
    for item in overrides:
        key, sep, value = item.partition("=")
        name = key.lstrip("+~").rsplit(".", 1)[-1]
        plain = not value or value == "null" or value[0] in "[{'\"" or "${" in value
        if sep and name in PATH_KEYS and not plain:
            # Hydra: a quote inside is escaped, and backslashes just before a quote are doubled
            value = re.sub(r"(\\*)'", lambda m: m.group(1) * 2 + "\\'", value)
            value = "'" + re.sub(r"(\\+)$", lambda m: m.group(1) * 2, value) + "'"
        out.append(f"{key}{sep}{value}")
    return out


def as_int(name: str, value: Any, minimum: int | None = None) -> int:
    """``value`` as an int, else ConfigError naming ``name`` and what was expected."""
    text = str(value).strip()
    try:
        number = int(text) if not isinstance(value, bool) else None
    except ValueError:
        number = None
    if number is None:
        wanted = "an integer" if minimum is None else f"an integer >= {minimum}"
        raise ConfigError(f"{name}={value!s} is not valid; expected {wanted}.")
    if minimum is not None and number < minimum:
        raise ConfigError(f"{name}={value!s} is not valid; expected an integer >= {minimum}.")
    return number


def as_float(name: str, value: Any, minimum: float | None = None, strict: bool = False) -> float:
    """``value`` as a finite float (>= or, with ``strict``, > ``minimum``), else ConfigError."""
    import math

    try:
        number = float(str(value).strip()) if not isinstance(value, bool) else math.nan
    except ValueError:
        number = math.nan
    bound = "" if minimum is None else f" {'>' if strict else '>='} {minimum:g}"
    if not math.isfinite(number) or (minimum is not None and (number < minimum or (strict and number == minimum))):
        raise ConfigError(f"{name}={value!s} is not valid; expected a number{bound}.")
    return number


def as_bool(name: str, value: Any) -> bool:
    """true/false (also yes/no, 1/0) as a bool, else ConfigError naming ``name``."""
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", "none", "null", ""):
        return False
    raise ConfigError(f"{name}={value!s} is not valid; expected true or false.")


def as_choice(name: str, value: Any, options: tuple[str, ...] | list[str]) -> str:
    """``value`` when it is one of ``options``, else ConfigError listing them."""
    if str(value) not in options:
        raise ConfigError(f"{name}={value!s} is not valid; expected one of: {', '.join(options)}.")
    return str(value)


def writable_dir(name: str, path: str | Path) -> Path:
    """Create directory ``path`` (and parents) or raise ConfigError saying why it cannot be written."""
    import os

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{name}={path} is a file; expected a directory (or a path that does not exist yet).")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ConfigError(f"{name}={path} cannot be created ({(error.strerror or str(error)).lower()}); "
                          "expected a writable directory.") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise ConfigError(f"{name}={path} is not writable; expected a directory you may write to.")
    return path


def _one_sentence(error: Exception) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    unknown = re.match(r"Could not override '([^']+)'", text)
    if unknown and "To append to your config" in str(error):
        return (f"{unknown.group(1)} is not a known key; check its spelling (the verb's --help lists the main "
                "options), or put + in front to add a new one.")
    for group in ("task", "robot", "randomize", "budget"):
        if f"'{group}'" in text or f"{group}/" in text:
            return f"{text} Valid {group} choices: {', '.join(choices(group))}."
    return text


def check_common(cfg) -> None:
    """Refuse (ConfigError, one sentence) a wrong type or range in the keys every verb shares:
    ``seed``, ``out_dir`` and the ``env`` block."""
    from robot_rl.contracts import CAMERAS

    as_int("seed", cfg.seed, minimum=0)
    if "out_dir" in cfg and (cfg.out_dir is None or not str(cfg.out_dir).strip() or not isinstance(cfg.out_dir, str)):
        raise ConfigError(f"out_dir={cfg.out_dir} is not valid; expected a directory path.")
    env = cfg.get("env")
    if env is None:
        return
    as_float("env.control_rate_hz", env.control_rate_hz, minimum=0.0, strict=True)
    as_float("env.sim_dt_s", env.sim_dt_s, minimum=0.0, strict=True)
    as_choice("env.action_space", env.action_space, ("ee_delta", "joint_delta", "joint_abs"))
    as_int("env.image_size", env.image_size, minimum=16)
    as_choice("env.render_profile", env.render_profile, ("fast", "pretty"))
    as_choice("env.reward", env.reward, ("dense", "sparse"))
    as_bool("env.privileged", env.privileged)
    as_bool("env.terminate_on_success", env.terminate_on_success)
    cameras = env.cameras
    if isinstance(cameras, str) or not all(str(c) in CAMERAS for c in cameras):
        raise ConfigError(f"env.cameras={cameras} is not valid; expected a list drawn from {', '.join(CAMERAS)}, "
                          "e.g. env.cameras=[front,wrist].")


def check_fields(values: dict, config_class: type, name: str) -> None:
    """Refuse (ConfigError) a value whose type differs from the default of the same field of
    dataclass ``config_class`` (Hydra does not type-check plain YAML); unknown keys are left to
    the constructor."""
    import dataclasses

    defaults = {f.name: f.default for f in dataclasses.fields(config_class) if f.default is not dataclasses.MISSING}
    for key, value in values.items():
        if key not in defaults or defaults[key] is None:
            continue
        default, label = defaults[key], f"{name}.{key}={value}"
        if isinstance(default, bool):
            if not isinstance(value, bool):
                raise ConfigError(f"{label} is not valid; expected true or false.")
        elif isinstance(default, int):
            if type(value) is not int:
                raise ConfigError(f"{label} is not valid; expected an integer.")
        elif isinstance(default, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{label} is not valid; expected a number.")
        elif isinstance(default, str) and not isinstance(value, str):
            raise ConfigError(f"{label} is not valid; expected text.")
