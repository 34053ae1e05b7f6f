"""usage: robot-rl data COMMAND STORE [key=value ...]

Inspect, check, fix and combine Zarr episode stores.

  robot-rl data info STORE                    format, robot, episodes, keys, layout and size
  robot-rl data validate STORE [deep=true]    list problems (deep: decode every chunk); exit 1 when any
  robot-rl data repair STORE                  rebuild the commit marker, keep intact episodes, drop damaged ones
  robot-rl data merge OUT IN [IN ...]         concatenate stores into a new one
  robot-rl data split STORE val_fraction=F [seed=0] [train_out=P] [val_out=P]   seeded split by episode
  robot-rl data drop STORE episodes=[1,3] [out=P]      remove episodes (in place unless out=)
  robot-rl data stats STORE [json=true]       lengths, success, sources, returns, per-key moments
  robot-rl data export-video STORE out=FILE [episodes=[0,1]] [camera=front] [fps=20]
                                              an .mp4 (a grid for several episodes) or a .png of final frames
  robot-rl data export STORE format=dp|lerobot|rerun out=PATH [episodes=[0,1]] [key_map={...}]
                                              the store in another tool's format (docs/interop/README.md)
  robot-rl data import INPUT format=dp|lerobot|rosbag2 out=STORE [topics=map.yaml] [fps=10] ...
                                              another tool's dataset or a ROS 2 bag into a new store
  robot-rl data view STORE [episode=0]        open one episode in the Rerun viewer (or write its .rrd)

A STORE that is only read (info, validate, stats, export, view) may be an https:// or s3:// URL.
Options are key=value (robot_rl/conf/data.yaml); the spelling `--val-fraction 0.2`,
`--episodes 1 3`, `--deep` is the same. Every user mistake or damaged store prints one sentence
and returns 2; `validate` returns 1 when it finds problems, `repair` when some remain; Ctrl-C
prints one sentence saying what state things are in and returns 130.
"""

from __future__ import annotations

import sys
from types import SimpleNamespace

from robot_rl.cli.args import Args, parse, refuse_unknown
from robot_rl.config import ConfigError, one_line, shorten

# sub-command -> (positional names, the last one taking several; the keys it reads)
COMMANDS = {
    "info": (("store",), ()), "validate": (("store",), ("deep",)), "repair": (("store",), ()),
    "merge": (("out", "inputs"), ()), "split": (("store",), ("val_fraction", "seed", "train_out", "val_out")),
    "drop": (("store",), ("episodes", "out")), "stats": (("store",), ("json",)),
    "export-video": (("store",), ("episodes", "out", "camera", "fps")),
    "export": (("store",), ("format", "out", "episodes")),
    "import": (("input",), ("format", "out")),
    "view": (("store",), ("episode", "out")),
}
# export and import also read the options their format declares (robot_rl/interop)
CONVERTING = ("export", "import")


