"""Node parameters from a config dataclass: declare every field with its default, read them back."""

from __future__ import annotations

from dataclasses import MISSING, fields
from typing import Any, TypeVar

from rcl_interfaces.msg import ParameterDescriptor

from robot_rl.schema import of_kind

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
        values[f.name] = of_kind(f"{node.get_name()}: parameter {f.name}", value, default, ValueError, sep=":=",
                                 hint=f" (default {default!r})")
    try:
        return cls(**values)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{node.get_name()}: invalid parameters: {error}") from None
