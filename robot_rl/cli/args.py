"""One argument style for every verb:

    robot-rl VERB [SUBCOMMAND] [PATH ...] [key=value ...]

- SUBCOMMAND: for the verbs that have them (``sim render``, ``data info``, ``reward train``).
- PATH: the positional paths a verb declares (``data info STORE``, ``data merge OUT IN ...``).
- ``key=value``: Hydra overrides, composed against the verb's own config
  (``robot_rl/conf/<verb>.yaml``); a key the verb does not read is refused with one sentence.
  ``--name v1 v2`` is the same as ``name=[v1,v2]`` (one value: ``name=v1``) and a bare
  ``--flag`` is ``flag=true``: the option spelling ``robot-rl data`` has always accepted.
- ``-h``/``--help`` anywhere: the verb's help; ``-m``/``--multirun``: a sweep (train).

``robot-rl launch`` alone keeps ROS 2's ``name:=value``: its arguments are a ROS 2 launch
file's, and the same words run under ``ros2 launch``.
"""

from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass, field

from robot_rl.config import ConfigError

_KEY = re.compile(r"[+~]{0,2}[A-Za-z_][A-Za-z0-9_.\-]*")


@dataclass
class Args:
    """One parsed command line: what each verb reads, in the shared style."""

    sub: str | None = None
    paths: list[str] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)
    spelled: dict[str, str] = field(default_factory=dict)  # key -> as typed (--val-fraction), for messages
    multirun: bool = False
    help: bool = False

    def name(self, key: str) -> str:
        """The key as the user typed it: ``--val-fraction`` or ``val_fraction``."""
        return self.spelled.get(key, key)


def parse(argv: list[str], verb: str, subs: tuple[str, ...] = (), flags: tuple[str, ...] = (),
          paths: bool = False) -> Args:
    """Split ``argv`` into sub-command, paths and overrides; refuse (ConfigError) a token that is none."""
    args = Args(help=any(a in ("-h", "--help") for a in argv))
    rest = [a for a in argv if a not in ("-h", "--help")]
    if subs and rest and not _is_override(rest[0]) and not rest[0].startswith("-"):
        args.sub = rest.pop(0)
    if args.help:
        return args
    if subs and args.sub is None:
        raise ConfigError(f"which command? expected `robot-rl {verb} <{'|'.join(subs)}> ...`.")
    if subs and args.sub not in subs:
        raise ConfigError(f"unknown command {args.sub!r}; choose one of {', '.join(subs)}.")
    index = 0
    while index < len(rest):
        token = rest[index]
        index += 1
        if token in ("-m", "--multirun"):
            args.multirun = True
        elif token.startswith("--") and len(token) > 2:
            key, given, inline = token[2:].partition("=")  # --format=dp is --format dp
            key, token = key.replace("-", "_"), token.partition("=")[0]
            values = [inline] if given and inline else []
            # --name takes the words up to the next option or key=value
            while (key not in flags and not given and index < len(rest) and not rest[index].startswith("--")
                   and not _is_override(rest[index])):
                values.append(rest[index])
                index += 1
            if key not in flags and not values:
                raise ConfigError(f"{token} needs a value; expected {token} <value>.")
            args.spelled[key] = token
            value = "true" if key in flags else values[0] if len(values) == 1 else f"[{','.join(values)}]"
            args.overrides.append(f"{key}={value}")
        elif paths and not _is_override(token):
            if not token.strip():
                raise ConfigError("an empty path is not valid; expected the path of a Zarr store or file.")
            args.paths.append(token)
        else:
            args.overrides.append(token)
    return args


def _is_override(token: str) -> bool:
    """``key=value`` with a key-shaped left side (a path such as ``a,b=c.zarr`` is not one)."""
    key, sep, _ = token.partition("=")
    return bool(sep) and bool(_KEY.fullmatch(key)) and not os.path.exists(token)


def refuse_unknown(overrides: list[str], known: tuple[str, ...], where: str, args: Args | None = None) -> None:
    """Refuse (one sentence) an override whose top-level key is not one of ``known``."""
    for item in overrides:
        key, sep, _ = item.partition("=")
        key = key.lstrip("+")
        if sep and key.split(".")[0] not in known:  # not key=value at all: compose says so
            value = item.partition("=")[2]
            shown = (f"{args.name(key)}{'' if value == 'true' else ' ' + value}" if args and key in args.spelled
                     else item)
            expected = f"expected only {', '.join(k + '=' for k in known)}" if known else "it takes no options"
            raise ConfigError(f"{shown} is not read by `{where}`; {expected}.")


def expand_sweep(overrides: list[str]) -> list[list[str]]:
    """``seed=0,1,2 task=reach,lift`` -> one override list per combination (Hydra's basic sweeper)."""
    axes = []
    for item in overrides:
        key, sep, value = item.partition("=")
        if sep and "," in value and not value.lstrip().startswith(("[", "{", "'", '"')):
            axes.append([f"{key}={v}" for v in value.split(",")])
        else:
            axes.append([item])
    return [list(combo) for combo in itertools.product(*axes)]


def chosen(overrides: list[str], group: str, config_name: str = "config") -> str:
    """The option picked for ``group`` on the command line, else the config tree's default."""
    picks = [o.split("=", 1)[1] for o in overrides if o.split("=", 1)[0] in (group, f"+{group}")]
    if picks:
        return picks[-1]
    from omegaconf import OmegaConf

    from robot_rl.config import CONF_DIR

    for entry in OmegaConf.load(CONF_DIR / f"{config_name}.yaml").defaults:
        if hasattr(entry, "keys") and group in entry:
            return str(entry[group])
    raise ConfigError(f"no default {group} in the config tree.")
