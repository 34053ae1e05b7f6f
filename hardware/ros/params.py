"""Node parameters from a config dataclass: declare every field with its default, read them back."""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any, TypeVar

from rcl_interfaces.msg import ParameterDescriptor

T = TypeVar("T")


def declare_config(node, cls: type[T], **overrides: Any) -> T:
    """Declare one ROS parameter per field of ``cls`` and build ``cls`` from their values.

    ``overrides`` replace defaults (not values given on the command line or in a params file).
    Each value must be of its default's kind (an integer is fine where a number is expected);
    lists become tuples. A value of the wrong kind raises ValueError naming the parameter.
    """
    values = {}
    for f in fields(cls):
        default = overrides.get(f.name, f.default if f.default is not MISSING else f.default_factory())  # type: ignore[misc]
        default = list(default) if isinstance(default, tuple) else default
        descriptor = ParameterDescriptor(dynamic_typing=True, description=f.name)
        value = node.declare_parameter(f.name, default, descriptor).value
        values[f.name] = _of_kind(node.get_name(), f.name, value, default)
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{node.get_name()}: invalid parameters: {error}") from None


def _of_kind(node_name: str, name: str, value: Any, default: Any) -> Any:
    """``value`` as the kind of ``default`` (bool, int, float, str, or a list of one of them)."""
    if isinstance(default, list):
        if not isinstance(value, (list, tuple)):
            raise _wrong(node_name, name, value, default, "a list")
        item = default[0] if default else None
        return tuple(value if item is None else (_of_kind(node_name, name, v, item) for v in value))
    if default is None or value is None:
        return value
    for kind, accepts, label in ((bool, (bool,), "true or false"), (int, (int,), "an integer"),
                                 (float, (int, float), "a number"), (str, (str,), "text")):
        if isinstance(default, kind):
            if isinstance(value, bool) and kind is not bool or not isinstance(value, accepts):
                raise _wrong(node_name, name, value, default, label)
            return float(value) if kind is float else value
    return value


def _wrong(node_name: str, name: str, value: Any, default: Any, expected: str) -> ValueError:
    return ValueError(f"{node_name}: parameter {name}:={value!r} is not valid; expected {expected} "
                      f"(default {default!r}).")
