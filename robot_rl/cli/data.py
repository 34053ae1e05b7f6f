"""``robot-rl data``: inspect, check, fix and combine Zarr episode stores.

Every user mistake or damaged store prints one sentence to stderr and returns 2; ``validate``
returns 1 when it finds problems, ``repair`` when some remain; Ctrl-C prints one sentence saying
what state things are in and returns 130. Heavy imports happen inside :func:`run`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would print usage and exit
        raise _UsageError(f"{self.prog}: {message}.")


def _number(kind: type, low: float, high: float | None = None, low_open: bool = False):
    """An argparse type: a finite ``kind`` within ``low``..``high`` (``low`` excluded with ``low_open``)."""
    import math

    wanted = ("an integer" if kind is int else "a number") + (f" > {low:g}" if low_open else f" >= {low:g}")
    wanted += f" and < {high:g}" if high is not None else ""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not math.isfinite(value) or value < low or (low_open and value == low) or (
                high is not None and value >= high):
            raise argparse.ArgumentTypeError(f"{text!r} is not valid; expected {wanted}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its own messages
    return parse


def _path(text: str) -> str:
    """An argparse type: a non-empty path."""
    if not text.strip():
        raise argparse.ArgumentTypeError("an empty path is not valid; expected the path of a Zarr store or file")
    return text


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="robot-rl data", description="Inspect, check, fix and combine Zarr episode stores.")
    verbs = p.add_subparsers(dest="verb", required=True, parser_class=_Parser, metavar="VERB")
    sub = verbs.add_parser("info", help="format, robot, episodes, keys, layout and size")
    sub.add_argument("store", type=_path)
    sub = verbs.add_parser("validate", help="list problems; exit 1 when there are any")
    sub.add_argument("store", type=_path)
    sub.add_argument("--deep", action="store_true", help="also decode every chunk")
    sub = verbs.add_parser("repair", help="rebuild the commit marker, keep every intact episode, drop damaged ones")
    sub.add_argument("store", type=_path)
    sub = verbs.add_parser("merge", help="concatenate stores into a new one")
    sub.add_argument("out", type=_path)
    sub.add_argument("inputs", nargs="+", type=_path)
    sub = verbs.add_parser("split", help="seeded train/validation split by episode")
    sub.add_argument("store", type=_path)
    sub.add_argument("--val-fraction", type=_number(float, 0.0, 1.0, low_open=True), required=True)
    sub.add_argument("--seed", type=_number(int, 0, 2.0**32), default=0)
    sub.add_argument("--train-out", type=_path)
    sub.add_argument("--val-out", type=_path)
    sub = verbs.add_parser("drop", help="remove episodes (in place unless --out)")
    sub.add_argument("store", type=_path)
    sub.add_argument("--episodes", type=_number(int, 0), nargs="+", required=True)
    sub.add_argument("--out", type=_path)
    sub = verbs.add_parser("stats", help="lengths, success, sources, returns, per-key moments")
    sub.add_argument("store", type=_path)
    sub.add_argument("--json", action="store_true", help="print JSON")
    sub = verbs.add_parser("export-video", help="an .mp4 of episodes (grid for several) or a .png of final frames")
    sub.add_argument("store", type=_path)
    sub.add_argument("--episodes", type=_number(int, 0), nargs="+", default=[0])
    sub.add_argument("--out", type=_path, required=True)
    sub.add_argument("--camera")
    sub.add_argument("--fps", type=_number(float, 0.0, 1000.0, low_open=True))
    return p


def run(argv: list[str]) -> int:
    """Run one ``robot-rl data`` verb; returns the exit code."""
    try:
        args = _parser().parse_args(argv)
    except _UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    except SystemExit as exc:  # --help
        return int(exc.code or 0)
    from robot_rl.config import one_line, shorten
    from robot_rl.data.format import StoreError

    try:
        return _VERBS[args.verb](args)
    except _UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    except StoreError as exc:
        print(f"robot-rl data {args.verb}: {one_line(exc)}", file=sys.stderr)
        return 2
    except OSError as exc:
        where = f" ({exc.filename})" if exc.filename else ""
        print(shorten(f"robot-rl data {args.verb}: {exc.strerror or exc}{where}."), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"robot-rl data {args.verb}: interrupted by Ctrl-C; {_INTERRUPTED.get(args.verb, _READ_ONLY)}",
              file=sys.stderr)
        return 130


_READ_ONLY = "nothing was changed."
_INTERRUPTED = {
    "merge": "no output store was written and nothing was left behind.",
    "split": "no output store was written and nothing was left behind.",
    "drop": "the store holds either all of its episodes or none of the dropped ones.",
    "repair": "every step taken so far is safe; run `robot-rl data repair` again to finish.",
    "export-video": "the video may be incomplete.",
}


def _info(args: argparse.Namespace) -> int:
    from robot_rl.data.store import EpisodeStore
    from robot_rl.data.report import describe

    with EpisodeStore.open(args.store) as store:
        print(describe(store))
    return 0


def _validate(args: argparse.Namespace) -> int:
    from robot_rl.data.store import EpisodeStore

    with EpisodeStore.open(args.store, check=False) as store:
        problems = store.validate(deep=args.deep)
        for problem in problems:
            print(f"problem: {problem}")
        if not problems:
            print(f"ok: {store.path} has {store.num_episodes} episodes, {store.num_steps} steps.")
    return 1 if problems else 0


def _repair(args: argparse.Namespace) -> int:
    from robot_rl.data.store import EpisodeStore

    # The real path: repair swaps a rebuilt store into place, so a store given as "." (or through
    # a link) would be the swapped-out old folder when it is opened again to report.
    args.store = os.path.realpath(args.store)
    with EpisodeStore.open(args.store, mode="a", truncate_tail=False, check=False) as store:
        actions = store.repair()
    for action in actions:
        print(f"repaired: {action}")
    with EpisodeStore.open(args.store, check=False) as store:
        left = store.validate()
        for problem in left:
            print(f"not repairable: {problem}")
        print(f"{store.path}: {store.num_episodes} episodes, {store.num_steps} steps"
              f"{'' if actions else '; nothing needed repair'}.")
    return 1 if left else 0


def _merge(args: argparse.Namespace) -> int:
    from robot_rl.data.store import EpisodeStore
    from robot_rl.data.tools import merge

    from pathlib import Path

    seen: dict[Path, str] = {}
    for path in args.inputs:
        if Path(path).resolve() in seen:
            raise _UsageError(f"robot-rl data merge: {path} is given twice (also as {seen[Path(path).resolve()]}); "
                              "expected each input store once, or its episodes would be duplicated.")
        seen[Path(path).resolve()] = path
    out = merge(args.out, args.inputs)
    with EpisodeStore.open(out) as store:
        print(f"merged {len(args.inputs)} stores into {out}: {store.num_episodes} episodes, {store.num_steps} steps.")
    return 0


def _split(args: argparse.Namespace) -> int:
    from robot_rl.data.store import EpisodeStore
    from robot_rl.data.tools import split

    with EpisodeStore.open(args.store) as store:
        if store.num_episodes < 2:
            raise _UsageError(f"robot-rl data split: {args.store} has {store.num_episodes} episode(s); expected at "
                              "least 2, so that both halves get one.")
    for path in split(args.store, args.val_fraction, args.seed, args.train_out, args.val_out):
        with EpisodeStore.open(path) as store:
            print(f"{path}: {store.num_episodes} episodes, {store.num_steps} steps.")
    return 0


def _drop(args: argparse.Namespace) -> int:
    from robot_rl.data.store import EpisodeStore
    from robot_rl.data.tools import drop

    with EpisodeStore.open(args.store) as store:
        total = store.num_episodes
    if total and set(args.episodes) >= set(range(total)):
        raise _UsageError(f"robot-rl data drop: --episodes {' '.join(map(str, args.episodes))} would drop every "
                          f"episode of {args.store}; expected to keep at least one (delete the store instead).")
    out = drop(args.store, args.episodes, args.out)
    with EpisodeStore.open(out) as store:
        print(f"dropped {len(set(args.episodes))} episodes; {out} has {store.num_episodes} episodes.")
    return 0


def _stats(args: argparse.Namespace) -> int:
    from robot_rl.data.store import EpisodeStore
    from robot_rl.data.report import format_stats
    from robot_rl.data.tools import stats

    with EpisodeStore.open(args.store) as store:
        result = stats(store)
    print(json.dumps(result, indent=2) if args.json else format_stats(result))
    return 0


def _export_video(args: argparse.Namespace) -> int:
    from robot_rl.data.store import EpisodeStore
    from robot_rl.data.video import export_video

    with EpisodeStore.open(args.store) as store:
        frames = export_video(store, args.episodes, args.out, camera=args.camera, fps=args.fps)
    print(f"wrote {args.out}: {frames} frames of {len(args.episodes)} episodes.")
    return 0


_VERBS: dict[str, Any] = {
    "info": _info, "validate": _validate, "repair": _repair, "merge": _merge, "split": _split,
    "drop": _drop, "stats": _stats, "export-video": _export_video,
}
