"""Plain values (YAML blocks, budget files, ROS parameters) checked against and built into config dataclasses.

The one home for two questions every config reader asks: *does this dict name only fields the
dataclass has* (:func:`build`, :func:`check_keys`) and *is this value of its default's kind*
(:func:`of_kind`, :func:`check_kinds`). Each refusal is one sentence naming the key; the caller
chooses the error type its users already see (ConfigError, RewardModelError, ValueError).
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable, Iterable
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
