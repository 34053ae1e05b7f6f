"""The one argument style every verb reads (robot_rl.cli.args)."""

from __future__ import annotations

import pytest

from robot_rl.cli.args import expand_sweep, parse, refuse_unknown
from robot_rl.config import ConfigError


def test_sub_command_paths_and_overrides():
    args = parse(["split", "a,b=c.zarr", "val_fraction=0.2", "--seed", "3"], "data", subs=("split",), paths=True)
    assert (args.sub, args.paths, args.overrides) == ("split", ["a,b=c.zarr"], ["val_fraction=0.2", "seed=3"])
    assert args.name("seed") == "--seed" and args.name("val_fraction") == "val_fraction"


def test_option_spelling_becomes_key_value():
    args = parse(["drop", "s.zarr", "--episodes", "1", "3", "--deep", "--out", "o.zarr"], "data", subs=("drop",),
                 flags=("deep",), paths=True)
    assert args.overrides == ["episodes=[1,3]", "deep=true", "out=o.zarr"]
    # an option's words end at the next key=value; --name=value is the same as --name value
    for spelled in (["--format", "dp"], ["--format=dp"]):
        args = parse(["export", "s.zarr", *spelled, "out=x.zarr"], "data", subs=("export",), paths=True)
        assert args.overrides == ["format=dp", "out=x.zarr"] and args.name("format") == "--format"


def test_help_and_multirun_anywhere():
    assert parse(["render", "task=reach", "--help"], "sim", subs=("render",)).help
    args = parse(["-m", "seed=0,1"], "train")
    assert args.multirun and args.overrides == ["seed=0,1"]


@pytest.mark.parametrize("argv, says", [([], "which command"), (["fly"], "unknown command 'fly'"),
                                        (["render", "--out"], "--out needs a value"),
                                        (["render", "--out="], "--out needs a value")])
def test_refusals_are_one_sentence(argv, says):
    with pytest.raises(ConfigError, match=says):
        parse(argv, "sim", subs=("render",))


def test_unknown_keys_are_refused_by_name():
    with pytest.raises(ConfigError, match="epsiodes=3 is not read by `robot-rl eval`; expected only run=, episodes="):
        refuse_unknown(["run=x", "epsiodes=3"], ("run", "episodes"), "robot-rl eval")
    refuse_unknown(["run=x", "episodes=3"], ("run", "episodes"), "robot-rl eval")


def test_sweep_expands_every_combination():
    assert expand_sweep(["seed=0,1", "task=reach", "env.cameras=[front,wrist]"]) == [
        ["seed=0", "task=reach", "env.cameras=[front,wrist]"], ["seed=1", "task=reach", "env.cameras=[front,wrist]"]]
