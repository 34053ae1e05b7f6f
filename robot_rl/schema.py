"""Plain values (YAML blocks, budget files, ROS parameters, CLI keys) checked against and built into config dataclasses.

The one home for two questions every config reader asks: *does this dict name only fields the
dataclass has* (:func:`build`, :func:`check_keys`) and *is this value of its default's kind*
(:func:`of_kind`, :func:`check_kinds`). Each refusal is one sentence naming the key; the caller
chooses the error type its users already see (ConfigError, RewardModelError, ValueError).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from robot_rl.config import ConfigError

T = TypeVar("T")

# Kinds by the default's type, checked in this order (a bool is an int to Python, not to a user).
_KINDS = ((bool, (bool,), "true or false"), (int, (int,), "an integer"), (float, (int, float), "a number"),
          (str, (str,), "text"))


def check_keys(values: Iterable[str], valid: Iterable[str], name: str, error: type[Exception] = ConfigError) -> None:
    """Refuse keys of ``values`` not in ``valid``: one sentence naming them and listing the valid ones."""
    valid = sorted(valid)
    unknown = sorted(set(values) - set(valid))
    if unknown:
        raise error(f"{name} has unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}; "
                    f"valid fields: {', '.join(valid)}.")


def build(cls: type[T], values: dict[str, Any] | None, name: str, error: type[Exception] = ConfigError) -> T:
    """Dataclass ``cls`` from a plain dict: unknown keys refused (:func:`check_keys`), a dict given to
    a dataclass-valued field built the same way, and lists turned into tuples (configs are frozen)."""
    values = dict(values or {})
    known = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    check_keys(values, known, name, error)
    kwargs = {}
    for key, value in values.items():
        nested = _dataclass_of(cls, known[key])
        if isinstance(value, dict) and nested is not None:
            kwargs[key] = build(nested, value, f"{name}.{key}", error)
        else:
            kwargs[key] = tuple(value) if isinstance(value, list) else value
    return cls(**kwargs)


def _dataclass_of(cls: type, f: dataclasses.Field) -> type | None:
    """The dataclass a field holds (from its default factory or its annotation), or None."""
    if dataclasses.is_dataclass(f.default_factory):
        return f.default_factory  # type: ignore[return-value]
    try:
        hint = typing.get_type_hints(cls).get(f.name)
    except (NameError, TypeError):  # an annotation naming what its module does not import
        return None
    return hint if isinstance(hint, type) and dataclasses.is_dataclass(hint) else None


def defaults_of(cls: type) -> dict[str, Any]:
    """Each field of dataclass ``cls`` with its default (a factory called); fields without one left out."""
    out = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            out[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = f.default_factory()
    return out


def of_kind(name: str, value: Any, default: Any, error: type[Exception] = ConfigError, sep: str = "=",
            hint: str = "") -> Any:
    """``value`` as the kind of ``default`` (bool, int, float, str, or a list of one of them), else
    ``error("<name><sep><value> is not valid; expected <kind><hint>.")``.

    An integer is accepted where a number is expected (and returned as a float); a list comes back
    as a tuple; a None default or value passes unchecked."""
    if isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)):
            raise error(f"{name}{sep}{value!s} is not valid; expected a list{hint}.")
        return tuple(value if not default else (of_kind(name, v, default[0], error, sep, hint) for v in value))
    if default is None or value is None:
        return value
    for kind, accepts, label in _KINDS:
        if isinstance(default, kind):
            if (isinstance(value, bool) and kind is not bool) or not isinstance(value, accepts):
                raise error(f"{name}{sep}{value!s} is not valid; expected {label}{hint}.")
            return float(value) if kind is float else value
    return value


def check_kinds(value: Any, default: Any, name: str, error: type[Exception] = ConfigError,
                leaf: Callable[[str, Any, Any], None] | None = None, empty_lists: bool = True) -> None:
    """Walk ``value`` beside ``default`` (dicts and dataclass instances key by key, lists item by item
    against the default's first item) and refuse, with :func:`of_kind`, a value of another kind.

    Keys the default lacks are left to the constructor; ``leaf(name, value, default)`` then checks
    each single value's range; ``empty_lists=False`` refuses an empty list too."""
    if dataclasses.is_dataclass(default) and not isinstance(default, type):
        default = {f.name: getattr(default, f.name) for f in dataclasses.fields(default)}
    if isinstance(default, dict):
        if isinstance(value, dict):
            for key, sub in value.items():
                if key in default:
                    check_kinds(sub, default[key], f"{name}.{key}", error, leaf, empty_lists)
        return
    if isinstance(default, (list, tuple)):
        if not isinstance(value, (list, tuple)) or (not value and not empty_lists):
            raise error(f"{name}={value} is not valid; expected a list such as {list(default)}.")
        for i, sub in enumerate(value if default else ()):
            check_kinds(sub, default[0], f"{name}[{i}]", error, leaf, empty_lists)
        return
    of_kind(name, value, default, error)
    if leaf is not None and default is not None:
        leaf(name, value, default)


# --- single values a user typed (CLI keys, YAML fields): one sentence when wrong ---------------
def as_int(name: str, value: Any, minimum: int | None = None, maximum: int | None = None) -> int:
    """``value`` as an int (within ``minimum``..``maximum``), else ConfigError naming ``name`` and what was expected."""
    text = str(value).strip()
    try:
        number = int(text) if not isinstance(value, bool) else None
    except ValueError:
        number = None
    wanted = ("an integer" if minimum is None and maximum is None else f"an integer >= {minimum}"
              if maximum is None else f"an integer <= {maximum}" if minimum is None
              else f"an integer from {minimum} to {maximum}")
    if number is None or (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise ConfigError(f"{name}={value!s} is not valid; expected {wanted}.")
    return number


def as_float(name: str, value: Any, minimum: float | None = None, strict: bool = False,
             maximum: float | None = None) -> float:
    """``value`` as a finite float (>= or, with ``strict``, > ``minimum``; <= ``maximum``), else ConfigError."""
    import math

    try:
        number = float(str(value).strip()) if not isinstance(value, bool) else math.nan
    except ValueError:
        number = math.nan
    bound = "" if minimum is None else f" {'>' if strict else '>='} {minimum:g}"
    bound += "" if maximum is None else f"{' and' if bound else ''} <= {maximum:g}"
    if (not math.isfinite(number) or (minimum is not None and (number < minimum or (strict and number == minimum)))
            or (maximum is not None and number > maximum)):
        raise ConfigError(f"{name}={value!s} is not valid; expected a number{bound}.")
    return number


def as_bool(name: str, value: Any) -> bool:
    """true/false (also yes/no, 1/0) as a bool, else ConfigError naming ``name``."""
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off", "none", "null"):
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


MAX_SEED = 2**32 - 1  # numpy's and torch's seeding both accept this range
MAX_IMAGE_SIZE = 1024  # pixels a side; a larger frame is a typo, and 100000 px would exhaust memory


def check_common(cfg) -> None:
    """Refuse (ConfigError, one sentence) a wrong type or range in the keys every verb shares:
    ``seed``, ``out_dir`` and the ``env`` block."""
    from robot_rl.contracts import CAMERAS

    as_int("seed", cfg.seed, minimum=0, maximum=MAX_SEED)
    if "out_dir" in cfg and (cfg.out_dir is None or not str(cfg.out_dir).strip() or not isinstance(cfg.out_dir, str)):
        raise ConfigError(f"out_dir={cfg.out_dir} is not valid; expected a directory path.")
    env = cfg.get("env")
    if env is None:
        return
    rate_hz = as_float("env.control_rate_hz", env.control_rate_hz, minimum=0.0, strict=True, maximum=1000.0)
    as_float("env.sim_dt_s", env.sim_dt_s, minimum=0.0, strict=True, maximum=1.0 / rate_hz)
    as_choice("env.action_space", env.action_space, ("ee_delta", "joint_delta", "joint_abs"))
    as_int("env.image_size", env.image_size, minimum=16, maximum=MAX_IMAGE_SIZE)
    as_choice("env.render_profile", env.render_profile, ("fast", "pretty"))
    as_choice("env.reward", env.reward, ("dense", "sparse"))
    as_bool("env.privileged", env.privileged)
    as_bool("env.terminate_on_success", env.terminate_on_success)
    cameras = env.cameras
    if isinstance(cameras, str) or not all(str(c) in CAMERAS for c in cameras):
        raise ConfigError(f"env.cameras={cameras} is not valid; expected a list drawn from {', '.join(CAMERAS)}, "
                          "e.g. env.cameras=[front,wrist].")


# Ranges of agent hyperparameters by field name (Hydra checks neither types nor ranges):
# (low, high, low excluded). Any other float must be finite; an int whose default is >= 1 must be >= 1.
FIELD_RANGES = {"lr": (0.0, 10.0, True), "gamma": (0.0, 1.0, False), "tau": (0.0, 1.0, False),
                "expectile": (0.0, 1.0, True), "init_alpha": (0.0, None, True), "temperature": (0.0, None, False),
                "max_weight": (0.0, None, True), "weight_decay": (0.0, None, False), "bc_weight": (0.0, None, False)}
ZERO_OK_INTS = ("pad", "augment_pad")


def check_fields(values: dict, config_class: type, name: str) -> None:
    """Refuse (ConfigError) a value whose kind differs from the default of the same field of
    dataclass ``config_class`` (Hydra does not type-check plain YAML), or out of its range (see
    FIELD_RANGES); unknown keys are left to the constructor."""
    defaults = {k: v for k, v in defaults_of(config_class).items() if k in values}
    check_kinds(values, defaults, name, leaf=_field_range)


def _field_range(label: str, value: Any, default: Any) -> None:
    """The range check of one agent hyperparameter already known to be of its default's kind."""
    key = label.rsplit(".", 1)[-1].split("[")[0]
    if isinstance(default, bool):
        return
    if isinstance(default, int):
        if default >= 0:
            as_int(label, value, minimum=1 if default >= 1 and key not in ZERO_OK_INTS else 0)
    elif isinstance(default, float):
        low, high, strict = FIELD_RANGES.get(key, (None, None, False))
        as_float(label, value, minimum=low, strict=strict, maximum=high)