def run(argv: list[str]) -> int:
    """Run one ``robot-rl data`` command; returns the exit code."""
    from robot_rl.cli.data import commands

    sub = next((a for a in argv if a in COMMANDS), None)
    try:
        args = parse(argv, "data", subs=tuple(COMMANDS), flags=("deep", "json"), paths=True)
        if args.help:
            print(__doc__)
            return 0
        options = check(args)
    except ConfigError as error:
        print(f"robot-rl data{' ' + sub if sub else ''}: {one_line(error)}", file=sys.stderr)
        return 2
    from robot_rl.data.format import StoreError

    try:
        return commands.COMMANDS[args.sub](options)
    except (ConfigError, StoreError) as error:
        print(f"robot-rl data {args.sub}: {one_line(error)}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        print(shorten(f"robot-rl data {args.sub}: {exc.strerror or exc}{where}."), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"robot-rl data {args.sub}: interrupted by Ctrl-C; {commands.interrupted(args.sub)}", file=sys.stderr)
        return 130


def check(args: Args) -> SimpleNamespace:
    """The command's paths and options, each refused (ConfigError, one sentence) when not valid."""
    from robot_rl.config import compose
    from robot_rl.schema import as_float, as_int

    names, keys = COMMANDS[args.sub]
    module = None
    if args.sub in CONVERTING:
        from robot_rl.interop import converter

        chosen = next((o.partition("=")[2] for o in args.overrides if o.lstrip("+").startswith("format=")), None)
        module = converter(chosen, args.sub)
        keys = (*keys, *getattr(module, f"{args.sub.upper()}_OPTIONS"))
    refuse_unknown(args.overrides, keys, f"robot-rl data {args.sub}{f' format={chosen}' if module else ''}", args)
    least = len(names)
    if len(args.paths) < least or (len(args.paths) > least and names[-1] != "inputs"):
        raise ConfigError(f"expected {' '.join(n.upper() for n in names)}{' ...' if names[-1] == 'inputs' else ''}"
                          f" as paths, got {len(args.paths)}: {' '.join(args.paths) or 'none'}.")
    # task= and robot= name the sim's config groups to Hydra; a format's options are the format's
    # own, so they are read here as YAML values and never composed as groups.
    own = getattr(module, f"{args.sub.upper()}_OPTIONS", ()) if module else ()
    given = {o.partition("=")[0].lstrip("+"): o.partition("=")[2] for o in args.overrides}
    cfg = compose([o for o in args.overrides if o.partition("=")[0].lstrip("+") not in own], config_name="data")
    paths = dict(zip(names, args.paths)) | ({"inputs": args.paths[1:]} if names[-1] == "inputs" else {})
    options = SimpleNamespace(**paths, **{k: _value(args.name(k), given[k]) if k in own and k in given else
                                           None if k in own else cfg[k] for k in keys})
    options.converter = module
    for key in ("train_out", "val_out", "out", "camera"):
        value = getattr(options, key, None)
        if key in keys and value is not None and not str(value).strip():
            raise ConfigError(f"{args.name(key)} is empty; expected a path.")
    if "val_fraction" in keys:
        if options.val_fraction is None:
            raise ConfigError("val_fraction= (--val-fraction) is required; expected a number > 0 and < 1 (e.g. val_fraction=0.2).")
        options.val_fraction = as_float(args.name("val_fraction"), options.val_fraction, minimum=0.0, strict=True,
                                        maximum=1.0)
        if options.val_fraction >= 1.0:
            raise ConfigError(f"{args.name('val_fraction')}={options.val_fraction:g} is not valid; expected a number "
                              "> 0 and < 1.")
        options.seed = as_int(args.name("seed"), options.seed, minimum=0, maximum=2**32 - 1)
    if "episodes" in keys:
        if options.episodes is None and args.sub == "drop":
            raise ConfigError("episodes= (--episodes) is required; expected the episodes to drop, e.g. episodes=[1,3].")
        if options.episodes is None and args.sub == "export":
            return _checked_output(args, options)
        raw = [0] if options.episodes is None else options.episodes
        raw = list(raw) if hasattr(raw, "__len__") and not isinstance(raw, str) else [raw]
        options.episodes = [as_int(args.name("episodes"), e, minimum=0) for e in raw]
    _checked_output(args, options)
    if args.sub == "view":
        options.episode = as_int(args.name("episode"), 0 if options.episode is None else options.episode, minimum=0)
    if args.sub == "export-video":
        if options.out is None:
            raise ConfigError("out= (--out) is required; expected the .mp4 or .png to write (e.g. out=episodes.mp4).")
        if options.fps is not None:
            options.fps = as_float(args.name("fps"), options.fps, minimum=0.0, strict=True, maximum=1000.0)
    return options


def _checked_output(args: Args, options: SimpleNamespace) -> SimpleNamespace:
    if args.sub in CONVERTING and options.out is None:
        raise ConfigError(f"out= (--out) is required; expected the new {'output' if args.sub == 'export' else 'store'} "
                          "path (e.g. out=exported).")
    return options


def _value(name: str, text: str) -> object:
    """A format option's value as YAML reads it (``key_map={obs/state: state}``, ``fps=10``)."""
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        raise ConfigError(f"{name}={text} could not be read; expected a value, a [list] or a {{key: value}} "
                          "mapping.") from None
    return None if value is None or value == "null" else value
