"""robot_rl.schema: the one dict -> dataclass converter and the one "value of its default's kind" check."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import pytest

from robot_rl.config import ConfigError
from robot_rl.schema import build, check_kinds, of_kind


@dataclass(frozen=True)
class Inner:
    size: int = 2


@dataclass(frozen=True)
class Outer:
    name: str
    cameras: tuple[str, ...] = ("front",)
    inner: Inner = field(default_factory=Inner)
    required_inner: Inner | None = None


def test_build_makes_nested_dataclasses_and_tuples():
    built = build(Outer, {"name": "a", "cameras": ["front", "wrist"], "inner": {"size": 3}}, "outer")
    assert built == Outer("a", ("front", "wrist"), Inner(3))


UNKNOWN_CASES = [({"name": "a", "camras": []}, "outer has unknown field camras; valid fields: cameras, inner, name, "
                                               "required_inner."),
                 ({"name": "a", "inner": {"sise": 1}}, "outer.inner has unknown field sise")]


@pytest.mark.parametrize("values, words", UNKNOWN_CASES)
def test_build_refuses_an_unknown_key_in_one_sentence_listing_the_valid_ones(values, words):
    with pytest.raises(ValueError, match="unknown") as caught:
        build(Outer, values, "outer", ValueError)
    assert words in str(caught.value) and "\n" not in str(caught.value)


KIND_CASES = [("abc", 1.0, "abc", "a number"), (True, 1, "True", "an integer"), (1, True, "1", "true or false"),
              (3, "x", "3", "text"), (5, [1], "5", "a list"), ([1, "x"], [1], "x", "an integer")]


@pytest.mark.parametrize("value, default, shown, expected", KIND_CASES)
def test_of_kind_names_the_value_and_the_kind_expected(value, default, shown, expected):
    with pytest.raises(ConfigError, match=re.escape(f"k={shown} is not valid; expected {expected}.")):
        of_kind("k", value, default)


def test_of_kind_accepts_an_integer_for_a_number_and_returns_tuples():
    assert of_kind("k", 2, 1.0) == 2.0 and isinstance(of_kind("k", 2, 1.0), float)
    assert of_kind("k", [0, 1], (0.5,)) == (0.0, 1.0)
    assert of_kind("k", None, 1.0) is None and of_kind("k", "x", None) == "x"


def test_check_kinds_walks_blocks_lists_and_dataclasses_and_calls_the_range_check():
    seen = []
    check_kinds({"a": {"b": [1, 2]}, "extra": 1}, {"a": {"b": [0]}}, "cfg", leaf=lambda *x: seen.append(x))
    assert seen == [("cfg.a.b[0]", 1, 0), ("cfg.a.b[1]", 2, 0)]
    with pytest.raises(ConfigError, match=r"cfg\.inner\.size=x is not valid; expected an integer\."):
        check_kinds({"inner": {"size": "x"}}, Outer("a"), "cfg")
    with pytest.raises(ConfigError, match=r"cfg\.b=\[\] is not valid; expected a list such as \[0\]\."):
        check_kinds({"b": []}, {"b": [0]}, "cfg", empty_lists=False)
