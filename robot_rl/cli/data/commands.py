"""The ``robot-rl data`` commands, each given its checked paths and options (see ``__init__``)."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace
from typing import Any

from robot_rl.config import ConfigError

_READ_ONLY = "nothing was changed."
_INTERRUPTED = {
    "merge": "no output store was written and nothing was left behind.",
    "split": "no output store was written and nothing was left behind.",
    "drop": "the store holds either all of its episodes or none of the dropped ones.",
    "repair": "every step taken so far is safe; run `robot-rl data repair` again to finish.",
    "export-video": "the video may be incomplete.",
    "export": "no output was written and nothing was left behind.",
    "import": "no store was written and nothing was left behind.",
}


def _info(args: SimpleNamespace) -> int:
    from robot_rl.data.store import EpisodeStore
    from robot_rl.data.summary import describe

    with EpisodeStore.open(args.store) as store:
        print(describe(store))
    return 0


def _validate(args: SimpleNamespace) -> int:
    from robot_rl.data.store import EpisodeStore

    with EpisodeStore.open(args.store, check=False) as store:
        problems = store.validate(deep=args.deep)
        for problem in problems:
            print(f"problem: {problem}")
        if not problems:
            print(f"ok: {store.path} has {store.num_episodes} episodes, {store.num_steps} steps.")
    return 1 if problems else 0


def _repair(args: SimpleNamespace) -> int:
    from robot_rl.data.store import EpisodeStore

    # The real path: repair swaps a rebuilt store into place, so a store given as "." (or through
    # a link) would be the swapped-out old folder when it is opened again to report.
    from robot_rl.data.local import is_remote

    args.store = args.store if is_remote(args.store) else os.path.realpath(args.store)
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


def _merge(args: SimpleNamespace) -> int:
    from robot_rl.data.store import EpisodeStore
    from robot_rl.data.tools import merge

    from pathlib import Path

    seen: dict[Path, str] = {}
    for path in args.inputs:
        if Path(path).resolve() in seen:
            raise ConfigError(f"{path} is given twice (also as {seen[Path(path).resolve()]}); "
                              "expected each input store once, or its episodes would be duplicated.")
        seen[Path(path).resolve()] = path
    out = merge(args.out, args.inputs)
    with EpisodeStore.open(out) as store:
        print(f"merged {len(args.inputs)} stores into {out}: {store.num_episodes} episodes, {store.num_steps} steps.")
    return 0


def _split(args: SimpleNamespace) -> int:
    from robot_rl.data.store import EpisodeStore
    from robot_rl.data.tools import split

    with EpisodeStore.open(args.store) as store:
        if store.num_episodes < 2:
            raise ConfigError(f"{args.store} has {store.num_episodes} episode(s); expected at "
                              "least 2, so that both halves get one.")
    for path in split(args.store, args.val_fraction, args.seed, args.train_out, args.val_out):
        with EpisodeStore.open(path) as store:
            print(f"{path}: {store.num_episodes} episodes, {store.num_steps} steps.")
    return 0


def _drop(args: SimpleNamespace) -> int:
    from robot_rl.data.store import EpisodeStore
    from robot_rl.data.tools import drop

    with EpisodeStore.open(args.store) as store:
        total = store.num_episodes
    if total and set(args.episodes) >= set(range(total)):
        raise ConfigError(f"episodes={args.episodes} would drop every "
                          f"episode of {args.store}; expected to keep at least one (delete the store instead).")
    out = drop(args.store, args.episodes, args.out)
    with EpisodeStore.open(out) as store:
        print(f"dropped {len(set(args.episodes))} episodes; {out} has {store.num_episodes} episodes.")
    return 0


def _stats(args: SimpleNamespace) -> int:
    from robot_rl.data.store import EpisodeStore
    from robot_rl.data.summary import format_stats
    from robot_rl.data.tools import stats

    with EpisodeStore.open(args.store) as store:
        result = stats(store)
    print(json.dumps(result, indent=2) if args.json else format_stats(result))
    return 0


def _export_video(args: SimpleNamespace) -> int:
    from robot_rl.data.store import EpisodeStore
    from robot_rl.data.video import export_video

    with EpisodeStore.open(args.store) as store:
        frames = export_video(store, args.episodes, args.out, camera=args.camera, fps=args.fps)
    print(f"wrote {args.out}: {frames} frames of {len(args.episodes)} episodes.")
    return 0


def _export(args: SimpleNamespace) -> int:
    from robot_rl.data.store import EpisodeStore

    with EpisodeStore.open(args.store) as store:
        print(args.converter.export_store(store, args.out, args))
    return 0


def _import(args: SimpleNamespace) -> int:
    print(args.converter.import_store(args.input, args.out, args))
    return 0


def _view(args: SimpleNamespace) -> int:
    from robot_rl.interop.rerun import view

    return view(args.store, args.episode, args.out)


def interrupted(command: str) -> str:
    """What state the store is in after Ctrl-C during ``command``."""
    return _INTERRUPTED.get(command, _READ_ONLY)


COMMANDS: dict[str, Any] = {
    "info": _info, "validate": _validate, "repair": _repair, "merge": _merge, "split": _split,
    "drop": _drop, "stats": _stats, "export-video": _export_video, "export": _export, "import": _import,
    "view": _view,
}
