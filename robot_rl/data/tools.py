"""Whole-store tools: merge, split, drop and statistics.

Every tool writes a new store through :class:`StoreAppender` (so the same commit order holds)
into a hidden sibling directory and renames it into place only when it is complete.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from robot_rl.contracts import DATA_GROUP, REWARD
from robot_rl.data.appender import StoreAppender
from robot_rl.data.episodes import EpisodeInfo
from robot_rl.data.format import StoreError, is_image_key, time_block
from robot_rl.data.integrity import expected_crc, short
from robot_rl.data.local import refuse_dangling_link, remove_stale_partials
from robot_rl.data.splits import split_episodes
from robot_rl.data.store import EpisodeStore

log = logging.getLogger(__name__)


def copy_episodes(src: EpisodeStore, appender: StoreAppender, episodes: Sequence[int],
                  infos: Sequence[EpisodeInfo] | None = None) -> None:
    """Append ``episodes`` of ``src`` to ``appender``'s store, recording where each came from.

    Every episode's rows are checked against the checksums recorded when it was committed, so a
    corrupt source is refused instead of copied. ``infos`` overrides ``src``'s records (repair).
    """
    for index in episodes:
        sl = src.episode_slice(int(index))
        info = src.episode_info(int(index)) if infos is None else infos[int(index)]
        for lo, hi in appender.spans(sl.stop - sl.start):  # the destination's blocks: each shard written once
            appender.write({key: src.read_slice(key, sl.start + lo, sl.start + hi) for key in src.schema})
        for key in src.schema:
            expected = expected_crc(src, key, int(index), info)
            if expected is not None and appender.pending_crcs.get(key) != expected:
                raise StoreError(f"{src.path}: episode {index} of {DATA_GROUP}/{key} does not match the checksum "
                                 "recorded when it was committed (a corrupt chunk); run `robot-rl data repair` "
                                 "on it first.")
        info = replace(info, extra={**info.extra, "origin": {"store": src.path, "episode": int(index)}})
        appender.commit(info)


def write_store(out: str | os.PathLike, template: EpisodeStore,
                parts: Sequence[tuple[EpisodeStore, Sequence[int]]],
                infos: Sequence[EpisodeInfo] | None = None, publish: bool = True) -> Path:
    """Create ``out`` with ``template``'s schema and attributes holding the given episodes.

    It is built in a hidden sibling folder that is removed on any failure or Ctrl-C, and
    renamed into place only when complete. ``publish=False`` returns the finished hidden
    folder instead (the caller renames or removes it).
    """
    target = Path(out)
    refuse_dangling_link(target)
    if target.exists():
        raise StoreError(f"{target} already exists; choose a new output path.")
    for src, _ in parts:
        inside = Path(os.path.realpath(src.path))
        if inside in Path(os.path.realpath(target)).parents:  # a later rebuild of src would delete it
            raise StoreError(f"{target} is inside the input store {src.path}; choose an output path outside it.")
    remove_stale_partials(target)
    tmp = target.with_name(f".{target.name}.partial-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    schema = {k: (s.shape, s.dtype) for k, s in template.schema.items()}
    try:
        try:
            dst = EpisodeStore.create(tmp, schema, template.store_attrs)
        except StoreError as exc:  # name the output the user asked for, not its hidden build folder
            raise StoreError(str(exc).replace(str(tmp), str(target))) from exc
        with dst:
            appender = StoreAppender(dst)
            for src, episodes in parts:
                copy_episodes(src, appender, episodes, infos)
        if not publish:
            return tmp
        os.rename(tmp, target)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise StoreError(f"writing {target} failed ({exc.strerror or short(exc)}); nothing was written "
                         "there.") from exc
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def replace_in_place(store: EpisodeStore, keep: Sequence[int], infos: Sequence[EpisodeInfo] | None = None) -> Path:
    """Rebuild ``store`` (open in ``"a"`` mode) with only ``keep`` and swap it in atomically."""
    here = Path(os.path.realpath(store.path))  # swap the store itself, never a symlink that names it
    rebuilt, old = here.with_name(f".{here.name}.rebuilt"), here.with_name(f".{here.name}.old")
    shutil.rmtree(rebuilt, ignore_errors=True)
    shutil.rmtree(old, ignore_errors=True)
    try:
        write_store(rebuilt, store, [(store, keep)], infos)
        exchange(rebuilt, here)  # one atomic step: the path holds the old or the new store, never neither
    finally:
        shutil.rmtree(rebuilt, ignore_errors=True)  # after the exchange this is the old store
    return here


def exchange(a: Path, b: Path) -> None:
    """Swap two directories in one step (Linux renameat2); two renames elsewhere."""
    libc = ctypes.CDLL(None, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is not None and fn(-100, os.fsencode(a), -100, os.fsencode(b), 2) == 0:  # AT_FDCWD, RENAME_EXCHANGE
        return
    old = b.with_name(f".{b.name}.old")  # a kill between the renames leaves this, named in open's message
    os.rename(b, old)
    os.rename(a, b)
    os.rename(old, a)


def check_compatible(stores: Sequence[EpisodeStore]) -> None:
    """Refuse stores whose schema or shared attributes differ from the first one."""
    first = stores[0]
    for other in stores[1:]:
        if other.schema != first.schema:
            raise StoreError(f"{other.path} has a different key schema from {first.path}.")
        for name in ("control_rate_hz", "robot", "action_space"):
            a, b = getattr(first.store_attrs, name), getattr(other.store_attrs, name)
            if a != b:
                raise StoreError(f"{other.path} has {name}={b!r} but {first.path} has {a!r}.")


def merge(out: str | os.PathLike, inputs: Sequence[str | os.PathLike]) -> Path:
    """Concatenate the episodes of ``inputs`` (in order) into a new store ``out``."""
    if not inputs:
        raise StoreError("merge needs at least one input store.")
    if Path(out).exists():
        raise StoreError(f"{out} already exists; choose a new output path.")
    seen: dict[str, int] = {}
    for i, path in enumerate(inputs):  # the same episodes twice would silently weigh them double in training
        first = seen.setdefault(os.path.realpath(path), i)
        if first != i:
            raise StoreError(f"{path} is given twice to merge (also as {inputs[first]}); list each store once.")
    stores = []
    try:
        for path in inputs:
            stores.append(EpisodeStore.open(path))
        check_compatible(stores)
        return write_store(out, stores[0], [(s, range(s.num_episodes)) for s in stores])
    finally:
        for store in stores:
            store.close()


def _sibling(path: Path, suffix: str) -> Path:
    stem = path.name[: -len(".zarr")] if path.name.endswith(".zarr") else path.name
    return path.with_name(f"{stem}_{suffix}.zarr")


def split(path: str | os.PathLike, val_fraction: float, seed: int = 0, out_train: str | None = None,
          out_val: str | None = None) -> tuple[Path, Path]:
    """Split by episode (seeded) into ``<name>_train.zarr`` and ``<name>_val.zarr``."""
    with EpisodeStore.open(path) as src:
        train, val = split_episodes(src.num_episodes, val_fraction, seed)
        train_path = Path(out_train) if out_train else _sibling(Path(src.path), "train")
        val_path = Path(out_val) if out_val else _sibling(Path(src.path), "val")
        if os.path.abspath(train_path) == os.path.abspath(val_path):
            raise StoreError(f"the train and validation outputs are both {train_path}; pass two different paths.")
        for target in (train_path, val_path):
            if target.exists():
                raise StoreError(f"{target} already exists; remove it or pass another output path.")
        built = []
        try:  # both halves are built hidden, then published together: a split is both or nothing
            built.append(write_store(train_path, src, [(src, train)], publish=False))
            built.append(write_store(val_path, src, [(src, val)], publish=False))
            os.rename(built[0], train_path)
            os.rename(built[1], val_path)
        except BaseException:
            for folder in built:
                shutil.rmtree(folder, ignore_errors=True)
            if train_path.exists() and not val_path.exists():  # stopped between the two renames
                shutil.rmtree(train_path, ignore_errors=True)
            raise
        return train_path, val_path


def drop(path: str | os.PathLike, episodes: Sequence[int], out: str | os.PathLike | None = None) -> Path:
    """Remove ``episodes``; in place (via a rebuilt copy swapped in) unless ``out`` is given."""
    with EpisodeStore.open(path, mode="a") as src:  # the lock keeps writers out until the swap
        bad = [e for e in episodes if not 0 <= e < src.num_episodes]
        if bad:
            raise StoreError(f"episode {bad[0]} does not exist; {src.path} has {src.num_episodes} episodes.")
        dropped = set(episodes)
        keep = [i for i in range(src.num_episodes) if i not in dropped]
        if out is not None:
            return write_store(out, src, [(src, keep)])
        return replace_in_place(src, keep)


def stats(store: EpisodeStore) -> dict[str, Any]:
    """Episode counts, lengths, success rate, sources, returns and per-key moments."""
    infos = store.episode_infos()
    lengths = np.diff(np.concatenate([[0], store.episode_ends]))
    result: dict[str, Any] = {
        "episodes": store.num_episodes,
        "steps": store.num_steps,
        "length": _summary(lengths),
        "success_rate": float(np.mean([i.success for i in infos])) if infos else None,
        "sources": dict(Counter(i.source for i in infos)),
        "tasks": dict(Counter(i.task for i in infos)),
        "keys": {k: _moments(store, k) for k in store.schema if not is_image_key(k)},
    }
    if REWARD in store.schema and store.schema[REWARD].shape == () and store.num_episodes:
        rewards = store.read_slice(REWARD, 0, store.num_steps).astype(np.float64)
        result["return"] = _summary(np.add.reduceat(rewards, store.episode_starts))
    return result


def _summary(values: np.ndarray) -> dict[str, float] | None:
    if not len(values):
        return None
    return {"min": float(np.min(values)), "mean": float(np.mean(values)), "max": float(np.max(values))}


def _moments(store: EpisodeStore, key: str) -> dict[str, list[float]] | None:
    """Mean, std, min, max per element, computed blockwise in float64."""
    if not store.num_steps:
        return None
    total = sq = lo = hi = None
    step = time_block(key, store.schema[key])
    for start in range(0, store.num_steps, step):
        rows = store.read_slice(key, start, start + step).astype(np.float64)
        s, q, mn, mx = rows.sum(0), (rows ** 2).sum(0), rows.min(0), rows.max(0)
        total, sq = (s, q) if total is None else (total + s, sq + q)
        lo, hi = (mn, mx) if lo is None else (np.minimum(lo, mn), np.maximum(hi, mx))
    mean = total / store.num_steps
    std = np.sqrt(np.maximum(sq / store.num_steps - mean ** 2, 0.0))
    return {name: np.atleast_1d(v).round(6).tolist() for name, v in
            (("mean", mean), ("std", std), ("min", lo), ("max", hi))}
